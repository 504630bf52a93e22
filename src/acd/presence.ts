import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { PresenceState } from '../routing/types.ts'
import { ValidationError } from '../errors.ts'
import type { EventBus } from '../events/bus.ts'

export const PRESENCE_STATES: readonly PresenceState[] = ['ready', 'not_ready', 'on_call', 'wrap_up', 'offline']

/**
 * Agent states, in Postgres (the truth, shared by every node) with an in-process view
 * for routing decisions. Every change closes the previous history row and opens a new
 * one, so time in each state per agent is a SQL sum (seed 002).
 */
export class PresenceStore {
  private view = new Map<string, PresenceState>()

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly events?: EventBus) {}

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
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      const r = await client.query(
        `UPDATE agent_presence SET state = 'on_call', reason = $2, since = now() WHERE employee_id = $1 AND state = 'ready' RETURNING employee_id`,
        [employeeId, `call ${callUuid}`])
      if (r.rowCount === 1) {
        await client.query('UPDATE agent_presence_history SET ended_at = now() WHERE employee_id = $1 AND ended_at IS NULL', [employeeId])
        await client.query(`INSERT INTO agent_presence_history (employee_id, state, reason, started_at) VALUES ($1, 'on_call', $2, now())`, [employeeId, `call ${callUuid}`])
      }
      await client.query('COMMIT')
      if (r.rowCount === 1) {
        this.view.set(employeeId, 'on_call')
        this.events?.emit('agent.state', { employeeId, state: 'on_call', reason: `call ${callUuid}`, at: new Date().toISOString() })
      } else await this.refresh(employeeId)
      return r.rowCount === 1
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      client.release()
    }
  }

  private async refresh(employeeId: string): Promise<void> {
    const r = await this.pool.query<{ state: PresenceState }>('SELECT state FROM agent_presence WHERE employee_id = $1', [employeeId])
    if (r.rows[0]) this.view.set(employeeId, r.rows[0].state)
  }

  async set(employeeId: string, state: PresenceState, reason: string | null = null): Promise<{ changed: boolean }> {
    if (!PRESENCE_STATES.includes(state)) throw new ValidationError(`unknown agent state ${JSON.stringify(state)}`, { allowed: PRESENCE_STATES })
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      const cur = await client.query<{ state: string; reason: string | null }>('SELECT state, reason FROM agent_presence WHERE employee_id = $1 FOR UPDATE', [employeeId])
      // Setting the state an agent already has (e.g. "ready" twice) is a no-op, not a new history row.
      if (cur.rows[0] && cur.rows[0].state === state && cur.rows[0].reason === reason) {
        await client.query('COMMIT')
        this.view.set(employeeId, state)
        return { changed: false }
      }
      await client.query(
        `INSERT INTO agent_presence (employee_id, state, reason, since) VALUES ($1, $2, $3, now())
         ON CONFLICT (employee_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, since = now(),
           last_call_ended_at = CASE WHEN agent_presence.state = 'on_call' THEN now() ELSE agent_presence.last_call_ended_at END`,
        [employeeId, state, reason])
      await client.query('UPDATE agent_presence_history SET ended_at = now() WHERE employee_id = $1 AND ended_at IS NULL', [employeeId])
      await client.query('INSERT INTO agent_presence_history (employee_id, state, reason, started_at) VALUES ($1, $2, $3, now())', [employeeId, state, reason])
      await client.query('COMMIT')
      this.view.set(employeeId, state)
      this.log.info({ employee_id: employeeId, state, reason }, 'agent state changed')
      this.events?.emit('agent.state', { employeeId, state, reason, at: new Date().toISOString() })
      return { changed: true }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      client.release()
    }
  }
}
