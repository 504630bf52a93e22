/**
 * FreeSWITCH's side of the ESL wire, byte for byte as in /work/shared/esl-traces:
 * reply, event and disconnect-notice framing, and its URL encoding of header values.
 * Used by the wire simulators (fs-simulator.ts, esl-inbound-sim.ts).
 */

/** switch_url_encode: these bytes, control bytes and non-ASCII become %XX (upper-case hex). */
const UNSAFE = new Set(Array.from('\r\n #%&+:;<=>?@[\\]^`{|}"', (c) => c.charCodeAt(0)))

/** 1 for the ASCII bytes that pass unencoded; '%XX' for every byte value. */
const SAFE = Uint8Array.from({ length: 128 }, (_, b) => (b >= 0x20 && b <= 0x7e && !UNSAFE.has(b) ? 1 : 0))
const HEX = Array.from({ length: 256 }, (_, b) => '%' + b.toString(16).toUpperCase().padStart(2, '0'))

export function fsUrlEncode(value: string): string {
  // Most values need no encoding: return them as they are (the simulator encodes ~70 per event).
  const n = value.length
  let i = 0
  while (i < n) {
    const c = value.charCodeAt(i)
    if (c >= 0x80 || SAFE[c] === 0) break
    i++
  }
  if (i === n) return value
  let out = value.slice(0, i)
  for (; i < n; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x80) {
      out += SAFE[c] === 1 ? value[i] : HEX[c]
      continue
    }
    // Non-ASCII: the UTF-8 bytes of this code point (a lone surrogate becomes EF BF BD, as Buffer.from does).
    const cp = value.codePointAt(i)!
    const wide = cp > 0xffff && value.charCodeAt(i) >= 0xd800 && value.charCodeAt(i) <= 0xdbff
    for (const b of Buffer.from(wide ? value.slice(i, i + 2) : value[i], 'utf8')) out += HEX[b]
    if (wide) i++
  }
  return out
}

export type Headers = Array<[string, string]>

/** `Content-Type: command/reply\nReply-Text: +OK\n\n` (45 bytes, as in the traces). */
export function commandReply(text: string): string {
  return `Content-Type: command/reply\nReply-Text: ${text}\n\n`
}

export function apiResponse(body: string): string {
  return `Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`
}

/** The reply to `connect`: channel data first, the reply headers at the END. */
export function connectReply(channelData: Headers): string {
  let s = ''
  for (const [k, v] of channelData) s += `${k}: ${fsUrlEncode(v)}\n`
  return s + 'Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n'
}

export function plainEvent(headers: Headers, body?: string): string {
  let inner = ''
  for (const [k, v] of headers) inner += `${k}: ${fsUrlEncode(v)}\n`
  if (body !== undefined) inner += `Content-Length: ${Buffer.byteLength(body)}\n\n${body}`
  else inner += '\n'
  return `Content-Length: ${Buffer.byteLength(inner)}\nContent-Type: text/event-plain\n\n${inner}`
}

export function jsonEvent(headers: Headers, body?: string): string {
  const obj: Record<string, string> = {}
  for (const [k, v] of headers) obj[k] = v
  if (body !== undefined) {
    obj['Content-Length'] = String(Buffer.byteLength(body))
    obj._body = body
  }
  const json = JSON.stringify(obj)
  return `Content-Length: ${Buffer.byteLength(json)}\nContent-Type: text/event-json\n\n${json}`
}

export function event(format: 'plain' | 'json', headers: Headers, body?: string): string {
  return format === 'json' ? jsonEvent(headers, body) : plainEvent(headers, body)
}

export const GOODBYE = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n'

export function lingerNotice(uuid: string, channelName: string): string {
  return (
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${uuid}\nContent-Disposition: linger\n` +
    `Channel-Name: ${channelName}\nLinger-Time: -1\nContent-Length: 0\n\n`
  )
}

export function disconnectNotice(uuid: string): string {
  return (
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${uuid}\nContent-Disposition: disconnect\n` +
    `Content-Length: ${Buffer.byteLength(GOODBYE)}\n\n${GOODBYE}`
  )
}

/** A command the application sent: first line, then `key: value` headers, optional body. */
export interface ReceivedCommand {
  line: string
  headers: Record<string, string>
  body: string
}

/** Splits app→FreeSWITCH bytes into commands (as mod_event_socket reads them). */
export class CommandReader {
  private buf = Buffer.alloc(0)
  push(chunk: Buffer): ReceivedCommand[] {
    this.buf = Buffer.concat([this.buf, chunk])
    const out: ReceivedCommand[] = []
    for (;;) {
      const end = this.buf.indexOf('\n\n')
      if (end < 0) break
      const lines = this.buf.subarray(0, end).toString('utf8').split('\n')
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':')
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trimStart()
      }
      const len = Number(headers['content-length'] ?? 0)
      if (this.buf.length < end + 2 + len) break
      const body = this.buf.subarray(end + 2, end + 2 + len).toString('utf8')
      this.buf = this.buf.subarray(end + 2 + len)
      out.push({ line: lines[0].trim(), headers, body })
    }
    return out
  }
}
