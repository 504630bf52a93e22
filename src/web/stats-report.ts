/**
 * Reading GET /api/stats/report?…&format=json (issue 11) into chartable rows. The report's
 * exact row shape belongs to the statistics API; this accepts the natural spellings (an
 * array at the top or under rows/items/groups/buckets/data, the group key under
 * key/bucket/hour/day/agent/queue/…) so the dashboard keeps working if the names shift.
 */
export interface ReportRow {
  key: string
  label: string
  offered: number | null
  answered: number | null
  abandoned: number | null
  serviceLevelPct: number | null
  asaSec: number | null
  ahtSec: number | null
  csatAvg: number | null
}

const KEY_FIELDS = ['label', 'name', 'agentName', 'queueName', 'key', 'bucket', 'hour', 'day', 'date', 'agent', 'agentId', 'queue', 'queueId', 'group', 'period', 'start', 'from']
const PICK: Record<Exclude<keyof ReportRow, 'key' | 'label'>, string[]> = {
  offered: ['offered', 'offeredCalls', 'calls', 'total'],
  answered: ['answered', 'answeredCalls'],
  abandoned: ['abandoned', 'abandonedCalls'],
  serviceLevelPct: ['serviceLevelPct', 'serviceLevel', 'slPct', 'sl'],
  asaSec: ['asaSec', 'asa', 'avgSpeedOfAnswerSec'],
  ahtSec: ['ahtSec', 'aht', 'avgHandleTimeSec'],
  csatAvg: ['csatAvg', 'csat', 'csatAverage'],
}

function numberOf(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v)
  if (v && typeof v === 'object' && 'average' in v) return numberOf((v as { average: unknown }).average)
  return null
}

export function rowsOfReport(body: unknown): ReportRow[] {
  const list = Array.isArray(body) ? body
    : body && typeof body === 'object'
      ? (['rows', 'items', 'groups', 'buckets', 'data', 'report'].map((k) => (body as Record<string, unknown>)[k]).find(Array.isArray) as unknown[] | undefined) ?? []
      : []
  return list.filter((r): r is Record<string, unknown> => !!r && typeof r === 'object').map((r, i) => {
    const keyField = ['key', 'bucket', 'hour', 'day', 'date', 'agentId', 'agent', 'queueId', 'queue', 'group', 'period', 'start', 'from'].find((k) => r[k] !== undefined && r[k] !== null)
    const labelField = KEY_FIELDS.find((k) => typeof r[k] === 'string' || typeof r[k] === 'number')
    const key = keyField ? String(r[keyField]) : String(i)
    const row: ReportRow = { key, label: labelField ? shortLabel(String(r[labelField])) : key, offered: null, answered: null, abandoned: null, serviceLevelPct: null, asaSec: null, ahtSec: null, csatAvg: null }
    for (const [field, names] of Object.entries(PICK) as Array<[keyof typeof PICK, string[]]>) {
      for (const n of names) {
        const v = numberOf(r[n])
        if (v !== null) { row[field] = v; break }
      }
    }
    return row
  })
}

/** "2026-11-23T14:00:00.000Z" → "14:00" (hour buckets), "2026-11-23" stays */
function shortLabel(s: string): string {
  // the report labels hours in its own time zone ("2026-11-23T14:00"): keep its clock
  const m = /^\d{4}-\d{2}-\d{2}T(\d{2}:\d{2})/.exec(s)
  if (m) return m[1]
  return s.length > 24 ? `${s.slice(0, 23)}…` : s
}
