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
  readonly headers: Record<string, string>
  body: Buffer
  /** One header's value as sent (the last if repeated), without building `headers`. */
  header(name: string): string | undefined
}

/**
 * Header blocks longer than this are validated at once but turned into an object only
 * when read: the connect reply (~150 headers, 5 KiB) is read a few values at a time.
 */
const LAZY_BLOCK_CHARS = 1024

/** A frame whose header object is built on first use; the block is already validated. */
class LazyFrame implements RawFrame {
  private parsed: Record<string, string> | undefined
  constructor(
    private readonly text: string,
    public body: Buffer,
  ) {}

  get headers(): Record<string, string> {
    return (this.parsed ??= parseHeaderBlock(this.text))
  }

  header(name: string): string | undefined {
    return this.parsed ? this.parsed[name] : rawHeaderValue(this.text, name)
  }
}

/** A frame with its header object built at once (small blocks: every event's outer frame, replies). */
class ParsedFrame implements RawFrame {
  constructor(
    readonly headers: Record<string, string>,
    public body: Buffer,
  ) {}

  header(name: string): string | undefined {
    return this.headers[name]
  }
}

/** The value of the last `name:` line of a validated block, as sent (not decoded), or undefined. */
export function rawHeaderValue(text: string, name: string): string | undefined {
  const at = lastHeaderLine(text, name)
  if (at < 0) return undefined
  let nl = text.indexOf('\n', at)
  if (nl < 0) nl = text.length
  const colon = at + name.length
  const from = text.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1
  return from >= nl ? '' : text.slice(from, nl)
}

/** Where the last `name:` line of a validated block starts, or -1 (forward scans only: V8's lastIndexOf is slow). */
export function lastHeaderLine(text: string, name: string): number {
  const needle = `\n${name}:`
  let at = text.startsWith(`${name}:`) ? 0 : -1
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length - 1)) at = i + 1
  return at
}

export interface FrameParserLimits {
  maxHeaderBytes: number
  maxBodyBytes: number
}

/** A Buffer needle: Buffer.indexOf with a string converts the needle on every call. */
const BLANK_LINE = Buffer.from('\n\n')
/** The body of every frame without Content-Length (zero bytes: nothing to share or mutate). */
const NO_BODY = Buffer.alloc(0)

export class FrameParser {
  private buf: Buffer = Buffer.alloc(0)
  /** Where to resume the search for "\n\n" (bytes before it were already scanned). */
  private scanFrom = 0
  private pendingFrame: RawFrame | null = null
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
      if (this.pendingFrame) {
        if (this.buf.length < this.pendingLength) break
        this.pendingFrame.body = this.buf.subarray(0, this.pendingLength)
        frames.push(this.pendingFrame)
        this.buf = this.buf.subarray(this.pendingLength)
        this.pendingFrame = null
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
      const end = this.buf.indexOf(BLANK_LINE, Math.max(0, this.scanFrom - 1))
      if (end < 0) {
        if (this.buf.length > this.limits.maxHeaderBytes) {
          throw new EslProtocolError(`header block exceeds ${this.limits.maxHeaderBytes} bytes`)
        }
        this.scanFrom = this.buf.length
        break
      }
      if (end > this.limits.maxHeaderBytes) throw new EslProtocolError(`header block exceeds ${this.limits.maxHeaderBytes} bytes`)
      const text = this.buf.subarray(0, end).toString('utf8')
      let frame: RawFrame
      if (text.length > LAZY_BLOCK_CHARS) {
        if (!VALID_BLOCK.test(text)) parseHeaderBlock(text) // throws the error of the first bad line
        frame = new LazyFrame(text, NO_BODY)
      } else frame = new ParsedFrame(parseHeaderBlock(text), NO_BODY)
      this.buf = this.buf.subarray(end + 2)
      this.scanFrom = 0
      const length = contentLengthValue(frame.header('Content-Length'), this.limits.maxBodyBytes)
      if (length > 0) {
        this.pendingFrame = frame
        this.pendingLength = length
      } else {
        frames.push(frame)
      }
    }
    return frames
  }
}

/**
 * "Key: value" lines; a line without a colon means we are not talking to FreeSWITCH.
 * One pass over the text with indexOf (no split, no regex): this runs for every header of
 * every event, ~70 per event and ~20 events per call, so it is the ESL hot path.
 * `decode` URL-decodes the values on the way (plain events, replies).
 */
export function parseHeaderBlock(text: string, decode = false): Record<string, string> {
  const headers: Record<string, string> = Object.create(null)
  const len = text.length
  // One native regex pass validates every line (the connect reply has ~150); only a block
  // it rejects is walked line by line, which throws checkHeaderLine's error.
  const valid = VALID_BLOCK.test(text)
  let pos = 0
  while (pos <= len) {
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = len
    const colon = valid ? text.indexOf(':', pos) : checkHeaderLine(text, pos, nl)
    const from = text.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1
    const value = from >= nl ? '' : text.slice(from, nl)
    headers[text.slice(pos, colon)] = decode ? decodeValue(value) : value
    pos = nl + 1
  }
  return headers
}

/**
 * A header block exactly as checkHeaderLine accepts it: lines "name:value" joined by single
 * newlines, a name of at least one character without control characters, spaces, DEL or
 * colon (its first colon ends it), a value of anything but a newline.
 */
export const VALID_BLOCK = /^[^\x00-\x20\x7f:]+:[^\n]*(?:\n[^\x00-\x20\x7f:]+:[^\n]*)*$/

/**
 * Validates one header line text[pos, nl) exactly as parseHeaderBlock would accept it and
 * returns the colon's index; throws EslProtocolError otherwise. A name must be non-empty
 * without control characters or spaces.
 */
export function checkHeaderLine(text: string, pos: number, nl: number): number {
  const colon = text.indexOf(':', pos)
  if (colon <= pos || colon >= nl) {
    throw new EslProtocolError(`malformed header line ${JSON.stringify(text.slice(pos, Math.min(nl, pos + 80)))}`)
  }
  for (let i = pos; i < colon; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) throw new EslProtocolError(`malformed header name ${JSON.stringify(text.slice(pos, Math.min(colon, pos + 80)))}`)
  }
  return colon
}

export function contentLength(headers: Record<string, string>, maxBodyBytes: number): number {
  return contentLengthValue(headers['Content-Length'], maxBodyBytes)
}

function contentLengthValue(raw: string | undefined, maxBodyBytes: number): number {
  if (raw === undefined) return 0
  if (!/^\d{1,10}$/.test(raw.trim())) throw new EslProtocolError(`invalid Content-Length ${JSON.stringify(raw.slice(0, 40))}`)
  const n = Number(raw.trim())
  if (n > maxBodyBytes) throw new EslProtocolError(`Content-Length ${n} exceeds ${maxBodyBytes} bytes`)
  return n
}

/** FreeSWITCH URL-encodes header values; a bad escape keeps the raw text instead of throwing. */
export function decodeValue(value: string): string {
  if (value.indexOf('%') < 0) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}
