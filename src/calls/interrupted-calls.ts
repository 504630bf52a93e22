import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { PresenceStore } from '../acd/presence.ts'

export interface RecoveryReport { calls: number; agentsReleased: number }

/**
 * After a crash (kill -9, power loss) this node's calls that were in progress have a CDR
 * row without an end: their sockets died with the process, and FreeSWITCH hung them up.
 * Before accepting new calls, close those rows so every call has a complete CDR — with
 * outcome `interrupted` and hangup cause `SWITCHBOARD_RESTART`, not counted in statistics
 * (the talk time is unknown) — and put their agents, still `on_call` for a call that no
 * longer exists, back to ready so the queue does not lose them until someone notices.
 *
 * Only rows of *this* node (NODE_NAME must be unique per node): another node's calls are
 * alive. The end time is the last thing we know of the call (a leg's end or answer), else
 * its start.
 */
export async function closeInterruptedCalls(pool: Pool, node: string, presence: PresenceStore, log: Logger): Promise<RecoveryReport> {
  const closed = await pool.query<{ uuid: string; agent_id: string | null }>(
    `UPDATE calls c SET
        ended_at = GREATEST(c.started_at, COALESCE((SELECT max(COALESCE(l.ended_at, l.answered_at, l.started_at)) FROM legs l WHERE l.call_uuid = c.uuid), c.started_at)),
        outcome = 'interrupted', hangup_cause = COALESCE(c.hangup_cause, 'SWITCHBOARD_RESTART'), counted = false
      WHERE c.node = $1 AND c.ended_at IS NULL
      RETURNING c.uuid, c.agent_id`, [node])
  // Legs left open by the same crash end with their call.
  if (closed.rowCount) {
    await pool.query(
      `UPDATE legs l SET ended_at = c.ended_at, hangup_cause = COALESCE(l.hangup_cause, 'SWITCHBOARD_RESTART')
         FROM calls c WHERE l.call_uuid = c.uuid AND c.uuid = ANY($1::uuid[]) AND l.ended_at IS NULL`,
      [closed.rows.map((r) => r.uuid)])
  }
  // Agents claimed for any call of this node that is no longer running (claim reason `call <uuid>`).
  const stuck = await pool.query<{ employee_id: string; reason: string }>(
    `SELECT p.employee_id, p.reason FROM agent_presence p
      WHERE p.state = 'on_call' AND p.reason LIKE 'call %'
        AND EXISTS (SELECT 1 FROM calls c WHERE c.uuid::text = substr(p.reason, 6) AND c.node = $1 AND c.outcome = 'interrupted')`, [node])
  let agentsReleased = 0
  for (const a of stuck.rows) {
    try {
      await presence.set(a.employee_id, 'ready', 'previous call interrupted by a Switchboard restart')
      agentsReleased++
    } catch (err) {
      log.warn({ err, employee_id: a.employee_id }, 'could not release an agent stuck on an interrupted call')
    }
  }
  if (closed.rowCount || agentsReleased) log.warn({ calls: closed.rowCount, agents_released: agentsReleased, node }, 'closed calls interrupted by the previous run of this node')
  return { calls: closed.rowCount ?? 0, agentsReleased }
}
