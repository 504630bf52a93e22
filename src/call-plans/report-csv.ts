/**
 * A call plan's per-row report as CSV (RFC 4180, header row, upload order), streamed page by
 * page. Cells a spreadsheet would run as formulas get an apostrophe — except plain E.164
 * numbers, which evaluate to nothing harmful and must stay dialable when copied.
 */
import type { RowView } from './store.ts'

export const REPORT_COLUMNS = [
  'line', 'status', 'outcome', 'attempts', 'phone', 'phone_raw', 'client_id', 'agent_id', 'queue_id', 'dialled_agent_id',
  'call_id', 'talk_sec', 'last_cause', 'last_attempt_at', 'next_attempt_at', 'done_at', 'window_start', 'window_end', 'note',
] as const

export function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'number') return String(v)
  let s = v
  if (/^[=+\-@\t\r]/.test(s) && !/^\+[0-9]{7,15}$/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export function reportCsvLine(r: RowView): string {
  return [
    r.line, r.status, r.outcome, r.attempts, r.phone, r.phoneRaw, r.clientId, r.agentId, r.queueId, r.dialledAgentId,
    r.callId, r.talkSec, r.lastCause, r.lastAttemptAt, r.nextAttemptAt, r.doneAt, r.windowStart, r.windowEnd, r.note,
  ].map(csvCell).join(',') + '\r\n'
}

export async function* reportCsv(rows: AsyncIterable<RowView>): AsyncGenerator<string> {
  yield REPORT_COLUMNS.join(',') + '\r\n'
  let buf = ''
  for await (const r of rows) {
    buf += reportCsvLine(r)
    if (buf.length > 64 * 1024) { yield buf; buf = '' }
  }
  if (buf) yield buf
}
