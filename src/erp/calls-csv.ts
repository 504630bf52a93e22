import type { Readable } from 'node:stream'
import { to as copyTo } from 'pg-copy-streams'
import { IANAZone } from 'luxon'
import type { Pool } from '../db/pool.ts'
import { ValidationError } from '../errors.ts'

/**
 * One local day of calls as CSV for the ERP (issue 7), streamed straight out of Postgres
 * with `COPY (SELECT …) TO STDOUT WITH CSV HEADER` — constant memory whatever the day's
 * size. Every call that started on that date in `tz` (index range on calls.started_at),
 * attributed: `manager_id` is the employee who handled the call — for FMC calls the
 * manager whose mobile was anchored. `counted` follows the counting rules (talks under
 * minCountedTalkSec, internal calls and unanswered attempts are not counted);
 * `countedOnly` drops the rest. COPY takes no bind parameters, so the three values are
 * validated (date, IANA zone, http(s) URL) and quoted with the driver's literal escaping.
 */
export const CSV_COLUMNS = [
  'call_uuid', 'started_at', 'started_at_local', 'direction', 'manager_id', 'manager_name', 'client_id', 'client_name',
  'caller', 'callee', 'talk_sec', 'counted', 'outcome', 'recording_links',
] as const

export interface CallsCsvQuery { date: string; tz: string; countedOnly?: boolean; publicBaseUrl: string }

export function checkCsvQuery(q: CallsCsvQuery): void {
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(q.date) || new Date(`${q.date}T00:00:00Z`).toISOString().slice(0, 10) !== q.date) {
    throw new ValidationError(`date ${JSON.stringify(q.date)} is not a calendar date YYYY-MM-DD`, { field: 'date' })
  }
  if (!IANAZone.isValidZone(q.tz)) throw new ValidationError(`tz ${JSON.stringify(q.tz)} is not an IANA time zone`, { field: 'tz' })
  if (!/^https?:\/\/\S+$/.test(q.publicBaseUrl)) throw new ValidationError('links.publicBaseUrl is not an http(s) URL')
}

function sql(q: CallsCsvQuery, lit: (s: string) => string): string {
  const day = lit(q.date)
  const tz = lit(q.tz)
  const base = lit(`${q.publicBaseUrl.replace(/\/+$/, '')}/console/recordings/`)
  return `COPY (
    SELECT c.uuid AS call_uuid,
           to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS started_at,
           to_char(c.started_at AT TIME ZONE ${tz}, 'YYYY-MM-DD"T"HH24:MI:SS') AS started_at_local,
           c.direction, c.agent_id AS manager_id, e.name AS manager_name, c.client_id, cl.name AS client_name,
           c.caller, c.callee,
           coalesce(c.talk_sec, CASE WHEN c.outcome = 'answered' THEN c.billsec END, 0) AS talk_sec,
           c.counted, c.outcome,
           (SELECT string_agg(${base} || r.id::text, ' ' ORDER BY r.created_at, r.id) FROM recordings r
             WHERE r.call_uuid = c.uuid AND r.state <> 'deleted') AS recording_links
      FROM calls c
      LEFT JOIN employees e ON e.id = c.agent_id
      LEFT JOIN clients cl ON cl.id = c.client_id
     WHERE c.started_at >= (${day}::date::timestamp AT TIME ZONE ${tz})
       AND c.started_at < ((${day}::date + 1)::timestamp AT TIME ZONE ${tz})
       ${q.countedOnly ? 'AND c.counted' : ''}
     ORDER BY c.started_at, c.uuid
  ) TO STDOUT WITH (FORMAT csv, HEADER true)`
}

/** The CSV stream; the pooled connection is released when the stream ends, fails or is destroyed. */
export async function streamCallsCsv(pool: Pool, q: CallsCsvQuery): Promise<Readable> {
  checkCsvQuery(q)
  const client = await pool.connect()
  let released = false
  const release = (err?: Error) => { if (!released) { released = true; client.release(err) } }
  try {
    const stream = client.query(copyTo(sql(q, (s) => client.escapeLiteral(s))))
    stream.on('end', () => release())
    stream.on('error', (err) => release(err))
    stream.on('close', () => release(new Error('csv stream closed early'))) // a cut-off reader: do not reuse a connection mid-COPY
    return stream
  } catch (err) {
    release(err as Error)
    throw err
  }
}
