import { DateTime, IANAZone } from 'luxon'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import { ValidationError } from '../errors.ts'

export type GroupBy = 'day' | 'hour' | 'queue' | 'agent'
export const GROUP_BYS: readonly GroupBy[] = ['day', 'hour', 'queue', 'agent']

export interface ReportRange {
  /** inclusive, UTC */
  from: Date
  /** exclusive, UTC */
  to: Date
  tz: string
  groupBy: GroupBy
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/

/** The zone reports use when the request names none: stats.timeZone, else the default office's, else the first office's. */
export function reportZone(cfg: SwitchboardFile): string {
  if (cfg.stats.timeZone) return cfg.stats.timeZone
  const office = cfg.offices.find((o) => o.id === cfg.routing.defaultOfficeId) ?? cfg.offices[0]
  return office?.tz ?? 'UTC'
}

/**
 * The report's time range from the query: `from`/`to` as dates (YYYY-MM-DD, local days in
 * `tz`; `to` inclusive: from=2026-11-23&to=2026-11-23 is that one day) or ISO date-times
 * (an offset, or local time in `tz`; `to` exclusive). Default: today in `tz`.
 */
export function parseReportRange(q: { from?: string; to?: string; tz?: string; groupBy?: string }, cfg: SwitchboardFile, now = new Date()): ReportRange {
  const tz = q.tz ?? reportZone(cfg)
  if (!IANAZone.isValidZone(tz)) throw new ValidationError(`tz: ${JSON.stringify(tz)} is not an IANA time zone`, { field: 'tz' })
  const groupBy = (q.groupBy ?? 'day') as GroupBy
  if (!GROUP_BYS.includes(groupBy)) throw new ValidationError(`groupBy: must be one of ${GROUP_BYS.join(', ')}`, { field: 'groupBy' })
  const today = DateTime.fromJSDate(now, { zone: tz }).startOf('day')
  const from = q.from === undefined ? today : parseInstant(q.from, tz, 'from', false)
  const to = q.to === undefined ? (q.from === undefined ? today.plus({ days: 1 }) : from.startOf('day').plus({ days: 1 })) : parseInstant(q.to, tz, 'to', true)
  if (to <= from) throw new ValidationError('to: must be after from', { field: 'to' })
  const days = to.diff(from, 'days').days
  const max = groupBy === 'hour' ? cfg.stats.maxHourlyReportDays : cfg.stats.maxReportDays
  if (days > max) throw new ValidationError(`the range covers ${Math.ceil(days)} days; at most ${max} for groupBy=${groupBy}`, { field: 'to', maxDays: max })
  return { from: from.toJSDate(), to: to.toJSDate(), tz, groupBy }
}

function parseInstant(s: string, tz: string, field: string, endOfDay: boolean): DateTime {
  if (DATE_RE.test(s)) {
    const d = DateTime.fromISO(s, { zone: tz })
    if (!d.isValid) throw new ValidationError(`${field}: ${JSON.stringify(s)} is not a date`, { field })
    return endOfDay ? d.plus({ days: 1 }) : d
  }
  const d = DateTime.fromISO(s, { zone: tz })
  if (!d.isValid || !/^\d{4}-\d{2}-\d{2}T/.test(s)) throw new ValidationError(`${field}: ${JSON.stringify(s)} is neither YYYY-MM-DD nor an ISO 8601 date-time`, { field })
  return d
}
