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
    await this.write({
      what: 'call start',
      sql: `INSERT INTO calls (uuid, direction, caller, callee, did, source_tag, client_id, started_at, node)
            VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM clients WHERE id = $7), $8, $9)
            ON CONFLICT (uuid) DO UPDATE SET direction = EXCLUDED.direction, caller = EXCLUDED.caller, callee = EXCLUDED.callee,
              did = EXCLUDED.did, source_tag = EXCLUDED.source_tag, client_id = COALESCE(EXCLUDED.client_id, calls.client_id), node = EXCLUDED.node`,
      params: [c.uuid, c.direction, c.caller, c.callee, c.did, c.sourceTag, c.clientId, c.startedAt, c.node],
    })
  }

  async leg(l: LegRow): Promise<void> {
    await this.write({
      what: 'leg',
      sql: `INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause, hold_sec)
            VALUES ($1, $2, $3, $4, (SELECT id FROM employees WHERE id = $5), $6, $7, $8, $9, $10)
            ON CONFLICT (uuid) DO UPDATE SET answered_at = COALESCE(EXCLUDED.answered_at, legs.answered_at),
              ended_at = COALESCE(EXCLUDED.ended_at, legs.ended_at), hangup_cause = COALESCE(EXCLUDED.hangup_cause, legs.hangup_cause),
              hold_sec = COALESCE(EXCLUDED.hold_sec, legs.hold_sec)`,
      params: [l.uuid, l.callUuid, l.party, l.endpoint, l.employeeId, l.startedAt, l.answeredAt, l.endedAt, l.hangupCause, l.holdSec ?? null],
    })
  }

  async end(e: CallEnd): Promise<void> {
    await this.write({
      what: 'call end',
      sql: `UPDATE calls SET answered_at = $2, ended_at = $3, billsec = $4, hangup_cause = $5, outcome = $6, counted = $7,
              agent_id = (SELECT id FROM employees WHERE id = $8), queue_id = $9, ivr_path = $10, route_reasons = $11, csat = $12,
              talk_sec = COALESCE($13, talk_sec), hold_sec = COALESCE($14, hold_sec)
            WHERE uuid = $1`,
      params: [e.uuid, e.answeredAt, e.endedAt, e.billsec, e.hangupCause, e.outcome, e.counted, e.agentId, e.queueId,
        JSON.stringify(e.ivrPath), JSON.stringify(e.routeReasons), e.csat, e.talkSec ?? null, e.holdSec ?? null],
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

  private async write(w: Write): Promise<void> {
    // Keep order per call: nothing jumps ahead of an older write still waiting.
    if (this.backlog.length === 0) {
      try {
        await this.pool.query(w.sql, w.params)
        return
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
