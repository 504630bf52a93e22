import type pg from 'pg'
import type { Pool } from '../db/pool.ts'
import { withTransaction } from '../db/pool.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import { ValidationError } from '../errors.ts'
import { DateTime } from 'luxon'
import type { GroupBy, ReportRange } from './range.ts'

/**
 * Contact-centre statistics (seeds 000, 002), computed by Postgres over calls, legs,
 * callbacks and agent_presence_history — never by reading calls into JS.
 *
 * What is counted (the rules live where the call ends, src/calls/call-session.ts
 * `isCounted`, and are stored in `calls.counted`): conversations shorter than
 * stats.minCountedTalkSec and internal calls are stored but not counted; calls nobody
 * answered are counted. Every figure here reads counted calls only.
 *
 * Definitions (all per group: day / hour in `tz`, queue, or agent):
 *  - inbound      counted inbound calls; afterHours = those that met the after-hours message
 *  - offered      inbound minus afterHours (the calls the centre could have answered)
 *  - answered     offered with outcome 'answered' (a person took the call)
 *  - abandoned    offered where the caller hung up first: in the queue ('abandoned') or in
 *                 the IVR ('ivr_hangup'); abandonTimes = their time from call start to
 *                 hang-up in the stats.abandonBucketsSec buckets, abandonAvgSec the mean
 *  - unanswered   offered − answered − abandoned (rang out, overflowed, failed)
 *  - answeredWithinSl / serviceLevelPct   answered with the first person answering within
 *                 stats.serviceLevelSec of the call's start, / offered
 *  - asaSec       mean time from the call's start to the first person answering (IVR and
 *                 greeting included: the caller's wait as they hear it)
 *  - talkSec      time people talked: every answered non-caller leg, answer → end
 *  - holdSec      time callers spent on hold during the group's calls (calls.hold_sec, from
 *                 the caller's channel: FreeSWITCH's hold_accum_seconds or the CHANNEL_HOLD/
 *                 UNHOLD spans); part of talkSec, since the agent's leg stays up while the
 *                 caller is held; null when no call of the group has a known hold time
 *  - ahtSec       talkSec / conversations (hold included, see holdSec; wrap-up is per agent,
 *                 wrapUpSec)
 *  - outbound     counted outbound and FMC calls (fmc: FMC only)
 *  - csat*        survey answers 1–10 of the group's calls
 *  - repeatCalls  counted inbound calls whose number called in (any inbound call) within
 *                 stats.repeatWindowHours before; repeatRatePct = / counted inbound with a number
 *  - callbacksCreated / callbacksDone   callback tasks created / completed in the range
 * groupBy=agent adds readySec, notReadySec, onCallSec, wrapUpSec (presence history clipped
 * to the range), offers (times the agent's phone rang) and offersMissed.
 *
 * A call belongs to the agent in calls.agent_id: the one who finished it (a transferred
 * call counts for the colleague who took it over), the manager for FMC calls (seed 000).
 */
export interface StatsFigures {
  inbound: number
  offered: number
  answered: number
  abandoned: number
  unanswered: number
  afterHours: number
  answeredWithinSl: number
  serviceLevelPct: number | null
  asaSec: number | null
  ahtSec: number | null
  talkSec: number
  holdSec: number | null
  abandonAvgSec: number | null
  abandonTimes: number[]
  outbound: number
  fmc: number
  callbacksCreated: number
  callbacksDone: number
  csatAvg: number | null
  csatCount: number
  csatDistribution: number[]
  repeatCalls: number
  repeatRatePct: number | null
  readySec?: number
  notReadySec?: number
  onCallSec?: number
  wrapUpSec?: number
  offers?: number
  offersMissed?: number
}

export interface StatsRow extends StatsFigures { key: string | null; label: string }

export interface StatsReport {
  from: string
  to: string
  tz: string
  groupBy: GroupBy
  serviceLevelSec: number
  repeatWindowHours: number
  abandonBucketsSec: number[]
  rows: StatsRow[]
  totals: StatsFigures
  /** how long Postgres took */
  elapsedMs: number
}

/**
 * How rows are grouped. Days and hours are buckets of the report's zone whose bounds are
 * computed once, in JS ($3: an ascending timestamptz[] of bucket starts, see timeBuckets),
 * and found per row by a binary search (width_bucket) — not by converting every row's
 * timestamp to local time and formatting it. The key is the bucket's 1-based index.
 */
const KEYS: Record<GroupBy | 'total', { calls: string; callbacks: (col: string) => string }> = {
  day: { calls: 'width_bucket(c.started_at, $3::timestamptz[])::text', callbacks: (col) => `width_bucket(${col}, $3::timestamptz[])::text` },
  hour: { calls: 'width_bucket(c.started_at, $3::timestamptz[])::text', callbacks: (col) => `width_bucket(${col}, $3::timestamptz[])::text` },
  queue: { calls: 'c.queue_id', callbacks: () => 'b.queue_id' },
  agent: { calls: 'c.agent_id', callbacks: () => 'b.agent_id' },
  total: { calls: `'all'`, callbacks: () => `'all'` },
}

/**
 * $1 from, $2 to, $3 bucket starts (day/hour; NULL otherwise), $4 SL seconds, $5 repeat
 * window seconds, $6 abandon bucket edges (exported for EXPLAIN in benches).
 *
 * One row per group with additive figures only (counts and sums; averages and the totals
 * row are computed from them in JS), so Postgres aggregates once, without grouping sets.
 * Plan (a day at 10,000 calls a day, ~11 M calls in the table): one index-only range scan
 * of calls_started_idx (0012: it carries every column read here) over the day, another
 * over the day and the repeat window before it for repeat calls; one of the people's legs
 * (legs_started_idx, partial, covering), aggregated once per call and hash-joined; repeat
 * calls by a hash semi-join on the number. Nothing is looked up per row.
 */
export function callsSql(groupBy: GroupBy | 'total', abandonBuckets: number): string {
  const abandonCols = Array.from({ length: abandonBuckets }, (_, i) => `count(*) FILTER (WHERE ab = ${i})`).join(', ')
  return `
WITH cw AS MATERIALIZED (
  -- the range's calls that count
  SELECT c.uuid, c.direction, c.caller, c.queue_id, c.agent_id, c.started_at, c.ended_at, c.outcome, c.csat, c.hold_sec
    FROM calls c
   WHERE c.started_at >= $1::timestamptz AND c.started_at < $2::timestamptz AND c.counted
     AND ($3::timestamptz[] IS NULL OR true) -- typed in every grouping (only day and hour use it; folded away when planned)
), lg AS (
  -- the people's legs of the range's calls, aggregated once per call: a leg starts after its
  -- call and before it ends, so the scan stops at the last end (a day after the range if a
  -- call is still running or never got an end)
  SELECT g.call_uuid, min(g.answered_at) AS connected_at,
         sum(date_part('epoch', greatest(g.ended_at, g.answered_at) - g.answered_at)) AS talk_sec
    FROM legs g
   WHERE g.started_at >= $1::timestamptz
     AND g.started_at <= (SELECT least(max(coalesce(ended_at, 'infinity')), $2::timestamptz + interval '1 day') FROM cw)
     AND g.party <> 'caller' AND g.answered_at IS NOT NULL
   GROUP BY g.call_uuid
), rep AS (
  -- counted inbound calls of the range whose number called in (any inbound call) within the
  -- window before: one hash semi-join on the number, not a probe per call
  SELECT c.uuid FROM cw c
   WHERE c.direction = 'inbound' AND c.caller IS NOT NULL
     AND EXISTS (SELECT 1 FROM calls p
                  WHERE p.started_at >= $1::timestamptz - make_interval(secs => $5::int) AND p.started_at < $2::timestamptz
                    AND p.caller = c.caller AND p.direction = 'inbound'
                    AND p.started_at >= c.started_at - make_interval(secs => $5::int)
                    AND (p.started_at < c.started_at OR (p.started_at = c.started_at AND p.uuid < c.uuid)))
), base AS (
  SELECT ${KEYS[groupBy].calls} AS k, c.direction, c.outcome, c.csat, c.hold_sec,
         c.direction = 'inbound' AS inbound,
         (c.direction = 'inbound' AND c.outcome IS DISTINCT FROM 'after_hours') AS offered,
         (c.direction = 'inbound' AND c.outcome IN ('abandoned', 'ivr_hangup')) AS abandoned,
         date_part('epoch', c.ended_at - c.started_at) AS dur,
         date_part('epoch', l.connected_at - c.started_at) AS wait,
         l.connected_at IS NOT NULL AS conversation, coalesce(l.talk_sec, 0) AS talk_sec,
         c.direction = 'inbound' AND c.caller IS NOT NULL AS repeat_base, r.uuid IS NOT NULL AS repeat
    FROM cw c
    LEFT JOIN lg l ON l.call_uuid = c.uuid
    LEFT JOIN rep r ON r.uuid = c.uuid
), flagged AS (
  SELECT *, offered AND outcome = 'answered' AS answered,
         CASE WHEN abandoned AND dur IS NOT NULL THEN width_bucket(dur, $6::float8[]) END AS ab
    FROM base
)
SELECT k,
  count(*) FILTER (WHERE inbound) AS inbound,
  count(*) FILTER (WHERE inbound AND outcome = 'after_hours') AS after_hours,
  count(*) FILTER (WHERE offered) AS offered,
  count(*) FILTER (WHERE answered) AS answered,
  count(*) FILTER (WHERE abandoned) AS abandoned,
  count(*) FILTER (WHERE answered AND wait <= $4::int) AS answered_within_sl,
  coalesce(sum(wait) FILTER (WHERE answered), 0) AS asa_sum, count(wait) FILTER (WHERE answered) AS asa_n,
  sum(talk_sec) AS talk_sec,
  sum(hold_sec) FILTER (WHERE conversation) AS hold_sec,
  count(*) FILTER (WHERE conversation) AS conversations,
  coalesce(sum(dur) FILTER (WHERE abandoned), 0) AS abandon_sum, count(dur) FILTER (WHERE abandoned) AS abandon_n,
  count(*) FILTER (WHERE direction IN ('outbound', 'fmc')) AS outbound,
  count(*) FILTER (WHERE direction = 'fmc') AS fmc,
  coalesce(sum(csat), 0) AS csat_sum, count(csat) AS csat_count,
  ARRAY[count(*) FILTER (WHERE csat = 1), count(*) FILTER (WHERE csat = 2), count(*) FILTER (WHERE csat = 3),
        count(*) FILTER (WHERE csat = 4), count(*) FILTER (WHERE csat = 5), count(*) FILTER (WHERE csat = 6),
        count(*) FILTER (WHERE csat = 7), count(*) FILTER (WHERE csat = 8), count(*) FILTER (WHERE csat = 9),
        count(*) FILTER (WHERE csat = 10)] AS csat_distribution,
  count(*) FILTER (WHERE repeat) AS repeat_calls, count(*) FILTER (WHERE repeat_base) AS repeat_base,
  ARRAY[${abandonCols}] AS abandon_times
FROM flagged GROUP BY k`
}

function callbacksSql(groupBy: GroupBy | 'total'): string {
  const key = KEYS[groupBy].callbacks
  return `
SELECT k, count(*) FILTER (WHERE created) AS created, count(*) FILTER (WHERE NOT created) AS done FROM (
  SELECT ${key('b.created_at')} AS k, true AS created FROM callbacks b WHERE b.created_at >= $1::timestamptz AND b.created_at < $2::timestamptz
  UNION ALL
  SELECT ${key('b.done_at')} AS k, false FROM callbacks b WHERE b.done_at >= $1::timestamptz AND b.done_at < $2::timestamptz AND b.state = 'done'
) x WHERE $3::timestamptz[] IS NULL OR true GROUP BY k`
}

/**
 * Time in each state per agent, clipped to [from, to): the rows whose span overlaps the
 * range, found by the GiST index agent_presence_history_span_idx (a state can last days,
 * so a btree on started_at cannot bound the search) and read from it (it carries the
 * columns). The span expression must stay exactly the index's.
 */
const PRESENCE_SQL = `
SELECT employee_id AS k,
  coalesce(sum(secs) FILTER (WHERE state = 'ready'), 0) AS ready, coalesce(sum(secs) FILTER (WHERE state = 'not_ready'), 0) AS not_ready,
  coalesce(sum(secs) FILTER (WHERE state = 'on_call'), 0) AS on_call, coalesce(sum(secs) FILTER (WHERE state = 'wrap_up'), 0) AS wrap_up
FROM (
  SELECT h.employee_id, h.state,
         greatest(0, extract(epoch FROM least(CASE WHEN h.ended_at IS NULL THEN now() ELSE greatest(h.ended_at, h.started_at) END, $2::timestamptz) - greatest(h.started_at, $1::timestamptz))) AS secs
    FROM agent_presence_history h
   WHERE tstzrange(h.started_at, CASE WHEN h.ended_at IS NULL THEN NULL ELSE greatest(h.ended_at, h.started_at) END, '[]')
         && tstzrange($1::timestamptz, $2::timestamptz, '[)')
) x GROUP BY employee_id`

/** Times each agent's phone rang for a (non-internal) call started in the range, and how many of those they did not answer. */
const OFFERS_SQL = `
WITH c AS MATERIALIZED (
  SELECT uuid, ended_at FROM calls WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz AND direction <> 'internal'
), g AS MATERIALIZED (
  -- legs start before their call ends: the scan stops at the range's last end (see callsSql)
  SELECT call_uuid, employee_id, answered_at FROM legs
   WHERE started_at >= $1::timestamptz AND started_at <= (SELECT least(max(coalesce(ended_at, 'infinity')), $2::timestamptz + interval '1 day') FROM c)
     AND employee_id IS NOT NULL AND party <> 'caller'
)
SELECT g.employee_id AS k, count(*) AS offers, count(*) FILTER (WHERE g.answered_at IS NULL) AS missed
  FROM g JOIN c ON c.uuid = g.call_uuid
 GROUP BY g.employee_id`

/**
 * The local days or hours of [from, to) in `tz`: each bucket's start (the first one is
 * `from` itself) and label. Hours step in absolute time, so a repeated local hour (DST
 * ending) gets one label and one bucket, as a local clock shows it.
 */
export function timeBuckets(from: Date, to: Date, tz: string, unit: 'day' | 'hour'): { starts: Date[]; labels: string[] } {
  const fmt = unit === 'day' ? 'yyyy-MM-dd' : "yyyy-MM-dd'T'HH:00"
  const starts: Date[] = []
  const labels: string[] = []
  for (let d = DateTime.fromJSDate(from, { zone: tz }).startOf(unit); d.toMillis() < to.getTime(); d = d.plus(unit === 'day' ? { days: 1 } : { hours: 1 })) {
    const label = d.toFormat(fmt)
    if (label === labels.at(-1)) continue
    starts.push(new Date(Math.max(d.toMillis(), from.getTime())))
    labels.push(label)
  }
  return { starts, labels }
}

/** Per group, additive only (the totals row is their sum). Numeric sums come as strings. */
interface CallsAgg {
  k: string | null; inbound: number; after_hours: number; offered: number; answered: number; abandoned: number
  answered_within_sl: number; asa_sum: string; asa_n: number; talk_sec: string | null; hold_sec: number | null; conversations: number
  abandon_sum: string; abandon_n: number; outbound: number; fmc: number; csat_sum: number; csat_count: number; csat_distribution: number[]
  repeat_calls: number; repeat_base: number; abandon_times: number[]
}
interface CallbacksAgg { k: string | null; created: number; done: number }
interface PresenceAgg { k: string | null; ready: string; not_ready: string; on_call: string; wrap_up: string }
interface OffersAgg { k: string | null; offers: number; missed: number }

/** The totals row: every field summed over the groups (arrays element-wise; null stays null only if every group's is). */
export function sumRows<T extends { k: string | null }>(rows: T[]): T | undefined {
  if (rows.length === 0) return undefined
  const out: Record<string, unknown> = { k: null }
  for (const r of rows) {
    for (const [f, v] of Object.entries(r)) {
      if (f === 'k' || v === null || v === undefined) continue
      const cur = out[f]
      if (Array.isArray(v)) out[f] = v.map((x, i) => Number(x) + Number((cur as unknown[] | undefined)?.[i] ?? 0))
      else out[f] = Number(v) + Number(cur ?? 0)
    }
  }
  for (const f of Object.keys(rows[0])) if (!(f in out)) out[f] = null
  return out as T
}

/**
 * One report query. A range of more than a few days runs in its own read-only transaction
 * with more sort/hash memory than the 4 MB default (a month's report sorts and hashes a few
 * hundred thousand rows, which would otherwise spill to disk); a day's report fits the
 * default and saves the three extra round trips.
 */
async function reportQuery<T extends pg.QueryResultRow>(pool: Pool, sql: string, params: unknown[], large: boolean): Promise<{ rows: T[] }> {
  if (!large) return pool.query<T>(sql, params)
  return withTransaction(pool, async (client) => {
    await client.query(`SET TRANSACTION READ ONLY; SET LOCAL work_mem = '${REPORT_WORK_MEM}'`)
    return client.query<T>(sql, params)
  })
}

const REPORT_WORK_MEM = '64MB'
const LARGE_RANGE_MS = 3 * 86_400_000

const round1 = (v: number | string | null): number | null => (v === null ? null : Math.round(Number(v) * 10) / 10)
const pct = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 1000) / 10 : null)

/** Run a report. `groupBy: 'total'` gives only the totals (the live view's "today"). */
export async function runReport(pool: Pool, range: Omit<ReportRange, 'groupBy'> & { groupBy: GroupBy | 'total' }, cfg: SwitchboardFile): Promise<StatsReport> {
  const t0 = performance.now()
  const edges = cfg.stats.abandonBucketsSec
  const g = range.groupBy
  const buckets = g === 'day' || g === 'hour' ? timeBuckets(range.from, range.to, range.tz, g) : null
  const params = [range.from, range.to, buckets?.starts ?? null]
  const large = range.to.getTime() - range.from.getTime() > LARGE_RANGE_MS
  try {
    const [calls, callbacks, presence, offers] = await Promise.all([
      reportQuery<CallsAgg>(pool, callsSql(g, edges.length + 1), [...params, cfg.stats.serviceLevelSec, cfg.stats.repeatWindowHours * 3600, edges], large),
      reportQuery<CallbacksAgg>(pool, callbacksSql(g), params, large),
      g === 'agent' ? reportQuery<PresenceAgg>(pool, PRESENCE_SQL, [range.from, range.to], large) : null,
      g === 'agent' ? reportQuery<OffersAgg>(pool, OFFERS_SQL, [range.from, range.to], large) : null,
    ])
    const byKey = <T extends { k: string | null }>(rows: T[] | undefined) => {
      const m = new Map<string | null, T>()
      for (const r of rows ?? []) m.set(r.k, r)
      return { m, total: sumRows(rows ?? []) }
    }
    const c = byKey(calls.rows)
    const cb = byKey(callbacks.rows)
    const pr = byKey(presence?.rows)
    const of = byKey(offers?.rows)
    const figures = (k: string | null, isTotal: boolean): StatsFigures => {
      const pick = <T>(x: { m: Map<string | null, T>; total: T | undefined }) => (isTotal ? x.total : x.m.get(k))
      return toFigures(pick(c), pick(cb), g === 'agent' ? { presence: pick(pr), offers: pick(of) } : null, edges.length + 1)
    }
    let keys: Array<string | null>
    if (buckets) keys = buckets.labels.map((_, i) => String(i + 1))
    else if (g === 'total') keys = []
    else {
      const all = new Set<string | null>([...c.m.keys(), ...cb.m.keys(), ...pr.m.keys(), ...of.m.keys()])
      keys = [...all].sort((a, b) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b)))
    }
    const labels = await labelsFor(pool, g, keys, cfg)
    return {
      from: range.from.toISOString(), to: range.to.toISOString(), tz: range.tz, groupBy: g === 'total' ? 'day' : g,
      serviceLevelSec: cfg.stats.serviceLevelSec, repeatWindowHours: cfg.stats.repeatWindowHours, abandonBucketsSec: edges,
      // day/hour: the SQL key is the bucket's index, the report's key its local date (hour)
      rows: keys.map((k, i) => {
        const key = buckets ? buckets.labels[i] : k
        return { key, label: labels.get(k) ?? key ?? '(none)', ...figures(k, false) }
      }),
      totals: figures(null, true),
      elapsedMs: Math.round(performance.now() - t0),
    }
  } catch (err) {
    // A zone luxon knows but this Postgres does not (old tzdata): the caller's mistake to fix, not a 500.
    if ((err as { code?: string }).code === '22023' && /time zone/i.test((err as Error).message)) {
      throw new ValidationError(`tz: Postgres does not know the time zone ${JSON.stringify(range.tz)}`, { field: 'tz' })
    }
    throw err
  }
}

function toFigures(c: CallsAgg | undefined, cb: CallbacksAgg | undefined, agent: { presence?: PresenceAgg; offers?: OffersAgg } | null, buckets: number): StatsFigures {
  const offered = c?.offered ?? 0
  const answered = c?.answered ?? 0
  const abandoned = c?.abandoned ?? 0
  const abandonTimes = new Array<number>(buckets).fill(0)
  ;(c?.abandon_times ?? []).forEach((n, b) => { abandonTimes[Math.min(buckets - 1, b)] += Number(n) })
  const talk = Number(c?.talk_sec ?? 0)
  const mean = (sum: string | number | undefined, n: number | undefined) => (n ? Number(sum) / n : null)
  const f: StatsFigures = {
    inbound: c?.inbound ?? 0, offered, answered, abandoned, unanswered: offered - answered - abandoned, afterHours: c?.after_hours ?? 0,
    answeredWithinSl: c?.answered_within_sl ?? 0, serviceLevelPct: pct(c?.answered_within_sl ?? 0, offered),
    asaSec: round1(mean(c?.asa_sum, c?.asa_n)), ahtSec: c && c.conversations > 0 ? round1(talk / c.conversations) : null,
    talkSec: Math.round(talk), holdSec: c?.hold_sec == null ? null : Math.round(Number(c.hold_sec)),
    abandonAvgSec: round1(mean(c?.abandon_sum, c?.abandon_n)), abandonTimes,
    outbound: c?.outbound ?? 0, fmc: c?.fmc ?? 0,
    callbacksCreated: cb?.created ?? 0, callbacksDone: cb?.done ?? 0,
    csatAvg: c?.csat_count ? Math.round((Number(c.csat_sum) / c.csat_count) * 100) / 100 : null, csatCount: c?.csat_count ?? 0,
    csatDistribution: (c?.csat_distribution ?? new Array<number>(10).fill(0)).map(Number),
    repeatCalls: c?.repeat_calls ?? 0, repeatRatePct: pct(c?.repeat_calls ?? 0, c?.repeat_base ?? 0),
  }
  if (agent) {
    f.readySec = Math.round(Number(agent.presence?.ready ?? 0))
    f.notReadySec = Math.round(Number(agent.presence?.not_ready ?? 0))
    f.onCallSec = Math.round(Number(agent.presence?.on_call ?? 0))
    f.wrapUpSec = Math.round(Number(agent.presence?.wrap_up ?? 0))
    f.offers = agent.offers?.offers ?? 0
    f.offersMissed = agent.offers?.missed ?? 0
  }
  return f
}

async function labelsFor(pool: Pool, g: GroupBy | 'total', keys: Array<string | null>, cfg: SwitchboardFile): Promise<Map<string | null, string>> {
  const m = new Map<string | null, string>()
  if (g === 'queue') {
    for (const q of cfg.queues) m.set(q.id, q.name)
    m.set(null, '(no queue)')
  } else if (g === 'agent') {
    const ids = keys.filter((k): k is string => k !== null)
    if (ids.length > 0) {
      const r = await pool.query<{ id: string; name: string }>('SELECT id, name FROM employees WHERE id = ANY($1::text[])', [ids])
      for (const e of r.rows) m.set(e.id, e.name)
    }
    m.set(null, '(no agent)')
  }
  return m
}
