/**
 * One uploaded call-plan row → a row to dial, or a rejection with a reason an admin can act
 * on (line number, field, code, message). Pure: the directory, the config and the clock come
 * in; the HTTP plugin streams the file and the store writes what this decides.
 *
 * Columns (CSV header or JSON keys, case-insensitive): phone, client_id (client), agent_id
 * (agent), queue_id (queue), window_start (from), window_end (until), note. A row needs a
 * phone or a client (whose first number is then called), and exactly one of agent / queue —
 * its own or the plan's default. Window times are ISO 8601; without an offset they are read
 * in the plan's time zone.
 */
import { DateTime } from 'luxon'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'
import { normalizePhone } from '../crm/phone.ts'
import { endpointOf } from '../calls/context.ts'

export type RejectCode =
  | 'missing_phone' | 'bad_phone' | 'unknown_client' | 'client_has_no_phone' | 'duplicate_phone'
  | 'unknown_agent' | 'agent_unreachable' | 'unknown_queue' | 'ambiguous_target' | 'no_target'
  | 'bad_window' | 'window_past' | 'bad_row'

export interface RowRejection { line: number; code: RejectCode; field?: string; value?: string; message: string }

/** Plan-level defaults a row falls back to. */
export interface PlanDefaults {
  agentId: string | null
  queueId: string | null
  windowStart: Date | null
  windowEnd: Date | null
  /** IANA zone of window times given without an offset. */
  timeZone: string
}

/** A record as read from the upload (strings mostly; JSON may give numbers). */
export interface RawRow { line: number; fields: Record<string, unknown> }

export interface PlanRow {
  line: number
  phoneRaw: string
  phone: string
  clientId: string | null
  agentId: string | null
  queueId: string | null
  windowStart: Date | null
  windowEnd: Date | null
  note: string | null
}

export type RowVerdict = { ok: true; row: PlanRow } | { ok: false; rejection: RowRejection; phoneRaw: string | null; clientId: string | null }

const ALIASES: Record<'phone' | 'client' | 'agent' | 'queue' | 'from' | 'until' | 'note', string[]> = {
  phone: ['phone', 'number', 'phone_number'],
  client: ['client_id', 'client', 'clientid'],
  agent: ['agent_id', 'agent', 'agentid', 'employee_id'],
  queue: ['queue_id', 'queue', 'queueid'],
  from: ['window_start', 'from', 'windowstart'],
  until: ['window_end', 'until', 'windowend'],
  note: ['note', 'comment'],
}

/** The value of a column under any of its names, trimmed; '' when absent. */
export function rowField(fields: Record<string, unknown>, key: keyof typeof ALIASES): string {
  for (const name of ALIASES[key]) {
    for (const [k, v] of Object.entries(fields)) {
      if (k.trim().toLowerCase() !== name) continue
      if (v === null || v === undefined) return ''
      if (typeof v === 'string') return v.trim()
      if (typeof v === 'number' || typeof v === 'boolean') return String(v)
      return JSON.stringify(v)
    }
  }
  return ''
}

/** ISO 8601 ('2026-11-23T10:00:00+03:00', '2026-11-23 10:00') → Date; null when unreadable. */
export function parseWindowTime(raw: string, timeZone: string): Date | null {
  if (raw === '') return null
  const dt = DateTime.fromISO(raw.replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2'), { zone: timeZone })
  return dt.isValid ? dt.toJSDate() : null
}

export interface ValidateContext {
  config: SwitchboardFile
  directory: DirectorySnapshot
  defaults: PlanDefaults
  now: Date
  /** E.164 → line of its first row in this plan (filled as rows are accepted). */
  seenPhones: Map<string, number>
  /** A client's numbers when the row gives the client only (first one is called). */
  clientPhones: (clientId: string) => readonly string[]
}

export function validateRow(raw: RawRow, ctx: ValidateContext): RowVerdict {
  const { config: cfg, directory: dir, defaults } = ctx
  const line = raw.line
  const phoneIn = rowField(raw.fields, 'phone')
  const clientIn = rowField(raw.fields, 'client')
  const reject = (code: RejectCode, message: string, f?: string, value?: string): RowVerdict => ({
    ok: false, rejection: { line, code, message, ...(f ? { field: f } : {}), ...(value !== undefined ? { value: value.slice(0, 200) } : {}) },
    phoneRaw: phoneIn ? phoneIn.slice(0, 64) : null, clientId: clientIn && dir.clients.has(clientIn) ? clientIn : null,
  })
  if (raw.fields['…extra'] !== undefined) return reject('bad_row', 'more values than header columns (a delimiter inside an unquoted value?)')

  // Who is called.
  if (clientIn && !dir.clients.has(clientIn)) return reject('unknown_client', `client ${JSON.stringify(clientIn)} is not in the CRM directory`, 'client_id', clientIn)
  let phone: string | null
  let phoneRaw = phoneIn
  if (phoneIn) {
    if (phoneIn.length > 64) return reject('bad_phone', 'the phone number is longer than 64 characters', 'phone', phoneIn)
    phone = normalizePhone(phoneIn.replace(/[^0-9+*#()\s.-]/g, ' ').trim(), cfg.defaultRegion)
    if (!phone) return reject('bad_phone', `${JSON.stringify(phoneIn)} is not a phone number (default region ${cfg.defaultRegion}; give the area code)`, 'phone', phoneIn)
  } else if (clientIn) {
    phone = ctx.clientPhones(clientIn)[0] ?? null
    if (!phone) return reject('client_has_no_phone', `client ${clientIn} has no phone number in the CRM; give one in the phone column`, 'client_id', clientIn)
    phoneRaw = phone
  } else {
    return reject('missing_phone', 'neither a phone number nor a client id', 'phone')
  }

  // Who calls.
  const agentIn = rowField(raw.fields, 'agent')
  const queueIn = rowField(raw.fields, 'queue')
  if (agentIn && queueIn) return reject('ambiguous_target', 'both an agent and a queue: give one of them', 'agent_id', `${agentIn} / ${queueIn}`)
  const agentId = agentIn || (queueIn ? null : defaults.agentId)
  const queueId = queueIn || (agentIn ? null : defaults.queueId)
  if (agentId) {
    const e = dir.employees.get(agentId)
    if (!e) return reject('unknown_agent', `employee ${JSON.stringify(agentId)} is not in the employee directory`, 'agent_id', agentId)
    if (!endpointOf(e, { gateways: cfg.gateways, fmc: cfg.fmc })) return reject('agent_unreachable', `employee ${agentId} has neither an extension nor a mobile to ring`, 'agent_id', agentId)
  } else if (queueId) {
    if (!cfg.queues.some((q) => q.id === queueId)) return reject('unknown_queue', `queue ${JSON.stringify(queueId)} is not configured`, 'queue_id', queueId)
  } else {
    return reject('no_target', 'no agent or queue on the row and none for the plan', 'agent_id')
  }

  // When.
  const fromIn = rowField(raw.fields, 'from')
  const untilIn = rowField(raw.fields, 'until')
  const windowStart = fromIn ? parseWindowTime(fromIn, defaults.timeZone) : defaults.windowStart
  const windowEnd = untilIn ? parseWindowTime(untilIn, defaults.timeZone) : defaults.windowEnd
  if (fromIn && !windowStart) return reject('bad_window', `window start ${JSON.stringify(fromIn)} is not a date-time (ISO 8601, e.g. 2026-11-23T10:00+03:00)`, 'window_start', fromIn)
  if (untilIn && !windowEnd) return reject('bad_window', `window end ${JSON.stringify(untilIn)} is not a date-time (ISO 8601, e.g. 2026-11-23T18:00+03:00)`, 'window_end', untilIn)
  if (windowStart && windowEnd && windowEnd <= windowStart) {
    return reject('bad_window', `the window ends (${windowEnd.toISOString()}) before it starts (${windowStart.toISOString()})`, 'window_end', untilIn || windowEnd.toISOString())
  }
  if (windowEnd && windowEnd <= ctx.now) return reject('window_past', `the window ended at ${windowEnd.toISOString()}, before the upload`, 'window_end', untilIn || windowEnd.toISOString())

  const first = ctx.seenPhones.get(phone)
  if (first !== undefined) return reject('duplicate_phone', `${phone} is already on line ${first} of this plan`, 'phone', phoneRaw)
  ctx.seenPhones.set(phone, line)
  const clientId = clientIn || dir.clientByPhone(phone)?.id || null
  const note = rowField(raw.fields, 'note').slice(0, 500) || null
  return { ok: true, row: { line, phoneRaw: phoneRaw.slice(0, 64), phone, clientId, agentId, queueId, windowStart, windowEnd, note } }
}
