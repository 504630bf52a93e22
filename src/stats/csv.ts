import type { StatsFigures, StatsReport } from './report.ts'

/**
 * A report as CSV (RFC 4180, header row, one line per group and a last `total` line) for
 * spreadsheets and the ERP. Cells a spreadsheet would run as formulas (=, +, -, @ first:
 * agent names come from the CRM) are prefixed with an apostrophe.
 */
export function reportToCsv(report: StatsReport): string {
  const edges = report.abandonBucketsSec
  const abandonCols = edges.map((e, i) => `abandon_${i === 0 ? 0 : edges[i - 1]}_${e}s`).concat(`abandon_${edges[edges.length - 1]}s_plus`)
  const agent = report.groupBy === 'agent'
  const header = [
    'key', 'label', 'inbound', 'offered', 'answered', 'abandoned', 'unanswered', 'after_hours', 'answered_within_sl', 'service_level_pct',
    'asa_sec', 'aht_sec', 'talk_sec', 'hold_sec', 'abandon_avg_sec', ...abandonCols, 'outbound', 'fmc', 'callbacks_created', 'callbacks_done',
    'csat_avg', 'csat_count', ...Array.from({ length: 10 }, (_, i) => `csat_${i + 1}`), 'repeat_calls', 'repeat_rate_pct',
    ...(agent ? ['ready_sec', 'not_ready_sec', 'on_call_sec', 'wrap_up_sec', 'offers', 'offers_missed'] : []),
  ]
  const line = (key: string | null, label: string, f: StatsFigures) => [
    key, label, f.inbound, f.offered, f.answered, f.abandoned, f.unanswered, f.afterHours, f.answeredWithinSl, f.serviceLevelPct,
    f.asaSec, f.ahtSec, f.talkSec, f.holdSec, f.abandonAvgSec, ...f.abandonTimes, f.outbound, f.fmc, f.callbacksCreated, f.callbacksDone,
    f.csatAvg, f.csatCount, ...f.csatDistribution, f.repeatCalls, f.repeatRatePct,
    ...(agent ? [f.readySec, f.notReadySec, f.onCallSec, f.wrapUpSec, f.offers, f.offersMissed] : []),
  ].map(cell).join(',')
  const lines = [header.join(','), ...report.rows.map((r) => line(r.key, r.label, r)), line('total', 'total', report.totals)]
  return lines.join('\r\n') + '\r\n'
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'number') return String(v)
  let s = v
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}
