import type { Pool, PoolClient } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { PresenceState } from '../routing/types.ts'
import { SwitchboardError, ValidationError } from '../errors.ts'
import type { EventBus } from '../events/bus.ts'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const PRESENCE_STATES: readonly PresenceState[] = ['ready', 'not_ready', 'on_call', 'wrap_up', 'offline']

/** States a person may choose; on_call and wrap_up are set by calls only. */
export const MANUAL_STATES: readonly PresenceState[] = ['ready', 'not_ready', 'offline']

/** Postgres channel every node LISTENs on: presence changes made by other nodes. */
export const PRESENCE_CHANNEL = 'sb_presence'

export interface PresenceRow {
  employeeId: string
  state: PresenceState
  reason: string | null
  since: Date
  lastCallEndedAt: Date | null
  callUuid: string | null
  claimedBy: string | null
  wrapUpUntil: Date | null
}

export interface PresenceChange { employeeId: string; state: PresenceState; reason: string | null; node: string }

/** $1 employee, $2 state, $3 reason, $4 wrap-up seconds (or null). */
const UPSERT_STATE = `INSERT INTO agent_presence (employee_id, state, reason, since, wrap_up_until)
         VALUES ($1, $2::text, $3, now(), CASE WHEN $2::text = 'wrap_up' AND $4::int IS NOT NULL THEN now() + make_interval(secs => $4::int) END)
       ON CONFLICT (employee_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, since = now(),
         wrap_up_until = EXCLUDED.wrap_up_until,
         call_uuid = CASE WHEN EXCLUDED.state IN ('on_call', 'wrap_up') THEN agent_presence.call_uuid END,
         claimed_by = CASE WHEN EXCLUDED.state = 'on_call' THEN agent_presence.claimed_by END,
         last_call_ended_at = CASE WHEN agent_presence.state = 'on_call' THEN now() ELSE agent_presence.last_call_ended_at END`

/**
 * What follows a state written by the CTE `up` (same statement): the previous history row
 * closed and a new one opened; leaving on_call ends the agent's ACD offer in the same
 * statement (the offer log then proves no agent was ever offered a call while holding
 * another); one NOTIFY ($5 channel, $6 payload), delivered at commit. `up` returns the
 * time (taken once its row is locked) that ends the old history row and starts the new
 * one. `told` must be read for the NOTIFY to run.
 */
const AFTER_STATE_WRITE = `closed AS (
         UPDATE agent_presence_history h SET ended_at = up.at FROM up WHERE h.employee_id = up.employee_id AND h.ended_at IS NULL),
       opened AS (
         INSERT INTO agent_presence_history (employee_id, state, reason, started_at) SELECT employee_id, $2::text, $3, at FROM up),
       offers AS (
         UPDATE acd_offers o SET ended_at = up.at FROM up WHERE $2::text <> 'on_call' AND o.employee_id = up.employee_id AND o.ended_at IS NULL),
       told AS (SELECT pg_notify($5, $6) FROM up)`

/** NOTIFY payloads are limited to 8000 bytes: one notification per agent, reasons cut. */
function notifyPayload(c: { employeeId: string; state: PresenceState; reason: string | null }, node: string): string {
  return JSON.stringify({ employeeId: c.employeeId, state: c.state, reason: c.reason?.slice(0, 200) ?? null, node } satisfies PresenceChange)
}

export class InvalidTransitionError extends SwitchboardError {
  constructor(message: string, details?: Record<string, unknown>) { super('invalid_transition', message, 409, details) }
}

/**
 * History times are clock_timestamp(), not now(): a transaction (the dispatcher's) may
 * start before it waits for a lock, and the history must show the real order.
 *
 * Agent states, in Postgres (the truth, shared by every node) with an in-process view
 * for routing decisions, kept fresh from other nodes through LISTEN/NOTIFY (see
 * acd/dispatcher.ts, which calls applyRemote). Every change closes the previous history
 * row and opens a new one, so time in each state per agent is a SQL sum (seed 002).
 * Wrap-up carries its end time in the row, so any node ends it even if the node that
 * started it died (endDueWrapUps).
 */
export class PresenceStore {
  private view = new Map<string, PresenceState>()
  readonly node: string

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly events?: EventBus, opts: { node?: string } = {}) {
    this.node = opts.node ?? 'local'
  }

  async load(): Promise<void> {
    const { rows } = await this.pool.query<{ employee_id: string; state: PresenceState }>('SELECT employee_id, state FROM agent_presence')
    this.view = new Map(rows.map((r) => [r.employee_id, r.state]))
  }

  get(employeeId: string): PresenceState | undefined { return this.view.get(employeeId) }
  snapshot(): ReadonlyMap<string, PresenceState> { return this.view }

  /**
   * Atomically take a ready agent for one call (ready → on_call). Two Switchboard nodes
   * racing for the same agent: exactly one UPDATE matches, the other gets false.
   */
  async claim(employeeId: string, callUuid: string): Promise<boolean> {
    // claimWithin is one statement, atomic on its own: no BEGIN/COMMIT round trips around it.
    const claimed = await this.claimWithin(this.pool, [employeeId], callUuid)
    if (claimed.length === 1) this.noteClaimed(claimed, callUuid)
    else await this.refresh(employeeId)
    return claimed.length === 1
  }

  /**
   * ready → on_call for each of `ids`, inside the caller's transaction (the dispatcher's).
   * `ownerNode`: the node whose caller it is (its death releases the agent).
   * Returns those actually taken; call noteClaimed() after the commit.
   */
  async claimWithin(client: Pick<PoolClient, 'query'>, ids: readonly string[], callUuid: string, ownerNode?: string): Promise<string[]> {
    if (ids.length === 0) return []
    const reason = `call ${callUuid}`
    // One statement (the state, the history closed and opened, one NOTIFY per agent), so
    // it is atomic without a transaction of its own; the history time is taken once per
    // agent, when its row is locked, and both ends the old row and starts the new one.
    const r = await client.query<{ employee_id: string }>(
      `WITH claimed AS (
         UPDATE agent_presence SET state = 'on_call', reason = $2, since = now(), call_uuid = $3, claimed_by = $4, wrap_up_until = NULL
         WHERE employee_id = ANY($1::text[]) AND state = 'ready' RETURNING employee_id, clock_timestamp() AS at),
       closed AS (
         UPDATE agent_presence_history h SET ended_at = c.at FROM claimed c WHERE h.employee_id = c.employee_id AND h.ended_at IS NULL),
       opened AS (
         INSERT INTO agent_presence_history (employee_id, state, reason, started_at) SELECT employee_id, 'on_call', $2, at FROM claimed),
       told AS (
         SELECT pg_notify($5, json_build_object('employeeId', employee_id, 'state', 'on_call', 'reason', left($2, 200), 'node', $6::text)::text) FROM claimed)
       SELECT employee_id FROM claimed, (SELECT count(*) FROM told) n`,
      // Callers of claim() also hold agents for things that are not calls yet ("callback 12").
      [ids, reason, UUID_RE.test(callUuid) ? callUuid : null, ownerNode ?? this.node, PRESENCE_CHANNEL, this.node])
    return r.rows.map((x) => x.employee_id)
  }

  /**
   * Many claims in one statement (the dispatcher's batch): each agent ready → on_call for
   * its call, history rows with one timestamp, one NOTIFY per agent. Returns the pairs
   * actually taken (an agent someone else took meanwhile is left out).
   */
  async claimManyWithin(client: PoolClient, pairs: ReadonlyArray<{ employeeId: string; callUuid: string; ownerNode: string }>): Promise<Array<{ employeeId: string; callUuid: string }>> {
    if (pairs.length === 0) return []
    const r = await client.query<{ employee_id: string; call_uuid: string }>(
      `WITH ts AS (SELECT clock_timestamp() AS t),
       p AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]) AS p(employee_id, call_uuid, owner)),
       claimed AS (
         UPDATE agent_presence a SET state = 'on_call', reason = 'call ' || p.call_uuid, since = now(), call_uuid = p.call_uuid, claimed_by = p.owner, wrap_up_until = NULL
         FROM p WHERE a.employee_id = p.employee_id AND a.state = 'ready' RETURNING a.employee_id, p.call_uuid),
       closed AS (
         UPDATE agent_presence_history h SET ended_at = (SELECT t FROM ts) FROM claimed c WHERE h.employee_id = c.employee_id AND h.ended_at IS NULL),
       opened AS (
         INSERT INTO agent_presence_history (employee_id, state, reason, started_at) SELECT employee_id, 'on_call', 'call ' || call_uuid, (SELECT t FROM ts) FROM claimed),
       told AS (
         SELECT pg_notify($4, json_build_object('employeeId', employee_id, 'state', 'on_call', 'reason', 'call ' || call_uuid, 'node', $5::text)::text) FROM claimed)
       SELECT employee_id, call_uuid::text AS call_uuid FROM claimed, (SELECT count(*) FROM told) n`,
      [pairs.map((x) => x.employeeId), pairs.map((x) => x.callUuid), pairs.map((x) => x.ownerNode), PRESENCE_CHANNEL, this.node])
    return r.rows.map((x) => ({ employeeId: x.employee_id, callUuid: x.call_uuid }))
  }

  /** After a committed claimWithin: the local view and the live event. */
  noteClaimed(ids: readonly string[], callUuid: string): void {
    const at = new Date().toISOString()
    for (const employeeId of ids) {
      this.view.set(employeeId, 'on_call')
      this.events?.emit('agent.state', { employeeId, state: 'on_call', reason: `call ${callUuid}`, at })
    }
  }

  private async refresh(employeeId: string): Promise<void> {
    const r = await this.pool.query<{ state: PresenceState }>('SELECT state FROM agent_presence WHERE employee_id = $1', [employeeId])
    if (r.rows[0]) this.view.set(employeeId, r.rows[0].state)
  }

  /**
   * Set a state (calls and the API use this). `wrapUpSec` with state wrap_up: when it
   * ends by itself. Setting the state an agent already has is a no-op.
   */
  async set(employeeId: string, state: PresenceState, reason: string | null = null, opts: { wrapUpSec?: number } = {}): Promise<{ changed: boolean }> {
    if (!PRESENCE_STATES.includes(state)) throw new ValidationError(`unknown agent state ${JSON.stringify(state)}`, { allowed: PRESENCE_STATES })
    // One statement, atomic on its own (calls set states twice per call: no BEGIN/COMMIT
    // round trips). The upsert locks the row and leaves it alone when the agent already has
    // this state and reason (e.g. "ready" twice: a no-op, not a new history row); only a
    // row it wrote gets its history, its offer ended and its NOTIFY.
    const r = await this.pool.query<{ changed: number }>(
      `WITH up AS (${UPSERT_STATE}
         WHERE NOT (agent_presence.state = EXCLUDED.state AND agent_presence.reason IS NOT DISTINCT FROM EXCLUDED.reason AND $4::int IS NULL)
         RETURNING employee_id, clock_timestamp() AS at),
       ${AFTER_STATE_WRITE}
       SELECT (SELECT count(*) FROM up)::int AS changed, (SELECT count(*) FROM told) AS told`,
      [employeeId, state, reason, opts.wrapUpSec ?? null, PRESENCE_CHANNEL, notifyPayload({ employeeId, state, reason }, this.node)])
    const changed = r.rows[0].changed > 0
    this.view.set(employeeId, state)
    if (changed) this.changed(employeeId, state, reason)
    return { changed }
  }

  /**
   * A person changes their own (or, as supervisor, someone's) state. Only ready,
   * not_ready and offline can be chosen; nothing can be chosen during a call: the
   * call's end decides (409 with a message saying so).
   */
  async setByHand(employeeId: string, state: PresenceState, reason: string | null): Promise<{ changed: boolean; from: PresenceState | null }> {
    if (!PRESENCE_STATES.includes(state)) throw new ValidationError(`unknown agent state ${JSON.stringify(state)}`, { allowed: PRESENCE_STATES })
    if (!MANUAL_STATES.includes(state)) {
      throw new InvalidTransitionError(`${state} is set by calls only (a call being offered or answered, after-call work); choose one of ${MANUAL_STATES.join(', ')}`, { state, allowed: MANUAL_STATES })
    }
    const stored = state === 'not_ready' ? reason : null
    let from: PresenceState | null = null
    const changed = await this.withTx(async (client) => {
      const cur = await client.query<{ state: PresenceState; reason: string | null }>('SELECT state, reason FROM agent_presence WHERE employee_id = $1 FOR UPDATE', [employeeId])
      from = cur.rows[0]?.state ?? null
      if (from === 'on_call') {
        throw new InvalidTransitionError(`agent ${employeeId} is on a call; the state changes when the call ends`, { from, to: state })
      }
      if (cur.rows[0] && from === state && cur.rows[0].reason === stored) return false
      await this.write(client, employeeId, state, stored)
      return true
    })
    this.view.set(employeeId, state)
    if (changed) this.changed(employeeId, state, stored)
    return { changed, from }
  }

  /** wrap_up now, back to ready after `sec` (by this node's timer or, after a restart, any node's sweep). */
  async startWrapUp(employeeId: string, sec: number, reason: string): Promise<void> {
    await this.set(employeeId, 'wrap_up', reason, { wrapUpSec: sec })
  }

  /** End every wrap-up that is due (or only this agent's): wrap_up → ready. Returns who became ready. */
  async endDueWrapUps(employeeId?: string): Promise<string[]> {
    // One statement, atomic on its own (see claimWithin).
    const r = await this.pool.query<{ employee_id: string }>(
      `WITH due AS (
         UPDATE agent_presence SET state = 'ready', reason = NULL, since = now(), wrap_up_until = NULL, call_uuid = NULL, claimed_by = NULL
         WHERE state = 'wrap_up' AND wrap_up_until <= now() AND ($1::text IS NULL OR employee_id = $1) RETURNING employee_id, clock_timestamp() AS at),
       closed AS (
         UPDATE agent_presence_history h SET ended_at = d.at FROM due d WHERE h.employee_id = d.employee_id AND h.ended_at IS NULL),
       opened AS (
         INSERT INTO agent_presence_history (employee_id, state, reason, started_at) SELECT employee_id, 'ready', NULL, at FROM due),
       told AS (
         SELECT pg_notify($2, json_build_object('employeeId', employee_id, 'state', 'ready', 'reason', NULL, 'node', $3::text)::text) FROM due)
       SELECT employee_id FROM due, (SELECT count(*) FROM told) n`,
      [employeeId ?? null, PRESENCE_CHANNEL, this.node])
    const ids = r.rows.map((x) => x.employee_id)
    for (const id of ids) {
      this.view.set(id, 'ready')
      this.changed(id, 'ready', null)
    }
    return ids
  }

  /** A change another node made (NOTIFY): refresh the view; the other node emitted its own event. */
  applyRemote(change: PresenceChange): void {
    if (change.node === this.node || !PRESENCE_STATES.includes(change.state)) return
    this.view.set(change.employeeId, change.state)
  }

  async list(): Promise<PresenceRow[]> {
    const r = await this.pool.query('SELECT * FROM agent_presence ORDER BY employee_id')
    return r.rows.map(toRow)
  }

  async row(employeeId: string): Promise<PresenceRow | null> {
    const r = await this.pool.query('SELECT * FROM agent_presence WHERE employee_id = $1', [employeeId])
    return r.rows[0] ? toRow(r.rows[0]) : null
  }

  /** setByHand's write, inside its transaction: the same statement as set()'s, without the no-op check (done before). */
  private async write(client: PoolClient, employeeId: string, state: PresenceState, reason: string | null, wrapUpSec?: number): Promise<void> {
    await client.query(
      `WITH up AS (${UPSERT_STATE} RETURNING employee_id, clock_timestamp() AS at),
       ${AFTER_STATE_WRITE}
       SELECT (SELECT count(*) FROM told) AS told`,
      [employeeId, state, reason, wrapUpSec ?? null, PRESENCE_CHANNEL, notifyPayload({ employeeId, state, reason }, this.node)])
  }

  private changed(employeeId: string, state: PresenceState, reason: string | null): void {
    this.log.info({ employee_id: employeeId, state, reason }, 'agent state changed')
    this.events?.emit('agent.state', { employeeId, state, reason, at: new Date().toISOString() })
  }

  private async withTx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      const out = await fn(client)
      await client.query('COMMIT')
      return out
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      client.release()
    }
  }
}

function toRow(r: Record<string, unknown>): PresenceRow {
  return {
    employeeId: r.employee_id as string, state: r.state as PresenceState, reason: (r.reason as string | null) ?? null, since: r.since as Date,
    lastCallEndedAt: (r.last_call_ended_at as Date | null) ?? null, callUuid: (r.call_uuid as string | null) ?? null,
    claimedBy: (r.claimed_by as string | null) ?? null, wrapUpUntil: (r.wrap_up_until as Date | null) ?? null,
  }
}
