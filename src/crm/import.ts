/**
 * The nightly anonymised CRM export (seed 000: phone → manager, client → segment) into
 * Postgres: clients + client_phones, and employees (clients reference managers).
 *
 * Input is streamed — CSV (own parser: quotes, "" escapes, CRLF, BOM, `;`/`,`/tab
 * detection), JSON Lines or one JSON array — and written in batches, one transaction per
 * batch: clients are `COPY`ed into temp staging tables and merged with set-based upserts
 * that write only new or changed rows (see `importClients`). At most one batch of rows is
 * in memory.
 *
 * Semantics:
 *  - Upsert by client id: the newest import wins for every field; clients absent from the
 *    file are kept (an export may be partial).
 *  - The phones of a client are the union of its phones in the file (repeated rows or a
 *    `phones` list split on `|`); phones the client had before and the file no longer
 *    lists are removed at the end of a successful run (`prunePhones`, default on).
 *  - A phone owned by another client from an earlier import moves to the new client and
 *    is counted as `reassigned`; the same phone listed for two clients in one file keeps
 *    the first and rejects the later line (`duplicate_phone`).
 *  - Rejected rows/phones are reported with their line number (physical line of the
 *    row's start in CSV / JSON Lines, of the element's start in a JSON array).
 *  - Batches committed before a fatal error (malformed file, Postgres down) stay: the
 *    import is idempotent, re-run it after fixing the file.
 *  - After the run, `NOTIFY switchboard_directory, '<run id>'` so every node reloads.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import { IANAZone } from 'luxon'
import type { Pool, PoolClient } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import { SwitchboardError } from '../errors.ts'
import { normalizePhone } from './phone.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'

export const DIRECTORY_CHANNEL = 'switchboard_directory'

// ---------------------------------------------------------------- errors

/** The file cannot be read as CSV / JSON (fatal, 400). */
export class ImportFormatError extends SwitchboardError {
  constructor(message: string, line?: number) {
    super('import_invalid', line === undefined ? message : `line ${line}: ${message}`, 400, line === undefined ? undefined : { line })
  }
}

export class ImportTooLargeError extends SwitchboardError {
  constructor(limit: number) {
    super('payload_too_large', `the import is larger than the limit of ${limit} bytes`, 413, { limit })
  }
}

export class ImportBusyError extends SwitchboardError {
  constructor() {
    super('import_busy', 'another CRM import is running; try again when it has finished', 409)
  }
}

// ---------------------------------------------------------------- records

export type ImportFormat = 'csv' | 'jsonl' | 'json'

export interface SourceRecord {
  /** 1-based line where the record starts. */
  line: number
  fields: Record<string, unknown>
}

export interface ReadOptions {
  /** Reject inputs larger than this many bytes (ImportTooLargeError). */
  maxBytes?: number
  /** Longest single record in characters (a runaway quote must not eat the memory). */
  maxRecordChars?: number
  /** Told once the format (and CSV delimiter) is known. */
  onFormat?: (format: ImportFormat, delimiter?: string) => void
}

type Chunk = Buffer | Uint8Array | string

/** Decode UTF-8 chunks (BOM dropped, invalid UTF-8 and NUL bytes rejected), counting bytes. */
async function* decode(input: AsyncIterable<Chunk>, maxBytes: number): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let bytes = 0
  let first = true
  for await (const chunk of input) {
    let text: string
    if (typeof chunk === 'string') {
      bytes += Buffer.byteLength(chunk)
      text = chunk
    } else {
      bytes += chunk.byteLength
      if (bytes > maxBytes) throw new ImportTooLargeError(maxBytes)
      try { text = decoder.decode(chunk, { stream: true }) } catch { throw new ImportFormatError('the file is not valid UTF-8 text') }
    }
    if (bytes > maxBytes) throw new ImportTooLargeError(maxBytes)
    if (text.includes('\u0000')) throw new ImportFormatError('binary data (NUL bytes) in the file; expected CSV or JSON text')
    if (first && text.length > 0) {
      first = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1) // a BOM in text input (the decoder drops it from bytes)
    }
    if (text.length > 0) yield text
  }
  let tail: string
  try { tail = decoder.decode() } catch { throw new ImportFormatError('the file is not valid UTF-8 text (truncated character at the end)') }
  if (tail.length > 0) yield tail
}

/**
 * Read any supported file as records: the first non-blank character decides —
 * `[` a JSON array, `{` JSON Lines, anything else CSV with a header row.
 */
export async function* readRecords(input: AsyncIterable<Chunk>, opts: ReadOptions = {}): AsyncGenerator<SourceRecord> {
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
  const maxRecord = opts.maxRecordChars ?? 1_000_000
  // Manual iteration: leaving a for-await early would close the decoder generator.
  const texts = decode(input, maxBytes)[Symbol.asyncIterator]()
  let head = ''
  let first: string | undefined
  for (;;) {
    const n = await texts.next()
    if (n.done) break
    head += n.value
    const m = /\S/.exec(head)
    if (m) { first = m[0]; break }
    if (head.length > maxRecord) throw new ImportFormatError(`no data in the first ${maxRecord} characters`)
  }
  if (first === undefined) return // empty file: nothing to import
  async function* rest(): AsyncGenerator<string> {
    yield head
    for (;;) {
      const n = await texts.next()
      if (n.done) return
      yield n.value
    }
  }
  if (first === '[') {
    opts.onFormat?.('json')
    yield* readJsonArray(rest(), maxRecord)
  } else if (first === '{') {
    opts.onFormat?.('jsonl')
    yield* readJsonLines(rest(), maxRecord)
  } else {
    yield* readCsv(rest(), maxRecord, opts.onFormat)
  }
}

async function* readJsonLines(texts: AsyncIterable<string>, maxRecord: number): AsyncGenerator<SourceRecord> {
  let carry = ''
  let line = 0
  const parse = (text: string, at: number): SourceRecord | null => {
    const s = text.trim()
    if (s === '') return null
    let v: unknown
    try { v = JSON.parse(s) } catch (err) { throw new ImportFormatError(`invalid JSON: ${(err as Error).message}`, at) }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ImportFormatError('each JSON line must be an object', at)
    return { line: at, fields: v as Record<string, unknown> }
  }
  for await (const t of texts) {
    const buf = carry + t
    let pos = 0
    for (;;) {
      const nl = buf.indexOf('\n', pos)
      if (nl < 0) break
      line++
      const r = parse(buf.slice(pos, nl), line)
      if (r) yield r
      pos = nl + 1
    }
    carry = buf.slice(pos)
    if (carry.length > maxRecord) throw new ImportFormatError(`a JSON line is longer than ${maxRecord} characters`, line + 1)
  }
  line++
  const r = parse(carry, line)
  if (r) yield r
}

/** Split a top-level JSON array into its elements without holding the array. */
async function* readJsonArray(texts: AsyncIterable<string>, maxRecord: number): AsyncGenerator<SourceRecord> {
  let state: string = 'before' // 'before' | 'value' | 'after' | 'done': '[' / expecting element / after element
  let depth = 0
  let inString = false
  let escaped = false
  let elem = ''
  let elemLine = 0
  let line = 1
  let expectElement = true // after '[' or ','
  let sawElement = false
  for await (const t of texts) {
    let start = -1 // start of the current element within t
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i)
      if (c === 10) line++
      if (state === 'value') {
        if (inString) {
          if (escaped) escaped = false
          else if (c === 92) escaped = true
          else if (c === 34) inString = false
          continue
        }
        if (c === 34) inString = true
        else if (c === 123 || c === 91) depth++
        else if (c === 125 || c === 93) {
          depth--
          if (depth === 0) {
            elem += t.slice(start < 0 ? 0 : start, i + 1)
            start = -1
            yield parseElement(elem, elemLine)
            elem = ''
            state = 'after'
          }
        }
        continue
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) continue
      if (state === 'before') {
        if (c !== 91) throw new ImportFormatError('expected a JSON array', line)
        state = 'after'
        expectElement = true
        continue
      }
      if (state === 'done') throw new ImportFormatError('unexpected text after the end of the JSON array', line)
      // state === 'after'
      if (c === 93) {
        if (expectElement && sawElement) throw new ImportFormatError('trailing comma in the JSON array', line)
        state = 'done'
        continue
      }
      if (c === 44) {
        if (expectElement) throw new ImportFormatError('unexpected comma in the JSON array', line)
        expectElement = true
        continue
      }
      if (!expectElement) throw new ImportFormatError(`expected ',' or ']' in the JSON array, got ${JSON.stringify(t[i])}`, line)
      if (c !== 123) throw new ImportFormatError('each element of the JSON array must be an object', line)
      state = 'value'
      depth = 1
      elemLine = line
      start = i
      expectElement = false
      sawElement = true
    }
    if (state === 'value') {
      elem += t.slice(start < 0 ? 0 : start)
      if (elem.length > maxRecord) throw new ImportFormatError(`an array element is longer than ${maxRecord} characters`, elemLine)
    }
  }
  if (state !== 'done') throw new ImportFormatError('the JSON array is not closed (truncated file?)', line)
}

function parseElement(text: string, line: number): SourceRecord {
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { throw new ImportFormatError(`invalid JSON: ${(err as Error).message}`, line) }
  return { line, fields: v as Record<string, unknown> }
}

/** Pick the delimiter of the header line: the most frequent of `;`, `,` and tab outside quotes. */
export function detectDelimiter(headerLine: string): string {
  let inQ = false
  const counts: Record<string, number> = { ',': 0, ';': 0, '\t': 0 }
  for (const ch of headerLine) {
    if (ch === '"') inQ = !inQ
    else if (!inQ && ch in counts) counts[ch]++
  }
  let best = ','
  for (const d of [';', '\t']) if (counts[d] > counts[best]) best = d
  return best
}

/**
 * Streaming RFC 4180 CSV parser. `feed` returns the complete records of the text seen so
 * far (each with the line it starts on); `end` flushes the last one. Quoted fields may
 * hold delimiters, `""` and line breaks; records end with LF, CRLF or a lone CR.
 */
export class CsvParser {
  private carry = ''
  private line = 1
  private readonly delim: number
  constructor(delimiter: string, private readonly maxRecord = 1_000_000) {
    this.delim = delimiter.charCodeAt(0)
  }

  feed(text: string): Array<{ line: number; values: string[] }> {
    return this.run(this.carry + text, false)
  }

  end(): Array<{ line: number; values: string[] }> {
    return this.run(this.carry, true)
  }

  private run(buf: string, final: boolean): Array<{ line: number; values: string[] }> {
    const out: Array<{ line: number; values: string[] }> = []
    let pos = 0
    while (pos < buf.length) {
      const r = this.record(buf, pos, final)
      if (r === null) break
      const start = this.line
      this.line += r.lines
      pos = r.next
      if (r.values.length === 1 && r.values[0] === '' && !r.quoted) continue // blank line
      out.push({ line: start, values: r.values })
    }
    this.carry = buf.slice(pos)
    if (this.carry.length > this.maxRecord) throw new ImportFormatError(`a CSV record is longer than ${this.maxRecord} characters (unbalanced quote?)`, this.line)
    return out
  }

  /** One record from `pos`, or null when the buffer ends before the record does. */
  private record(buf: string, pos: number, final: boolean): { values: string[]; next: number; lines: number; quoted: boolean } | null {
    const values: string[] = []
    const len = buf.length
    const d = this.delim
    let i = pos
    let lines = 0
    let quoted = false
    for (;;) {
      let value: string
      if (i < len && buf.charCodeAt(i) === 34) {
        quoted = true
        let j = i + 1
        let acc = ''
        for (;;) {
          const k = buf.indexOf('"', j)
          if (k < 0) {
            if (final) throw new ImportFormatError('unterminated quoted field', this.line + lines)
            return null
          }
          if (k + 1 === len && !final) return null // cannot tell `"` from `""` yet
          const part = buf.slice(j, k)
          acc += part
          for (let p = part.indexOf('\n'); p >= 0; p = part.indexOf('\n', p + 1)) lines++
          if (buf.charCodeAt(k + 1) === 34) { acc += '"'; j = k + 2; continue }
          i = k + 1
          break
        }
        // Lenient: text between the closing quote and the delimiter is kept.
        const e = fieldEnd(buf, i, d)
        if (e === len && !final) return null
        value = e > i ? acc + buf.slice(i, e) : acc
        i = e
      } else {
        const e = fieldEnd(buf, i, d)
        if (e === len && !final) return null
        value = buf.slice(i, e)
        i = e
      }
      values.push(value)
      if (i >= len) return { values, next: i, lines: lines + 1, quoted }
      const c = buf.charCodeAt(i)
      if (c === d) { i++; if (i >= len && !final) return null; continue }
      if (c === 13) {
        if (i + 1 >= len && !final) return null
        return { values, next: buf.charCodeAt(i + 1) === 10 ? i + 2 : i + 1, lines: lines + 1, quoted }
      }
      return { values, next: i + 1, lines: lines + 1, quoted } // LF
    }
  }
}

async function* readCsv(texts: AsyncIterable<string>, maxRecord: number, onFormat?: ReadOptions['onFormat']): AsyncGenerator<SourceRecord> {
  let parser: CsvParser | null = null
  let header: string[] | null = null
  let pending = ''
  const emit = function* (records: Array<{ line: number; values: string[] }>): Generator<SourceRecord> {
    for (const r of records) {
      if (header === null) {
        header = r.values.map((h) => h.trim().toLowerCase())
        if (header.length < 2 && !/^(client_?id|id)$/.test(header[0] ?? '')) {
          throw new ImportFormatError('the first line is not a CSV header (expected columns such as client_id;name;segment;phone)', r.line)
        }
        continue
      }
      const fields: Record<string, unknown> = {}
      for (let i = 0; i < header.length; i++) fields[header[i]] = r.values[i] ?? ''
      if (r.values.length > header.length) fields['…extra'] = r.values.slice(header.length)
      yield { line: r.line, fields }
    }
  }
  for await (const t of texts) {
    if (parser === null) {
      pending += t
      const nl = pending.search(/[\r\n]/)
      if (nl < 0 && pending.length < maxRecord) continue
      const delimiter = detectDelimiter(nl < 0 ? pending : pending.slice(0, nl))
      onFormat?.('csv', delimiter)
      parser = new CsvParser(delimiter, maxRecord)
      yield* emit(parser.feed(pending))
      pending = ''
      continue
    }
    yield* emit(parser.feed(t))
  }
  if (parser === null) {
    const delimiter = detectDelimiter(pending)
    onFormat?.('csv', delimiter)
    parser = new CsvParser(delimiter, maxRecord)
    yield* emit(parser.feed(pending))
  }
  yield* emit(parser.end())
}

// ---------------------------------------------------------------- report

export type ProblemCode =
  | 'missing_id' | 'bad_row' | 'bad_segment' | 'bad_kind' | 'bad_tz' | 'unknown_manager' | 'bad_phone' | 'duplicate_phone'
  | 'bad_attributes' | 'bad_role' | 'unknown_office' | 'unknown_supervisor' | 'bad_mobile' | 'duplicate_mobile'
  | 'bad_extension' | 'duplicate_extension' | 'extra_columns'

export interface ImportProblem {
  line: number
  /** Client / employee id of the row, when it has one. */
  id?: string
  code: ProblemCode
  field?: string
  value?: string
  message: string
  /** 'row': the whole row was rejected; 'phone' / 'field': only that value was dropped. */
  rejected: 'row' | 'phone' | 'field'
}

export interface PhoneMove { line: number; phone: string; from: string; to: string }

export interface ImportReport {
  runId: number
  kind: 'clients' | 'employees'
  format: ImportFormat | null
  delimiter?: string
  state: 'succeeded' | 'failed'
  rows: { read: number; imported: number; rejected: number }
  /** Clients / employees upserted (a client whose rows fall in two batches counts twice). */
  records: number
  phones: { imported: number; rejected: number; reassigned: number; removed: number }
  /** First problems (up to `maxProblems`), in file order; `problemCount` is the total. */
  problems: ImportProblem[]
  problemCount: number
  /** First phone reassignments (up to 100); `phones.reassigned` is the total. */
  reassignments: PhoneMove[]
  durationMs: number
  rowsPerSec: number
  error?: string
}

class ReportBuilder {
  readonly report: ImportReport
  private readonly started = performance.now()
  constructor(runId: number, kind: 'clients' | 'employees', private readonly maxProblems: number) {
    this.report = {
      runId, kind, format: null, state: 'succeeded', rows: { read: 0, imported: 0, rejected: 0 }, records: 0,
      phones: { imported: 0, rejected: 0, reassigned: 0, removed: 0 }, problems: [], problemCount: 0, reassignments: [],
      durationMs: 0, rowsPerSec: 0,
    }
  }
  problem(p: ImportProblem): void {
    this.report.problemCount++
    if (this.report.problems.length < this.maxProblems) this.report.problems.push(p)
  }
  move(m: PhoneMove): void {
    this.report.phones.reassigned++
    if (this.report.reassignments.length < 100) this.report.reassignments.push(m)
  }
  finish(): ImportReport {
    const r = this.report
    r.problems.sort((a, b) => a.line - b.line)
    r.durationMs = Math.round(performance.now() - this.started)
    r.rowsPerSec = r.durationMs > 0 ? Math.round(r.rows.read / (r.durationMs / 1000)) : r.rows.read
    return r
  }
}

// ---------------------------------------------------------------- field mapping

const str = (v: unknown): string => {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return v.trim()
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return ''
}

function pick(fields: Record<string, unknown>, names: readonly string[], used: Set<string>): unknown {
  for (const n of names) {
    if (n in fields) { used.add(n); const v = fields[n]; if (v !== '' && v !== null && v !== undefined) return v }
  }
  return undefined
}

const CLIENT_COLUMNS = {
  id: ['client_id', 'clientid', 'id', 'client'],
  name: ['name', 'client_name'],
  inn: ['inn'],
  segment: ['segment', 'abc'],
  kind: ['kind', 'type', 'counterparty_kind'],
  region: ['region'],
  tz: ['tz', 'timezone', 'time_zone'],
  manager: ['manager_id', 'assigned_manager_id', 'manager'],
} as const

const PHONE_COLUMN = /^(phones?|phone_?number|phone_?\d+|tel|telephone)$/

const SEGMENTS: Record<string, 'A' | 'B' | 'C'> = { A: 'A', B: 'B', C: 'C', 'А': 'A', 'В': 'B', 'С': 'C' } // Latin and Cyrillic letters
const KINDS: Record<string, 'client' | 'supplier' | 'partner' | 'other'> = {
  client: 'client', supplier: 'supplier', partner: 'partner', other: 'other',
  'клиент': 'client', 'поставщик': 'supplier', 'партнер': 'partner', 'партнёр': 'partner', 'прочее': 'other', 'другое': 'other',
}

const tzCache = new Map<string, boolean>()
function validZone(tz: string): boolean {
  let ok = tzCache.get(tz)
  if (ok === undefined) { ok = IANAZone.isValidZone(tz); if (tzCache.size < 10_000) tzCache.set(tz, ok) }
  return ok
}

interface ClientRow {
  line: number
  id: string
  name: string
  inn: string | null
  segment: 'A' | 'B' | 'C' | null
  kind: 'client' | 'supplier' | 'partner' | 'other'
  region: string | null
  tz: string | null
  managerId: string | null
  attributes: Record<string, unknown>
  phones: string[]
}

/** Map one source record to a client row, or return the problem that rejects it. */
function toClientRow(rec: SourceRecord, managers: ReadonlySet<string>): ClientRow | ImportProblem {
  const f = rec.fields
  const line = rec.line
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return { line, code: 'bad_row', message: 'the row is not an object', rejected: 'row' }
  const used = new Set<string>()
  const id = str(pick(f, CLIENT_COLUMNS.id, used))
  if (id === '') return { line, code: 'missing_id', field: 'client_id', message: 'client_id is missing', rejected: 'row' }
  if (id.length > 200) return { line, id: id.slice(0, 40), code: 'missing_id', field: 'client_id', message: 'client_id is longer than 200 characters', rejected: 'row' }
  const segRaw = str(pick(f, CLIENT_COLUMNS.segment, used))
  let segment: ClientRow['segment'] = null
  if (segRaw !== '') {
    const s = SEGMENTS[segRaw.toUpperCase()]
    if (!s) return { line, id, code: 'bad_segment', field: 'segment', value: segRaw, message: `segment must be A, B or C (got ${JSON.stringify(segRaw)})`, rejected: 'row' }
    segment = s
  }
  const kindRaw = str(pick(f, CLIENT_COLUMNS.kind, used))
  let kind: ClientRow['kind'] = 'client'
  if (kindRaw !== '') {
    const k = KINDS[kindRaw.toLowerCase()]
    if (!k) return { line, id, code: 'bad_kind', field: 'kind', value: kindRaw, message: `kind must be client, supplier, partner or other (got ${JSON.stringify(kindRaw)})`, rejected: 'row' }
    kind = k
  }
  const tz = str(pick(f, CLIENT_COLUMNS.tz, used))
  if (tz !== '' && !validZone(tz)) return { line, id, code: 'bad_tz', field: 'tz', value: tz, message: `${JSON.stringify(tz)} is not an IANA time zone`, rejected: 'row' }
  const managerId = str(pick(f, CLIENT_COLUMNS.manager, used))
  if (managerId !== '' && !managers.has(managerId)) {
    return { line, id, code: 'unknown_manager', field: 'manager_id', value: managerId, message: `manager ${JSON.stringify(managerId)} is not a known employee (import employees first)`, rejected: 'row' }
  }
  const name = str(pick(f, CLIENT_COLUMNS.name, used)) || id
  const inn = str(pick(f, CLIENT_COLUMNS.inn, used)) || null
  const region = str(pick(f, CLIENT_COLUMNS.region, used)) || null
  const phones: string[] = []
  const attributes: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(f)) {
    if (used.has(key)) continue
    if (PHONE_COLUMN.test(key)) {
      if (Array.isArray(value)) { for (const v of value) { const s = str(v); if (s !== '') phones.push(s) } } else {
        for (const part of str(value).split('|')) { const s = part.trim(); if (s !== '') phones.push(s) }
      }
      continue
    }
    if (key === 'attributes') {
      let a: unknown = value
      if (typeof value === 'string') {
        if (value.trim() === '') continue
        try { a = JSON.parse(value) } catch { return { line, id, code: 'bad_attributes', field: 'attributes', message: 'attributes is not a JSON object', rejected: 'row' } }
      }
      if (a === null || typeof a !== 'object' || Array.isArray(a)) return { line, id, code: 'bad_attributes', field: 'attributes', message: 'attributes must be a JSON object', rejected: 'row' }
      Object.assign(attributes, a)
      continue
    }
    if (key === '…extra') continue
    if (value === '' || value === null || value === undefined) continue
    attributes[key] = value
  }
  return {
    line, id, name, inn, segment, kind, region, tz: tz || null,
    managerId: managerId || null, attributes, phones,
  }
}

// ---------------------------------------------------------------- shared plumbing

export interface ImportOptions {
  pool: Pool
  log: Logger
  /** Region for numbers without a country code (the config file's defaultRegion). */
  defaultRegion: string
  /** The switchboard config: its offices are synced into `offices` for employees. */
  config?: SwitchboardFile
  /** Rows per transaction (default 20,000). */
  batchSize?: number
  maxBytes?: number
  /** Who started it (user id, 'cli'); stored with the run. */
  actor?: string
  /** File name or 'http'; stored with the run. */
  source?: string
  /** Remove phones of imported clients that the file no longer lists (default true). */
  prunePhones?: boolean
  /** Problems kept in the report (default 1,000; all are counted). */
  maxProblems?: number
}

const LOCK_KEY = 5_150_001 // pg_advisory_lock key: one CRM import at a time, cluster-wide

async function withImportRun(
  kind: 'clients' | 'employees', opts: ImportOptions,
  body: (client: PoolClient, b: ReportBuilder) => Promise<void>,
): Promise<ImportReport> {
  const client = await opts.pool.connect()
  let locked = false
  try {
    const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_KEY])
    if (!lock.rows[0].ok) throw new ImportBusyError()
    locked = true
    const run = await client.query<{ id: number }>(
      'INSERT INTO import_runs (kind, source, actor) VALUES ($1, $2, $3) RETURNING id', [kind, opts.source ?? null, opts.actor ?? null])
    const runId = Number(run.rows[0].id)
    const b = new ReportBuilder(runId, kind, opts.maxProblems ?? 1000)
    const log = opts.log.child({ importRun: runId, kind })
    log.info({ source: opts.source }, 'CRM import started')
    let failure: unknown
    try {
      await body(client, b)
    } catch (err) {
      failure = err
      b.report.state = 'failed'
      b.report.error = (err as Error).message
    }
    const report = b.finish()
    await client.query(
      `UPDATE import_runs SET state = $2, finished_at = now(), report = $3 WHERE id = $1`,
      [runId, report.state, JSON.stringify({ ...report, problems: report.problems.slice(0, 200), reassignments: report.reassignments.slice(0, 20) })],
    ).catch((err) => log.warn({ err }, 'could not record the import run'))
    // Committed batches are visible to every node whether or not the run finished.
    if (report.records > 0 || report.phones.removed > 0) {
      await client.query('SELECT pg_notify($1, $2)', [DIRECTORY_CHANNEL, String(runId)])
        .catch((err) => log.warn({ err }, 'could not notify other nodes of the import'))
    }
    if (failure !== undefined) {
      log.warn({ err: (failure as Error).message, rows: report.rows }, 'CRM import failed')
      throw failure
    }
    log.info({ rows: report.rows, phones: report.phones, records: report.records, problems: report.problemCount, ms: report.durationMs }, 'CRM import finished')
    return report
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined)
    client.release()
  }
}

async function inTransaction<T>(client: PoolClient, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN')
  try {
    const r = await fn()
    await client.query('COMMIT')
    return r
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  }
}

// ---------------------------------------------------------------- clients

interface BatchClient {
  row: ClientRow
  /** [e164, line it came from], each number once (a Map per client cost GC time at 1 M rows) */
  phones: Array<[string, number]>
}

/**
 * Import clients and their phones. `input` is any byte/text stream (file, HTTP body).
 * Returns the report; throws ImportFormatError / ImportTooLargeError / ImportBusyError
 * (and database errors) — batches committed before the error stay.
 *
 * Per batch, in one transaction: the validated rows are `COPY`ed into session temp
 * tables (staging, emptied at every commit) and merged with set-based statements that
 * write only what changed — new rows, and rows whose fields differ (`IS DISTINCT FROM`):
 * re-importing an unchanged file reads but writes nothing. `clients.import_run` /
 * `client_phones.import_run` name the run that last inserted or changed the row; two more
 * temp tables live for the whole run: the client ids of the file and the phones it listed
 * that were already in place (not rewritten, so not stamped). Together they tell a phone
 * listed for another client earlier in the file (a duplicate, even across batches) from
 * one held since an earlier import (it moves), and which phones the prune removes. The
 * temp tables are dropped at the end; nothing of a run outlives its connection.
 */
export async function importClients(input: Readable | AsyncIterable<Chunk>, opts: ImportOptions): Promise<ImportReport> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE
  return withImportRun('clients', opts, async (client, b) => {
    const r = b.report
    const mgr = await client.query<{ id: string }>('SELECT id FROM employees')
    const managers = new Set(mgr.rows.map((x) => x.id))
    await createRunTables(client)
    try {
      let batch = new Map<string, BatchClient>()
      let owners = new Map<string, string>() // phone → client id within the batch
      let rowsInBatch = 0
      let pending: Promise<void> | null = null
      // where the time goes (logged): Postgres writing batches, and Node waiting for it
      const timing = { writeMs: 0, waitMs: 0, started: performance.now() }
      const writer: { failed?: { err: unknown } } = {}
      const check = (): void => { if (writer.failed) throw writer.failed.err }

      for await (const rec of readRecords(input as AsyncIterable<Chunk>, {
        maxBytes: opts.maxBytes,
        onFormat: (format, delimiter) => { r.format = format; if (delimiter) r.delimiter = delimiter },
      })) {
        check()
        r.rows.read++
        // While Postgres writes the previous batch, give the event loop a turn now and then
        // (records arrive as microtasks): each reply of the writer waits for one.
        if (pending !== null && (r.rows.read & 127) === 0) await new Promise<void>((resolve) => setImmediate(resolve))
        const row = toClientRow(rec, managers)
        if ('code' in row) { r.rows.rejected++; b.problem(row); continue }
        r.rows.imported++
        let entry = batch.get(row.id)
        if (entry) entry.row = { ...row, attributes: { ...entry.row.attributes, ...row.attributes } }
        else { entry = { row, phones: [] }; batch.set(row.id, entry) }
        for (const raw of row.phones) {
          const e164 = normalizePhone(raw, opts.defaultRegion)
          if (e164 === null) {
            r.phones.rejected++
            b.problem({ line: row.line, id: row.id, code: 'bad_phone', field: 'phone', value: raw.slice(0, 64), message: `${JSON.stringify(raw.slice(0, 64))} is not a phone number`, rejected: 'phone' })
            continue
          }
          const owner = owners.get(e164)
          if (owner !== undefined && owner !== row.id) {
            r.phones.rejected++
            b.problem({ line: row.line, id: row.id, code: 'duplicate_phone', field: 'phone', value: e164, message: `${e164} is already listed for client ${owner} earlier in the file`, rejected: 'phone' })
            continue
          }
          if (owner === row.id) continue // listed again for the same client in this batch: already in its list
          owners.set(e164, row.id)
          entry.phones.push([e164, row.line])
        }
        if (++rowsInBatch >= batchSize) {
          if (pending) { const w0 = performance.now(); await pending; timing.waitMs += performance.now() - w0 }
          check()
          const full = batch
          batch = new Map()
          owners = new Map()
          rowsInBatch = 0
          // Parse the next batch while Postgres writes this one.
          const b0 = performance.now()
          pending = writeClientBatch(client, full, b).then(() => { timing.writeMs += performance.now() - b0 }, (err) => { writer.failed = { err } })
        }
      }
      if (pending) { const w0 = performance.now(); await pending; timing.waitMs += performance.now() - w0 }
      check()
      if (batch.size > 0) { const b0 = performance.now(); await writeClientBatch(client, batch, b); timing.writeMs += performance.now() - b0; timing.waitMs += performance.now() - b0 }
      const t0 = performance.now()

      if (opts.prunePhones ?? true) {
        // Statistics for the planner: a nightly full file (hash joins) and a small
        // partial one (index probes per listed client) want different plans.
        await client.query('ANALYZE crm_run_clients, crm_run_phones')
        const del = await client.query(
          `DELETE FROM client_phones p
            WHERE p.client_id IN (SELECT id FROM crm_run_clients)
              AND p.import_run IS DISTINCT FROM $1
              AND NOT EXISTS (SELECT 1 FROM crm_run_phones l WHERE l.phone = p.phone)`, [r.runId])
        r.phones.removed = del.rowCount ?? 0
      }
      opts.log.info({ importRun: r.runId, readAndParseMs: Math.round(t0 - timing.started - timing.waitMs), batchWriteMs: Math.round(timing.writeMs), waitForPostgresMs: Math.round(timing.waitMs), pruneMs: Math.round(performance.now() - t0) }, 'CRM import timing')
    } finally {
      // The connection goes back to the pool: leave no run state on it.
      await client.query('DROP TABLE IF EXISTS crm_stage_clients, crm_stage_phones, crm_run_clients, crm_run_phones').catch(() => undefined)
    }
  })
}

/** Rows per transaction: big enough that per-batch round trips vanish, small enough to stay light in memory. */
const DEFAULT_BATCH_SIZE = 20_000

async function createRunTables(client: PoolClient): Promise<void> {
  // Local buffers for the run tables (tens of MB for 1 M phones); only possible before the
  // session first touches a temp table, so a pooled connection that already did keeps its setting.
  await client.query(`SET temp_buffers = '128MB'`).catch(() => undefined)
  await client.query(`
    CREATE TEMP TABLE IF NOT EXISTS crm_stage_clients (
      id text NOT NULL, name text NOT NULL, inn text, segment text, kind text NOT NULL, region text, tz text,
      manager text, attributes jsonb NOT NULL,
      existed boolean NOT NULL DEFAULT false, changed boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS crm_stage_phones (phone text NOT NULL, client_id text NOT NULL, line integer NOT NULL,
      existed boolean NOT NULL DEFAULT false, owner text, owner_run bigint) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS crm_run_clients (id text NOT NULL);
    CREATE TEMP TABLE IF NOT EXISTS crm_run_phones (phone text PRIMARY KEY);
    TRUNCATE crm_run_clients, crm_run_phones;`)
}

/** A value in COPY's text format: `\N` for NULL; backslash, tab, CR and LF escaped. */
const COPY_SPECIAL = /[\\\t\n\r]/
const COPY_SPECIAL_G = /[\\\t\n\r]/g
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
function copyValue(v: string | null): string {
  if (v === null) return '\\N'
  return COPY_SPECIAL.test(v) ? v.replace(COPY_SPECIAL_G, (c) => COPY_ESCAPES[c]) : v
}

async function copyIn(client: PoolClient, sql: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return
  const CHUNK = 2000
  function* chunks(): Generator<Buffer> {
    for (let i = 0; i < lines.length; i += CHUNK) yield Buffer.from(lines.slice(i, i + CHUNK).join(''))
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), client.query(copyFrom(sql)))
}

const CLIENT_FIELDS = ['name', 'inn', 'segment', 'kind', 'region', 'tz', 'assigned_manager_id', 'attributes'] as const
const CLIENT_DIFFERS = `(c.${CLIENT_FIELDS.join(', c.')}) IS DISTINCT FROM (s.name, s.inn, s.segment, s.kind, s.region, s.tz, s.manager, s.attributes)`

async function writeClientBatch(client: PoolClient, batch: Map<string, BatchClient>, b: ReportBuilder): Promise<void> {
  const r = b.report
  const runId = r.runId
  const clientLines: string[] = []
  const phoneLines: string[] = []
  const lineOf = new Map<string, number>() // phone → its line, for the report
  for (const { row, phones } of batch.values()) {
    const id = copyValue(row.id)
    clientLines.push(`${id}\t${copyValue(row.name)}\t${copyValue(row.inn)}\t${copyValue(row.segment)}\t${row.kind}\t${copyValue(row.region)}\t${copyValue(row.tz)}\t${copyValue(row.managerId)}\t${copyValue(JSON.stringify(row.attributes))}\n`)
    for (const [p, line] of phones) { phoneLines.push(`${p}\t${id}\t${line}\n`); lineOf.set(p, line) }
  }
  // Round trips are few on purpose: statements without parameters go out together as one
  // simple-protocol query (the run id is a number from Postgres, inlined), because every
  // reply waits for Node's event loop, which is busy parsing the next batch meanwhile.
  // A failing statement skips the rest of its query string (COMMIT included): ROLLBACK.
  try {
    // The import is the only writer of these tables (and one run at a time holds the
    // advisory lock); the table locks make that a guarantee for the batch, so "update what
    // changed, insert what is new" is an exact upsert without ON CONFLICT's speculative
    // insertion. Readers (calls, the directory load, the API) are not blocked.
    // Batches are small next to the tables: probe the primary keys row by row rather than
    // hash whole tables (the temp tables have no statistics to tell the planner so).
    // Durability: the batch's COMMIT does not wait for its WAL flush (the WAL writer flushes
    // it within wal_writer_delay). A crash can lose the last batches acknowledged before
    // it; nothing else — Postgres stays consistent, and the import is idempotent, so the
    // run (reported failed, or never finished) is simply run again.
    // References: every staged phone names a client of this batch, which the batch inserts,
    // updates or (unchanged) finds under the table lock — so the phones' per-statement
    // reference check (migration 0011) is skipped for this transaction.
    await client.query(`BEGIN;
      LOCK TABLE clients, client_phones IN SHARE ROW EXCLUSIVE MODE;
      SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL synchronous_commit = off;
      SET LOCAL switchboard.crm_batch_references = 'checked'`)
    await copyIn(client, 'COPY crm_stage_clients (id, name, inn, segment, kind, region, tz, manager, attributes) FROM STDIN', clientLines)
    // One primary-key probe per client, marked on the staging row: does it exist, does it
    // differ. Then only changed clients are rewritten (a probe each) and new ones inserted
    // without probing again; an unchanged client costs that one probe and no write.
    await client.query(`
      UPDATE crm_stage_clients s SET existed = true, changed = ${CLIENT_DIFFERS}
        FROM clients c WHERE c.id = s.id;
      UPDATE clients c SET
         name = s.name, inn = s.inn, segment = s.segment, kind = s.kind, region = s.region, tz = s.tz,
         assigned_manager_id = s.manager, attributes = s.attributes, import_run = ${runId}, updated_at = now()
        FROM crm_stage_clients s
       WHERE s.changed AND c.id = s.id;
      INSERT INTO clients (id, name, inn, segment, kind, region, tz, assigned_manager_id, attributes, import_run)
      SELECT s.id, s.name, s.inn, s.segment, s.kind, s.region, s.tz, s.manager, s.attributes, ${runId}
        FROM crm_stage_clients s
       WHERE NOT s.existed
       ORDER BY s.id;
      INSERT INTO crm_run_clients SELECT id FROM crm_stage_clients${phoneLines.length === 0 ? ';\n      COMMIT' : ''}`)
    r.records += batch.size
    if (phoneLines.length === 0) return
    await copyIn(client, 'COPY crm_stage_phones (phone, client_id, line) FROM STDIN', phoneLines)
    // One primary-key probe per number: its current owner (and the run that wrote it), kept
    // on the staging row; every later step reads the mark instead of probing again.
    // Numbers another client holds: listed for it earlier in this run (written by this
    // run, or listed unchanged) = duplicate in the file; held from before = it moves to
    // the new client (newest import wins).
    const probed = await client.query(`
      UPDATE crm_stage_phones s SET existed = true, owner = p.client_id, owner_run = p.import_run
        FROM client_phones p WHERE p.phone = s.phone;
      SELECT s.phone, s.client_id, s.owner,
             (s.owner_run IS NOT DISTINCT FROM ${runId} OR EXISTS (SELECT 1 FROM crm_run_phones l WHERE l.phone = s.phone)) AS listed
        FROM crm_stage_phones s
       WHERE s.existed AND s.owner <> s.client_id`) as unknown as Array<{ rows: Array<{ phone: string; client_id: string; owner: string; listed: boolean }> }>
    const taken = probed[1].rows
    let accepted = phoneLines.length
    let moved = 0
    if (taken.length > 0) {
      const dups: string[] = []
      for (const t of taken) {
        const line = lineOf.get(t.phone) ?? 0
        if (t.listed) {
          dups.push(t.phone)
          r.phones.rejected++
          b.problem({ line, id: t.client_id, code: 'duplicate_phone', field: 'phone', value: t.phone, message: `${t.phone} is already listed for client ${t.owner} earlier in the file`, rejected: 'phone' })
        } else {
          moved++
          b.move({ line, phone: t.phone, from: t.owner, to: t.client_id })
        }
      }
      if (dups.length > 0) {
        await client.query('DELETE FROM crm_stage_phones WHERE phone = ANY($1::text[])', [dups])
        accepted -= dups.length
      }
    }
    // Taken numbers left after the duplicates were deleted from the staging table move.
    // Numbers the client already had are not rewritten; the run remembers them (for
    // duplicates in later batches and for the prune). Numbers this run writes carry its id.
    // New numbers: the table lock keeps anyone else from adding them since the probe.
    await client.query(`${moved > 0 ? `
      UPDATE client_phones p SET client_id = s.client_id, import_run = ${runId}
        FROM crm_stage_phones s WHERE s.existed AND s.owner <> s.client_id AND p.phone = s.phone;` : ''}
      INSERT INTO crm_run_phones
      SELECT s.phone FROM crm_stage_phones s
       WHERE s.existed AND s.owner = s.client_id AND s.owner_run IS DISTINCT FROM ${runId}
      ON CONFLICT (phone) DO NOTHING;
      INSERT INTO client_phones (phone, client_id, import_run)
      SELECT s.phone, s.client_id, ${runId} FROM crm_stage_phones s
       WHERE NOT s.existed
       ORDER BY s.phone;
      COMMIT`)
    r.phones.imported += accepted
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  }
}

// ---------------------------------------------------------------- employees

const EMPLOYEE_ROLES = new Set(['agent', 'manager', 'supervisor', 'secretary'])
const MAX_EMPLOYEES = 200_000

interface EmployeeRow {
  line: number
  id: string
  name: string
  role: string
  group: string | null
  extension: string | null
  mobile: string | null
  office: string | null
  supervisor: string | null
}

/**
 * Import employees (id, name, role, group, extension, mobile, office, supervisor) in one
 * transaction — supervisors reference employees of the same file. The config's offices
 * are synced into `offices` first so office ids can be checked. A mobile or extension
 * that moves to another employee is taken from the previous holder (newest wins).
 */
export async function importEmployees(input: Readable | AsyncIterable<Chunk>, opts: ImportOptions): Promise<ImportReport> {
  return withImportRun('employees', opts, async (client, b) => {
    const r = b.report
    const rows = new Map<string, EmployeeRow>()
    const mobiles = new Map<string, string>()
    const extensions = new Map<string, string>()
    for await (const rec of readRecords(input as AsyncIterable<Chunk>, {
      maxBytes: opts.maxBytes,
      onFormat: (format, delimiter) => { r.format = format; if (delimiter) r.delimiter = delimiter },
    })) {
      r.rows.read++
      if (r.rows.read > MAX_EMPLOYEES) throw new ImportFormatError(`more than ${MAX_EMPLOYEES} employees: is this the clients file?`, rec.line)
      const row = toEmployeeRow(rec, opts.defaultRegion)
      if ('code' in row) { r.rows.rejected++; b.problem(row); continue }
      const reject = (p: ImportProblem) => { r.rows.rejected++; b.problem(p) }
      if (row.mobile !== null) {
        const other = mobiles.get(row.mobile)
        if (other !== undefined && other !== row.id) { reject({ line: row.line, id: row.id, code: 'duplicate_mobile', field: 'mobile', value: row.mobile, message: `mobile ${row.mobile} is already listed for employee ${other}`, rejected: 'row' }); continue }
      }
      if (row.extension !== null) {
        const other = extensions.get(row.extension)
        if (other !== undefined && other !== row.id) { reject({ line: row.line, id: row.id, code: 'duplicate_extension', field: 'extension', value: row.extension, message: `extension ${row.extension} is already listed for employee ${other}`, rejected: 'row' }); continue }
      }
      const prev = rows.get(row.id)
      if (prev?.mobile) mobiles.delete(prev.mobile)
      if (prev?.extension) extensions.delete(prev.extension)
      if (row.mobile !== null) mobiles.set(row.mobile, row.id)
      if (row.extension !== null) extensions.set(row.extension, row.id)
      rows.set(row.id, row)
      r.rows.imported++
    }
    if (rows.size === 0) return

    await inTransaction(client, async () => {
      if (opts.config) {
        const os = opts.config.offices
        await client.query(
          `INSERT INTO offices (id, name, tz, weekly_hours)
           SELECT id, name, tz, hours::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(id, name, tz, hours)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tz = EXCLUDED.tz, weekly_hours = EXCLUDED.weekly_hours`,
          [os.map((o) => o.id), os.map((o) => o.name), os.map((o) => o.tz), os.map((o) => JSON.stringify(o.hours))])
      }
      const offices = new Set((await client.query<{ id: string }>('SELECT id FROM offices')).rows.map((x) => x.id))
      const known = new Set((await client.query<{ id: string }>('SELECT id FROM employees')).rows.map((x) => x.id))
      for (const row of rows.values()) {
        if (row.office !== null && !offices.has(row.office)) {
          b.problem({ line: row.line, id: row.id, code: 'unknown_office', field: 'office', value: row.office, message: `office ${JSON.stringify(row.office)} is not in the config`, rejected: 'row' })
          rows.delete(row.id); r.rows.rejected++; r.rows.imported--
        }
      }
      for (const row of rows.values()) {
        if (row.supervisor !== null && !rows.has(row.supervisor) && !known.has(row.supervisor)) {
          b.problem({ line: row.line, id: row.id, code: 'unknown_supervisor', field: 'supervisor', value: row.supervisor, message: `supervisor ${JSON.stringify(row.supervisor)} is not a known employee; left empty`, rejected: 'field' })
          row.supervisor = null
        }
      }
      const list = [...rows.values()]
      const ids = list.map((e) => e.id)
      // Free the numbers first so that swaps and moves do not trip the unique constraints.
      await client.query('UPDATE employees SET mobile = NULL, extension = NULL WHERE id = ANY($1::text[])', [ids])
      const ms = list.filter((e) => e.mobile !== null).map((e) => e.mobile as string)
      const xs = list.filter((e) => e.extension !== null).map((e) => e.extension as string)
      await client.query('UPDATE employees SET mobile = NULL WHERE mobile = ANY($1::text[])', [ms])
      await client.query('UPDATE employees SET extension = NULL WHERE extension = ANY($1::text[])', [xs])
      await client.query(
        `INSERT INTO employees (id, name, role, group_id, extension, mobile, office_id, supervisor_id, active)
         SELECT id, name, role, grp, ext, mobile, office, sup, true
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             AS x(id, name, role, grp, ext, mobile, office, sup)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, group_id = EXCLUDED.group_id,
           extension = EXCLUDED.extension, mobile = EXCLUDED.mobile, office_id = EXCLUDED.office_id,
           supervisor_id = EXCLUDED.supervisor_id, active = true`,
        [ids, list.map((e) => e.name), list.map((e) => e.role), list.map((e) => e.group), list.map((e) => e.extension),
          list.map((e) => e.mobile), list.map((e) => e.office), list.map((e) => e.supervisor)])
      r.records = list.length
    })
  })
}

function toEmployeeRow(rec: SourceRecord, defaultRegion: string): EmployeeRow | ImportProblem {
  const f = rec.fields
  const line = rec.line
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return { line, code: 'bad_row', message: 'the row is not an object', rejected: 'row' }
  const used = new Set<string>()
  const id = str(pick(f, ['id', 'employee_id', 'emp_id'], used))
  if (id === '') return { line, code: 'missing_id', field: 'id', message: 'id is missing', rejected: 'row' }
  const role = str(pick(f, ['role'], used)).toLowerCase()
  if (!EMPLOYEE_ROLES.has(role)) return { line, id, code: 'bad_role', field: 'role', value: role, message: `role must be agent, manager, supervisor or secretary (got ${JSON.stringify(role)})`, rejected: 'row' }
  const ext = str(pick(f, ['extension', 'ext'], used))
  if (ext !== '' && !/^[0-9]{2,8}$/.test(ext)) return { line, id, code: 'bad_extension', field: 'extension', value: ext, message: `extension must be 2-8 digits (got ${JSON.stringify(ext)})`, rejected: 'row' }
  const mobileRaw = str(pick(f, ['mobile', 'mobile_phone', 'phone'], used))
  let mobile: string | null = null
  if (mobileRaw !== '') {
    mobile = normalizePhone(mobileRaw, defaultRegion)
    if (mobile === null) return { line, id, code: 'bad_mobile', field: 'mobile', value: mobileRaw.slice(0, 64), message: `${JSON.stringify(mobileRaw.slice(0, 64))} is not a phone number`, rejected: 'row' }
  }
  return {
    line, id, role, name: str(pick(f, ['name', 'full_name'], used)) || id,
    group: str(pick(f, ['group', 'group_id'], used)) || null, extension: ext || null, mobile,
    office: str(pick(f, ['office', 'office_id'], used)) || null,
    supervisor: str(pick(f, ['supervisor', 'supervisor_id'], used)) || null,
  }
}

/** `importClients` or `importEmployees` by name (CLI, HTTP). */
export function runImport(kind: 'clients' | 'employees', input: Readable | AsyncIterable<Chunk>, opts: ImportOptions): Promise<ImportReport> {
  return kind === 'employees' ? importEmployees(input, opts) : importClients(input, opts)
}

/** Index of the delimiter or line break that ends the unquoted field starting at `i` (or the buffer's length). */
function fieldEnd(buf: string, i: number, delimiter: number): number {
  let e = i
  while (e < buf.length) {
    const c = buf.charCodeAt(e)
    if (c === delimiter || c === 10 || c === 13) break
    e++
  }
  return e
}
