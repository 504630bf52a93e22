import type { Pool } from '../../db/pool.ts'
import { NotFoundError } from '../../errors.ts'
import { SUMMARY_SELECT, toSummary, type RecordingSummary, type SummaryRow } from './search.ts'

/** Everything an agent or QA needs about one client on one screen, in a handful of indexed queries. */
export interface ClientCard {
  client: { id: string; name: string; inn: string | null; segment: string | null; kind: string; region: string | null; tz: string | null; attributes: unknown; createdAt: string }
  phones: string[]
  manager: { id: string; name: string; group: string | null; extension: string | null; mobile: string | null } | null
  recentCalls: Array<{ uuid: string; direction: string; caller: string | null; callee: string | null; did: string | null; startedAt: string; answeredAt: string | null; endedAt: string | null; billsec: number | null; outcome: string | null; csat: number | null; agentId: string | null; queueId: string | null }>
  recordings: RecordingSummary[]
  callbacks: Array<{ id: number; phone: string; reason: string; state: string; attempts: number; createdAt: string; doneAt: string | null }>
  csat: { average: number | null; count: number }
  stats: { calls: number; recordings: number }
}

export async function clientCard(pool: Pool, id: string, opts: { recent?: number } = {}): Promise<ClientCard> {
  const n = opts.recent ?? 20
  const c = (await pool.query(`SELECT * FROM clients WHERE id = $1`, [id])).rows[0] as
    { id: string; name: string; inn: string | null; segment: string | null; kind: string; region: string | null; tz: string | null; attributes: unknown; created_at: Date; assigned_manager_id: string | null } | undefined
  if (!c) throw new NotFoundError('client', id)
  const [phones, manager, calls, recs, callbacks, csat, stats] = await Promise.all([
    pool.query<{ phone: string }>('SELECT phone FROM client_phones WHERE client_id = $1 ORDER BY phone', [id]),
    c.assigned_manager_id
      ? pool.query('SELECT id, name, group_id, extension, mobile FROM employees WHERE id = $1', [c.assigned_manager_id])
      : Promise.resolve({ rows: [] as unknown[] }),
    pool.query(`SELECT uuid, direction, caller, callee, did, started_at, answered_at, ended_at, billsec, outcome, csat, agent_id, queue_id
                FROM calls WHERE client_id = $1 ORDER BY started_at DESC LIMIT $2`, [id, n]),
    pool.query<SummaryRow>(`SELECT ${SUMMARY_SELECT}, e.name AS agent_name FROM recordings r LEFT JOIN employees e ON e.id = r.agent_id
                WHERE r.client_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2`, [id, n]),
    pool.query(`SELECT id, phone, reason, state, attempts, created_at, done_at FROM callbacks WHERE client_id = $1 ORDER BY created_at DESC LIMIT $2`, [id, n]),
    pool.query<{ avg: string | null; n: number }>('SELECT avg(csat)::numeric(4,2)::text AS avg, count(csat)::int AS n FROM calls WHERE client_id = $1', [id]),
    pool.query<{ calls: number; recordings: number }>(`SELECT (SELECT count(*)::int FROM calls WHERE client_id = $1) AS calls, (SELECT count(*)::int FROM recordings WHERE client_id = $1) AS recordings`, [id]),
  ])
  const m = manager.rows[0] as { id: string; name: string; group_id: string | null; extension: string | null; mobile: string | null } | undefined
  const iso = (d: Date | null) => (d ? d.toISOString() : null)
  return {
    client: { id: c.id, name: c.name, inn: c.inn, segment: c.segment, kind: c.kind, region: c.region, tz: c.tz, attributes: c.attributes, createdAt: c.created_at.toISOString() },
    phones: phones.rows.map((p) => p.phone),
    manager: m ? { id: m.id, name: m.name, group: m.group_id, extension: m.extension, mobile: m.mobile } : null,
    recentCalls: (calls.rows as Array<Record<string, unknown>>).map((r) => ({
      uuid: r.uuid as string, direction: r.direction as string, caller: r.caller as string | null, callee: r.callee as string | null, did: r.did as string | null,
      startedAt: (r.started_at as Date).toISOString(), answeredAt: iso(r.answered_at as Date | null), endedAt: iso(r.ended_at as Date | null),
      billsec: r.billsec as number | null, outcome: r.outcome as string | null, csat: r.csat as number | null, agentId: r.agent_id as string | null, queueId: r.queue_id as string | null,
    })),
    recordings: recs.rows.map((r) => toSummary({ ...r, client_name: c.name })),
    callbacks: (callbacks.rows as Array<Record<string, unknown>>).map((r) => ({
      id: Number(r.id), phone: r.phone as string, reason: r.reason as string, state: r.state as string, attempts: r.attempts as number,
      createdAt: (r.created_at as Date).toISOString(), doneAt: iso(r.done_at as Date | null),
    })),
    csat: { average: csat.rows[0].avg === null ? null : Number(csat.rows[0].avg), count: csat.rows[0].n },
    stats: stats.rows[0],
  }
}
