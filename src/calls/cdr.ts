import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'

export type CallDirection = 'inbound' | 'outbound' | 'internal' | 'fmc'

export interface CallStart {
  uuid: string
  direction: CallDirection
  caller: string | null
  callee: string | null
  did: string | null
  sourceTag: string | null
  clientId: string | null
  startedAt: Date
  node: string
}

export interface CallEnd {
  uuid: string
  answeredAt: Date | null
  endedAt: Date
  billsec: number | null
  hangupCause: string | null
  outcome: string
  counted: boolean
  agentId: string | null
  queueId: string | null
  ivrPath: unknown[]
  routeReasons: string[]
  csat: number | null
  /** conversation seconds (person answered → hangup); kept for the ERP export */
  talkSec?: number | null
  /** seconds the caller spent on hold (src/calls/hold-time.ts), for statistics */
  holdSec?: number | null
}

export interface LegRow {
  uuid: string
  callUuid: string
  party: string
  endpoint: string | null
  employeeId: string | null
  startedAt: Date
  answeredAt: Date | null
  endedAt: Date | null
  hangupCause: string | null
  /** the caller's leg: seconds on hold */
  holdSec?: number | null
}

type Write = { sql: string; params: unknown[]; what: string }

/** What the caller-history part of the call start reads: this caller's calls today and the last agent who took one. */
export interface CallerHistory { callsToday: number; lastAgent: string | null }

// Every statement is an idempotent upsert (see CdrWriter): each may be retried after an ambiguous failure.
const CALL_UPSERT = `INSERT INTO calls (uuid, direction, caller, callee, did, source_tag, client_id, started_at, node)
            VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM clients WHERE id = $7), $8, $9)
            ON CONFLICT (uuid) DO UPDATE SET direction = EXCLUDED.direction, caller = EXCLUDED.caller, callee = EXCLUDED.callee,
              did = EXCLUDED.did, source_tag = EXCLUDED.source_tag, client_id = COALESCE(EXCLUDED.client_id, calls.client_id), node = EXCLUDED.node`
const LEG_CONFLICT = `ON CONFLICT (uuid) DO UPDATE SET answered_at = COALESCE(EXCLUDED.answered_at, legs.answered_at),
              ended_at = COALESCE(EXCLUDED.ended_at, legs.ended_at), hangup_cause = COALESCE(EXCLUDED.hangup_cause, legs.hangup_cause),
              hold_sec = COALESCE(EXCLUDED.hold_sec, legs.hold_sec)`
const LEG_SQL = `INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
            VALUES ($1, $2, $3, $4, (SELECT id FROM employees WHERE id = $5), $6, $7, $8, $9, $10)
            ${LEG_CONFLICT}`
// The leg's foreign key to the call row written by the same statement is checked at the statement's end, when that row exists.
const START_WITH_LEG_SQL = `WITH new_call AS (${CALL_UPSERT} RETURNING uuid)
            INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
            VALUES ($10, $11, $12, $13, (SELECT id FROM employees WHERE id = $14), $15, $16, $17, $18, $19)
            ${LEG_CONFLICT}`
// Data-modifying CTEs run to completion whether read or not; the SELECT sees the table as it was before this statement.
const START_WITH_LEG_AND_HISTORY_SQL = `WITH new_call AS (${CALL_UPSERT} RETURNING uuid),
            leg AS (INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
              VALUES ($10, $11, $12, $13, (SELECT id FROM employees WHERE id = $14), $15, $16, $17, $18, $19)
              ${LEG_CONFLICT})
            SELECT count(*)::int AS n, (array_agg(agent_id ORDER BY started_at DESC) FILTER (WHERE agent_id IS NOT NULL))[1] AS last_agent
            FROM calls WHERE caller = $20 AND started_at >= date_trunc('day', now())`
const CALL_END_SQL = `UPDATE calls SET answered_at = $2, ended_at = $3, billsec = $4, hangup_cause = $5, outcome = $6, counted = $7,
              agent_id = (SELECT id FROM employees WHERE id = $8), queue_id = $9, ivr_path = $10, route_reasons = $11, csat = $12,
              talk_sec = COALESCE($13, talk_sec), hold_sec = COALESCE($14, hold_sec)
            WHERE uuid = $1`
const CALL_END_WITH_LEGS_SQL = `WITH leg AS (
              INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
              SELECT l.uuid, l.call_uuid, l.party, l.endpoint, (SELECT id FROM employees WHERE id = l.employee_id), l.started_at, l.answered_at, l.ended_at, l.hangup_cause, l.hold_sec
              FROM unnest($15::uuid[], $16::uuid[], $17::text[], $18::text[], $19::text[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[], $23::text[], $24::int[])
                AS l(uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
              ${LEG_CONFLICT})
            ${CALL_END_SQL}`

function callStartParams(c: CallStart): unknown[] {
  return [c.uuid, c.direction, c.caller, c.callee, c.did, c.sourceTag, c.clientId, c.startedAt, c.node]
}

function legParams(l: LegRow): unknown[] {
  return [l.uuid, l.callUuid, l.party, l.endpoint, l.employeeId, l.startedAt, l.answeredAt, l.endedAt, l.hangupCause, l.holdSec ?? null]
}

/** One row per leg uuid (ON CONFLICT cannot touch a row twice in one statement): the last one written wins, as it would have. */
function dedupeLegs(legs: readonly LegRow[]): LegRow[] {
  const byUuid = new Map<string, LegRow>()
  for (const l of legs) byUuid.set(l.uuid.toLowerCase(), l)
  return [...byUuid.values()]
}

/**
 * Writes CDRs (calls + legs). A call must complete for the caller even while Postgres
 * is down, so writes that fail are kept in a bounded in-memory queue, in order, and
 * retried until Postgres returns. Every statement is an idempotent upsert, so a write
 * retried after an ambiguous failure does no harm.
 */
export class CdrWriter {
  private readonly backlog: Write[] = []
  private flushing: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  dropped = 0

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly maxBacklog = 100_000, private readonly retryMs = 1_000) {}

  get pending(): number { return this.backlog.length }

  async start(c: CallStart): Promise<void> {
    await this.write({ what: 'call start', sql: CALL_UPSERT, params: callStartParams(c) })
  }

  /**
   * The call row and the caller's leg in one statement (one round trip at call start;
   * the row crash recovery looks for is still written before the call is handled).
   * With `historyOf` the same statement also reads that caller's calls today (as they
   * were before this call): `null` when the write had to be queued (Postgres down).
   */
  async startWithLeg(c: CallStart, callerLeg: LegRow, historyOf?: string): Promise<CallerHistory | null> {
    const params = [...callStartParams(c), ...legParams(callerLeg)]
    const r = await this.write<{ n: number; last_agent: string | null }>({
      what: 'call start',
      sql: historyOf === undefined ? START_WITH_LEG_SQL : START_WITH_LEG_AND_HISTORY_SQL,
      params: historyOf === undefined ? params : [...params, historyOf],
    })
    const row = r?.rows[0]
    return row ? { callsToday: row.n, lastAgent: row.last_agent } : null
  }

  async leg(l: LegRow): Promise<void> {
    await this.write({ what: 'leg', sql: LEG_SQL, params: legParams(l) })
  }

  /** The end of the call, with the legs that ended with it (the caller's, maybe the last agent's), in one statement. */
  async end(e: CallEnd, legs: readonly LegRow[] = []): Promise<void> {
    const together = dedupeLegs(legs)
    const endParams = [e.uuid, e.answeredAt, e.endedAt, e.billsec, e.hangupCause, e.outcome, e.counted, e.agentId, e.queueId,
      JSON.stringify(e.ivrPath), JSON.stringify(e.routeReasons), e.csat, e.talkSec ?? null, e.holdSec ?? null]
    if (together.length === 0) {
      await this.write({ what: 'call end', sql: CALL_END_SQL, params: endParams })
      return
    }
    await this.write({
      what: 'call end',
      sql: CALL_END_WITH_LEGS_SQL,
      params: [...endParams,
        together.map((l) => l.uuid), together.map((l) => l.callUuid), together.map((l) => l.party), together.map((l) => l.endpoint),
        together.map((l) => l.employeeId), together.map((l) => l.startedAt), together.map((l) => l.answeredAt), together.map((l) => l.endedAt),
        together.map((l) => l.hangupCause), together.map((l) => l.holdSec ?? null)],
    })
  }

  /** Wait until everything queued so far is written (or give up after `ms`). */
  async drain(ms = 5_000): Promise<boolean> {
    const until = Date.now() + ms
    while (this.backlog.length > 0 && Date.now() < until) {
      await this.flush()
      if (this.backlog.length > 0) await new Promise((r) => setTimeout(r, 100))
    }
    return this.backlog.length === 0
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  /** The statement's result when it ran now; null when it was queued for a retry. */
  private async write<R extends Record<string, unknown> = Record<string, unknown>>(w: Write): Promise<{ rows: R[] } | null> {
    // Keep order per call: nothing jumps ahead of an older write still waiting.
    if (this.backlog.length === 0) {
      try {
        return await this.pool.query<R>(w.sql, w.params)
      } catch (err) {
        this.log.warn({ err: (err as Error).message, what: w.what }, 'CDR write failed; queued for retry')
      }
    }
    if (this.backlog.length >= this.maxBacklog) {
      this.dropped++
      this.log.error({ what: w.what, backlog: this.backlog.length }, 'CDR backlog full; dropping the oldest write')
      this.backlog.shift()
    }
    this.backlog.push(w)
    this.schedule()
    return null
  }

  private schedule(): void {
    if (this.timer) return
    this.timer = setTimeout(() => { this.timer = null; void this.flush() }, this.retryMs)
    this.timer.unref()
  }

  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        while (this.backlog.length > 0) {
          const w = this.backlog[0]
          try {
            await this.pool.query(w.sql, w.params)
            this.backlog.shift()
          } catch {
            this.schedule()
            return
          }
        }
        this.log.info('CDR backlog written')
      } finally {
        this.flushing = null
      }
    })()
    return this.flushing
  }
}
