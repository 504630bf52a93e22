/**
 * Read an uploaded call list (CSV with a header row, a JSON array, or JSON Lines — the CRM
 * importer's reader, streamed and size-limited) and validate every row (rows.ts). Rows are
 * kept in memory up to callPlans.maxRows; a bigger list is refused as a whole.
 *
 * Line numbers: CSV and JSON Lines give the line in the file; a JSON array gives the item's
 * position (1-based), since a compact array puts every item on line 1.
 */
import type { Pool } from '../db/pool.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'
import { readRecords, type ImportFormat } from '../crm/import.ts'
import { SwitchboardError } from '../errors.ts'
import { rowField, validateRow, type PlanDefaults, type PlanRow, type RawRow, type RowRejection } from './rows.ts'

export interface UploadResult {
  format: ImportFormat | null
  accepted: PlanRow[]
  rejected: Array<{ rejection: RowRejection; phoneRaw: string | null; clientId: string | null }>
}

export class TooManyRowsError extends SwitchboardError {
  constructor(limit: number) { super('too_many_rows', `the list has more than ${limit} rows (callPlans.maxRows): split it into several plans`, 413, { limit }) }
}

export async function readPlanUpload(body: AsyncIterable<Buffer | string>, opts: {
  pool: Pool; config: SwitchboardFile; directory: DirectorySnapshot; defaults: PlanDefaults; now: Date
}): Promise<UploadResult> {
  const { config: cfg } = opts
  let format: ImportFormat | null = null
  const raws: RawRow[] = []
  let item = 0
  for await (const rec of readRecords(body, { maxBytes: cfg.callPlans.maxUploadBytes, maxRecordChars: 64 * 1024, onFormat: (f) => { format = f } })) {
    item++
    if (item > cfg.callPlans.maxRows) throw new TooManyRowsError(cfg.callPlans.maxRows)
    raws.push({ line: format === 'json' ? item : rec.line, fields: rec.fields })
  }
  // Rows that name a client but no number: that client's numbers, in one query.
  const needPhones = [...new Set(raws.filter((r) => !rowField(r.fields, 'phone') && rowField(r.fields, 'client')).map((r) => rowField(r.fields, 'client')))]
  const phones = new Map<string, string[]>()
  if (needPhones.length > 0) {
    const r = await opts.pool.query<{ client_id: string; phone: string }>('SELECT client_id, phone FROM client_phones WHERE client_id = ANY($1::text[]) ORDER BY client_id, phone', [needPhones])
    for (const x of r.rows) phones.set(x.client_id, [...(phones.get(x.client_id) ?? []), x.phone])
  }
  const ctx = { config: cfg, directory: opts.directory, defaults: opts.defaults, now: opts.now, seenPhones: new Map<string, number>(), clientPhones: (id: string) => phones.get(id) ?? [] }
  const out: UploadResult = { format, accepted: [], rejected: [] }
  for (const raw of raws) {
    const v = validateRow(raw, ctx)
    if (v.ok) out.accepted.push(v.row)
    else out.rejected.push({ rejection: v.rejection, phoneRaw: v.phoneRaw, clientId: v.clientId })
  }
  return out
}
