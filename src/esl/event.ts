import { EslProtocolError } from './errors.ts'
import { contentLength, decodeValue, parseHeaderBlock, type RawFrame } from './frame-parser.ts'

/** One event from FreeSWITCH, whatever its wire format (plain or json). Values are decoded. */
export interface EslEvent {
  name: string
  headers: Record<string, string>
  body: string
}

/** A frame, classified: what the connection needs to route it. */
export type EslMessage =
  | { kind: 'reply'; headers: Record<string, string>; body: string } // command/reply, api/response
  | { kind: 'event'; event: EslEvent }
  | { kind: 'disconnect'; disposition: string; headers: Record<string, string>; body: string }
  | { kind: 'auth' }
  | { kind: 'other'; contentType: string; headers: Record<string, string>; body: string }

export function classify(frame: RawFrame, maxBodyBytes: number): EslMessage {
  const type = frame.headers['Content-Type'] ?? ''
  switch (type) {
    case 'command/reply':
    case 'api/response':
      return { kind: 'reply', headers: decodeAll(frame.headers), body: frame.body.toString('utf8') }
    case 'text/event-plain':
      return { kind: 'event', event: parsePlainEvent(frame.body, maxBodyBytes) }
    case 'text/event-json':
      return { kind: 'event', event: parseJsonEvent(frame.body) }
    case 'text/disconnect-notice':
      return {
        kind: 'disconnect',
        disposition: frame.headers['Content-Disposition'] ?? '',
        headers: decodeAll(frame.headers),
        body: frame.body.toString('utf8'),
      }
    case 'auth/request':
      return { kind: 'auth' }
    case '':
      throw new EslProtocolError('frame without Content-Type')
    default:
      return { kind: 'other', contentType: type, headers: decodeAll(frame.headers), body: frame.body.toString('utf8') }
  }
}

function decodeAll(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  for (const k in headers) out[k] = decodeValue(headers[k])
  return out
}

/** text/event-plain: URL-encoded headers, then optionally "\n\n" and an inner Content-Length body. */
export function parsePlainEvent(body: Buffer, maxBodyBytes: number): EslEvent {
  let end = body.indexOf('\n\n')
  if (end < 0) end = body.length
  let text = body.subarray(0, end).toString('utf8')
  if (text.endsWith('\n')) text = text.slice(0, -1)
  const headers = decodeAll(parseHeaderBlock(text))
  let inner = ''
  const n = contentLength(headers, maxBodyBytes)
  if (n > 0) inner = body.subarray(end + 2, end + 2 + n).toString('utf8')
  return { name: headers['Event-Name'] ?? '', headers, body: inner }
}

export function parseJsonEvent(body: Buffer): EslEvent {
  let data: unknown
  try {
    data = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new EslProtocolError(`invalid JSON event: ${(err as Error).message}`)
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new EslProtocolError('JSON event is not an object')
  const headers: Record<string, string> = Object.create(null)
  let inner = ''
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (k === '_body') inner = String(v)
    else headers[k] = typeof v === 'string' ? v : JSON.stringify(v)
  }
  return { name: headers['Event-Name'] ?? '', headers, body: inner }
}
