import { EslProtocolError } from './errors.ts'

/**
 * Incremental, bounded parser for ESL frames: a header block ended by "\n\n", then
 * `Content-Length` bytes of body when that header is present. FreeSWITCH splits frames
 * across reads and packs several into one, so we buffer and scan only new bytes.
 *
 * We do not use modesl's Parser: in modesl 1.2.1 one header with a malformed %-escape
 * throws URIError out of the socket 'data' handler and kills the process (reproduced),
 * the buffer grows without bound (no header/body limit) and every read rescans the
 * whole buffer from byte 0.
 */
export interface RawFrame {
  /** Header values exactly as sent (FreeSWITCH URL-encodes some, not others). */
  headers: Record<string, string>
  body: Buffer
}

export interface FrameParserLimits {
  maxHeaderBytes: number
  maxBodyBytes: number
}

export class FrameParser {
  private buf: Buffer = Buffer.alloc(0)
  /** Where to resume the search for "\n\n" (bytes before it were already scanned). */
  private scanFrom = 0
  private pendingHeaders: Record<string, string> | null = null
  private pendingLength = 0

  constructor(private readonly limits: FrameParserLimits) {}

  /** Bytes buffered but not yet part of a complete frame (non-zero at close = truncated frame). */
  get buffered(): number {
    return this.buf.length
  }

  /** Feed bytes; returns the complete frames. Throws EslProtocolError on malformed input. */
  push(chunk: Buffer): RawFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    const frames: RawFrame[] = []
    for (;;) {
      if (this.pendingHeaders) {
        if (this.buf.length < this.pendingLength) break
        frames.push({ headers: this.pendingHeaders, body: this.buf.subarray(0, this.pendingLength) })
        this.buf = this.buf.subarray(this.pendingLength)
        this.pendingHeaders = null
        this.scanFrom = 0
        continue
      }
      // FreeSWITCH never sends blank lines between frames, but tolerate stray newlines.
      let start = 0
      while (start < this.buf.length && this.buf[start] === 0x0a) start++
      if (start > 0) {
        this.buf = this.buf.subarray(start)
        this.scanFrom = Math.max(0, this.scanFrom - start)
      }
      const end = this.buf.indexOf('\n\n', Math.max(0, this.scanFrom - 1))
      if (end < 0) {
        if (this.buf.length > this.limits.maxHeaderBytes) {
          throw new EslProtocolError(`header block exceeds ${this.limits.maxHeaderBytes} bytes`)
        }
        this.scanFrom = this.buf.length
        break
      }
      if (end > this.limits.maxHeaderBytes) throw new EslProtocolError(`header block exceeds ${this.limits.maxHeaderBytes} bytes`)
      const headers = parseHeaderBlock(this.buf.subarray(0, end).toString('utf8'))
      this.buf = this.buf.subarray(end + 2)
      this.scanFrom = 0
      const length = contentLength(headers, this.limits.maxBodyBytes)
      if (length > 0) {
        this.pendingHeaders = headers
        this.pendingLength = length
      } else {
        frames.push({ headers, body: Buffer.alloc(0) })
      }
    }
    return frames
  }
}

/** "Key: value" lines; a line without a colon means we are not talking to FreeSWITCH. */
export function parseHeaderBlock(text: string): Record<string, string> {
  const headers: Record<string, string> = Object.create(null)
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) throw new EslProtocolError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`)
    const key = line.slice(0, colon)
    if (/[\x00-\x1f\x7f ]/.test(key)) throw new EslProtocolError(`malformed header name ${JSON.stringify(key.slice(0, 80))}`)
    const value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1)
    headers[key] = value
  }
  return headers
}

export function contentLength(headers: Record<string, string>, maxBodyBytes: number): number {
  const raw = headers['Content-Length']
  if (raw === undefined) return 0
  if (!/^\d{1,10}$/.test(raw.trim())) throw new EslProtocolError(`invalid Content-Length ${JSON.stringify(raw.slice(0, 40))}`)
  const n = Number(raw.trim())
  if (n > maxBodyBytes) throw new EslProtocolError(`Content-Length ${n} exceeds ${maxBodyBytes} bytes`)
  return n
}

/** FreeSWITCH URL-encodes header values; a bad escape keeps the raw text instead of throwing. */
export function decodeValue(value: string): string {
  if (!value.includes('%')) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}
