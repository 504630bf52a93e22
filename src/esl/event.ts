import { EslProtocolError } from './errors.ts'
import { checkHeaderLine, contentLength, decodeValue, lastHeaderLine, parseHeaderBlock, rawHeaderValue, VALID_BLOCK, type RawFrame } from './frame-parser.ts'

/**
 * One event from FreeSWITCH, whatever its wire format (plain or json). Values are decoded.
 *
 * A plain event is checked line by line when it arrives (a malformed one closes the
 * socket, as before), but its header object is built only when someone reads `headers`:
 * most events of a call (CHANNEL_EXECUTE, CHANNEL_STATE, ...) are only looked at by
 * name, and building ~70 decoded headers per event was most of the CPU of a call setup.
 * `header(name)` reads one value without building the object.
 */
export class EslEvent {
  private parsed: Record<string, string> | undefined

  constructor(
    readonly name: string,
    readonly body: string,
    /** The plain header block (URL-encoded values), already validated; null when `headers` is given. */
    private readonly raw: string | null,
    headers?: Record<string, string>,
  ) {
    this.parsed = headers
  }

  /** Every header, decoded (built on first use, then kept). */
  get headers(): Record<string, string> {
    return (this.parsed ??= parseHeaderBlock(this.raw ?? '', true))
  }

  /** One header's decoded value (the last one if repeated, as `headers` has it), or undefined. */
  header(name: string): string | undefined {
    if (this.parsed || this.raw === null) return this.headers[name]
    return lastValue(this.raw, name)
  }

  /**
   * Every header whose name starts with `prefix`, decoded (last one wins), found in one
   * scan: CHANNEL_EXECUTE_COMPLETE's four Application* values cost one pass, not four.
   */
  headersStartingWith(prefix: string): Record<string, string> {
    const out: Record<string, string> = Object.create(null)
    if (this.parsed || this.raw === null) {
      const h = this.headers
      for (const k in h) if (k.startsWith(prefix)) out[k] = h[k]
      return out
    }
    const raw = this.raw
    if (raw.startsWith(prefix)) takeLine(raw, 0, prefix.length, out)
    const needle = `\n${prefix}`
    for (let i = raw.indexOf(needle); i >= 0; i = raw.indexOf(needle, i + 1)) takeLine(raw, i + 1, prefix.length, out)
    return out
  }

  /** What logs and JSON see: the decoded event, as before it was lazy. */
  toJSON(): { name: string; headers: Record<string, string>; body: string } {
    return { name: this.name, headers: this.headers, body: this.body }
  }
}

/** A frame, classified: what the connection needs to route it. */
export type EslMessage =
  | ReplyMessage // command/reply, api/response
  | { kind: 'event'; event: EslEvent }
  | { kind: 'disconnect'; disposition: string; headers: Record<string, string>; body: string }
  | { kind: 'auth' }
  | { kind: 'other'; contentType: string; headers: Record<string, string>; body: string }

/**
 * A command's answer. `headers` (decoded) is built when first read: the reply to `connect`
 * carries the whole channel data (~150 headers), of which a call reads a few through
 * `header()`. A class (getter and method on the prototype): one object per reply, no
 * closures. The connection sets `text` and `ok` and hands it to the command's caller.
 */
export class ReplyMessage {
  readonly kind = 'reply' as const
  /** Reply-Text for command/reply, the body for api/response (set by the connection). */
  text = ''
  ok = true
  private decoded: Record<string, string> | undefined

  constructor(
    private readonly frame: RawFrame,
    readonly contentType: string,
    /** Reply-Text, decoded ('' when absent: api/response answers in the body). */
    readonly replyText: string,
    readonly body: string,
  ) {}

  get headers(): Record<string, string> {
    return (this.decoded ??= decodeAll(this.frame.headers))
  }

  /** One header, decoded (the last if repeated), without building `headers`. */
  header(name: string): string | undefined {
    if (this.decoded) return this.decoded[name]
    const v = this.frame.header(name)
    return v === undefined ? undefined : decodeValue(v)
  }
}

export function classify(frame: RawFrame, maxBodyBytes: number): EslMessage {
  const type = frame.header('Content-Type') ?? ''
  switch (type) {
    case 'command/reply':
    case 'api/response':
      return new ReplyMessage(frame, type, decodeValue(frame.header('Reply-Text') ?? ''), frame.body.toString('utf8'))
    case 'text/event-plain':
      return { kind: 'event', event: parsePlainEvent(frame.body, maxBodyBytes) }
    case 'text/event-json':
      return { kind: 'event', event: parseJsonEvent(frame.body) }
    case 'text/disconnect-notice':
      return {
        kind: 'disconnect',
        disposition: frame.header('Content-Disposition') ?? '',
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

/** Decodes in place: the frame's header object belongs to the message from here on. */
function decodeAll(headers: Record<string, string>): Record<string, string> {
  for (const k in headers) {
    const v = headers[k]
    if (v.indexOf('%') >= 0) headers[k] = decodeValue(v)
  }
  return headers
}

/**
 * text/event-plain: URL-encoded headers, then optionally "\n\n" and an inner Content-Length
 * body. Every line is validated now (same rules as parseHeaderBlock), only Event-Name and
 * Content-Length are decoded now; the rest when read (see EslEvent).
 */
export function parsePlainEvent(body: Buffer, maxBodyBytes: number): EslEvent {
  // The usual event is all header block (ends with one or two newlines, no inner body):
  // one decode and one regex pass, without searching the bytes for a blank line first.
  const whole = body.toString('utf8')
  let stop = whole.length
  if (whole.charCodeAt(stop - 1) === 0x0a) stop--
  if (whole.charCodeAt(stop - 1) === 0x0a) stop--
  const block = stop === whole.length ? whole : whole.slice(0, stop)
  if (USUAL_BLOCK.test(block)) {
    let nl = block.indexOf('\n')
    if (nl < 0) nl = block.length
    return new EslEvent(valueAt(block, 10, nl), '', block)
  }
  let end = body.indexOf(BLANK_LINE)
  if (end < 0) end = body.length
  let text = body.toString('utf8', 0, end)
  if (text.endsWith('\n')) text = text.slice(0, -1)
  let name: string
  let lengthValue: string | undefined
  if (USUAL_BLOCK.test(text)) {
    // The usual event, checked in one native regex pass: valid, Event-Name first and only
    // once, no Content-Length (no body).
    let nl = text.indexOf('\n')
    if (nl < 0) nl = text.length
    name = valueAt(text, 10, nl)
  } else {
    // Anything else: one regex pass validates every line; only a malformed block takes
    // the line-by-line walk, which throws the same error as before.
    if (!VALID_BLOCK.test(text)) checkLines(text)
    name = lastValue(text, 'Event-Name') ?? ''
    lengthValue = lastValue(text, 'Content-Length')
  }
  let inner = ''
  if (lengthValue !== undefined) {
    const n = contentLength({ 'Content-Length': lengthValue }, maxBodyBytes)
    if (n > 0) inner = body.subarray(end + 2, end + 2 + n).toString('utf8')
  }
  return new EslEvent(name, inner, text)
}

const BLANK_LINE = Buffer.from('\n\n')


/**
 * VALID_BLOCK whose first line is Event-Name and whose other lines are neither Event-Name
 * nor Content-Length: how FreeSWITCH sends every event without a body. The lookahead costs
 * a character or two per line, not a scan of the block per header sought.
 */
const USUAL_BLOCK = /^Event-Name:[^\n]*(?:\n(?!Event-Name:|Content-Length:)[^\x00-\x20\x7f:]+:[^\n]*)*$/

/** Throws checkHeaderLine's EslProtocolError for the first bad line of `text`. */
function checkLines(text: string): void {
  const len = text.length
  let pos = 0
  while (pos <= len) {
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = len
    checkHeaderLine(text, pos, nl)
    pos = nl + 1
  }
}

export { lastHeaderLine }

/** The decoded value of the last `name:` line of a validated block (last one wins, as in the header object). */
function lastValue(text: string, name: string): string | undefined {
  const v = rawHeaderValue(text, name)
  return v === undefined ? undefined : decodeValue(v)
}

/** The header line of a validated block starting at `at` into `out` (a module function: tsx names inner closures on every call). */
function takeLine(raw: string, at: number, skip: number, out: Record<string, string>): void {
  const colon = raw.indexOf(':', at + skip)
  let nl = raw.indexOf('\n', at)
  if (nl < 0) nl = raw.length
  out[raw.slice(at, colon)] = valueAt(raw, colon, nl)
}

function valueAt(text: string, colon: number, nl: number): string {
  const from = text.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1
  return from >= nl ? '' : decodeValue(text.slice(from, nl))
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
  return new EslEvent(headers['Event-Name'] ?? '', inner, null, headers)
}
