import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../../crm/directory.ts'
import { PRESENCE_STATES, type PresenceStore } from '../../acd/presence.ts'
import type { Acd } from '../../acd/dispatcher.ts'
import { NotFoundError, SwitchboardError, ValidationError } from '../../errors.ts'

export interface AgentsRoutesDeps {
  pool: Pool
  presence: PresenceStore
  acd: Acd
  directory: () => DirectorySnapshot
  config: () => SwitchboardFile
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$' }) }, { additionalProperties: false })
const StateEnum = Type.Union(PRESENCE_STATES.map((s) => Type.Literal(s)))
const AgentView = Type.Object({
  id: Type.String(), name: Type.String(), groupId: Type.Union([Type.String(), Type.Null()]), role: Type.String(),
  state: Type.String(), since: Type.Union([Type.String(), Type.Null()]), reason: Type.Union([Type.String(), Type.Null()]),
  currentCall: Type.Union([Type.String(), Type.Null()]), wrapUpUntil: Type.Union([Type.String(), Type.Null()]),
  queues: Type.Array(Type.String()),
})
const MAX_HISTORY_DAYS = 93

/**
 * Agent states: the list (state, since, reason, the call they are on), changing a
 * state (agents their own; supervisors and admins anyone's; on_call and wrap_up only
 * by calls → 409), and the state history for time-in-state statistics.
 */
export function agentsRoutes(deps: AgentsRoutesDeps) {
  return async function agentsPlugin(app: FastifyInstance): Promise<void> {
    app.get<{ Querystring: { state?: string; groupId?: string } }>('/api/agents', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['agents'], summary: 'Every employee with their presence state (agents see colleagues\' states, not their calls)',
        querystring: Type.Object({ state: Type.Optional(StateEnum), groupId: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
        response: { 200: Type.Array(AgentView) },
      },
    }, async (req) => {
      const rows = new Map((await deps.presence.list()).map((r) => [r.employeeId, r]))
      const dir = deps.directory()
      const queuesOf = memberQueues(deps)
      const me = req.principal
      const out = []
      for (const e of dir.employees.values()) {
        const p = rows.get(e.id)
        const state = p?.state ?? 'offline'
        if (req.query.state && state !== req.query.state) continue
        if (req.query.groupId && e.groupId !== req.query.groupId) continue
        const mayseeCall = me?.role !== 'agent' || me.employeeId === e.id
        out.push({
          id: e.id, name: e.name, groupId: e.groupId ?? null, role: e.role, state, since: p?.since.toISOString() ?? null, reason: p?.reason ?? null,
          currentCall: mayseeCall ? p?.callUuid ?? null : null, wrapUpUntil: p?.wrapUpUntil?.toISOString() ?? null, queues: queuesOf(e.id),
        })
      }
      return out.sort((a, b) => a.id.localeCompare(b.id))
    })

    app.put<{ Params: { id: string }; Body: { state: string; reason?: string } }>('/api/agents/:id/state', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['agents'], summary: 'Set an agent\'s state: ready, not_ready (with a reason) or offline',
        params: IdParams,
        body: Type.Object({ state: StateEnum, reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }),
      },
    }, async (req: FastifyRequest<{ Params: { id: string }; Body: { state: string; reason?: string } }>) => {
      const id = req.params.id
      mayActFor(req, id)
      if (!deps.directory().employees.has(id)) throw new NotFoundError('agent', id)
      const state = req.body.state as (typeof PRESENCE_STATES)[number]
      if (state !== 'not_ready' && req.body.reason !== undefined) throw new ValidationError('a reason goes with not_ready only', { state })
      const r = await deps.presence.setByHand(id, state, req.body.reason ?? (state === 'not_ready' ? 'not ready' : null))
      req.log.info({ employee_id: id, from: r.from, to: state, changed: r.changed, by: req.principal?.userId }, 'agent state set by hand')
      const row = await deps.presence.row(id)
      return { id, state: row?.state ?? state, reason: row?.reason ?? null, since: row?.since.toISOString() ?? null, changed: r.changed, from: r.from }
    })

    app.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>('/api/agents/:id/history', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['agents'], summary: 'State history of an agent in [from, to) with the seconds spent in each state (default: the last 24 h)',
        params: IdParams,
        querystring: Type.Object({ from: Type.Optional(Type.String({ format: 'date-time' })), to: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }),
      },
    }, async (req) => {
      const id = req.params.id
      mayActFor(req, id)
      const to = req.query.to ? new Date(req.query.to) : new Date()
      const from = req.query.from ? new Date(req.query.from) : new Date(to.getTime() - 86_400_000)
      if (!(from < to)) throw new ValidationError('from must be before to', { from: req.query.from, to: req.query.to })
      if (to.getTime() - from.getTime() > MAX_HISTORY_DAYS * 86_400_000) throw new ValidationError(`at most ${MAX_HISTORY_DAYS} days at once`)
      if (!deps.directory().employees.has(id)) throw new NotFoundError('agent', id)
      const r = await deps.pool.query<{ state: string; reason: string | null; started_at: Date; ended_at: Date | null; secs: number }>(
        `SELECT state, reason, started_at, ended_at,
                extract(epoch FROM least(coalesce(ended_at, now()), $3::timestamptz) - greatest(started_at, $2::timestamptz))::float AS secs
         FROM agent_presence_history
         WHERE employee_id = $1 AND started_at < $3 AND coalesce(ended_at, now()) > $2
         ORDER BY started_at LIMIT 10000`, [id, from, to])
      const totals: Record<string, number> = {}
      for (const row of r.rows) totals[row.state] = Math.round(((totals[row.state] ?? 0) + Math.max(0, row.secs)) * 1000) / 1000
      return {
        id, from: from.toISOString(), to: to.toISOString(), totalsSec: totals,
        entries: r.rows.map((x) => ({ state: x.state, reason: x.reason, startedAt: x.started_at.toISOString(), endedAt: x.ended_at?.toISOString() ?? null })),
      }
    })
  }
}

/** Agents act for themselves only; supervisors and admins for anyone. */
function mayActFor(req: FastifyRequest, employeeId: string): void {
  const p = req.principal
  if (p?.role === 'agent' && p.employeeId !== employeeId) {
    throw new SwitchboardError('forbidden', 'agents may only see and change their own state', 403)
  }
}

/** employee → ids of the queues they serve. */
export function memberQueues(deps: { acd: Acd; config: () => SwitchboardFile }): (employeeId: string) => string[] {
  const by = new Map<string, string[]>()
  for (const q of deps.config().queues) for (const id of deps.acd.members(q)) by.set(id, [...(by.get(id) ?? []), q.id])
  return (id) => by.get(id) ?? []
}
