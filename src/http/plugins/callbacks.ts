import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Pool } from '../../db/pool.ts'

const STATES = ['open', 'in_progress', 'done', 'failed', 'cancelled'] as const

const CallbackView = {
  type: 'object',
  properties: {
    id: { type: 'string' }, phone: { type: 'string' }, clientId: { type: ['string', 'null'] }, reason: { type: 'string' },
    queueId: { type: ['string', 'null'] }, agentId: { type: ['string', 'null'] }, state: { type: 'string' },
    outcome: { type: ['string', 'null'] }, lastCause: { type: ['string', 'null'] }, attempts: { type: 'integer' },
    callUuid: { type: ['string', 'null'] }, lastCallUuid: { type: ['string', 'null'] },
    nextAttemptAt: { type: 'string' }, lastAttemptAt: { type: ['string', 'null'] }, createdAt: { type: 'string' }, doneAt: { type: ['string', 'null'] },
  },
} as const

interface ListQuery { state?: (typeof STATES)[number]; limit?: number; beforeId?: number }

/**
 * Callback tasks (issue 6) for supervisors: open ones waiting for the office to open or
 * for a ready agent, those being dialled, done and failed ones with their outcome and
 * attempts. Newest first, paged by id.
 */
export function callbacksRoutes(deps: { pool: Pool }) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/api/callbacks', {
      config: { roles: ['supervisor', 'admin'] },
      schema: {
        tags: ['callbacks'], summary: 'Callback tasks with their state, attempts and outcome',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            state: { type: 'string', enum: STATES },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            beforeId: { type: 'integer', minimum: 1, description: 'page: tasks with a smaller id' },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: CallbackView }, nextBeforeId: { type: ['integer', 'null'] } } } },
      },
    }, async (req: FastifyRequest<{ Querystring: ListQuery }>) => {
      const limit = req.query.limit ?? 50
      const { rows } = await deps.pool.query(
        `SELECT id, phone, client_id, reason, queue_id, agent_id, state, outcome, last_cause, attempts, call_uuid, last_call_uuid,
                next_attempt_at, last_attempt_at, created_at, done_at
         FROM callbacks WHERE ($1::text IS NULL OR state = $1) AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3`, [req.query.state ?? null, req.query.beforeId ?? null, limit + 1])
      const more = rows.length > limit
      const page = rows.slice(0, limit)
      const iso = (d: Date | null) => d?.toISOString() ?? null
      return {
        items: page.map((r) => ({
          id: String(r.id), phone: r.phone, clientId: r.client_id, reason: r.reason, queueId: r.queue_id, agentId: r.agent_id,
          state: r.state, outcome: r.outcome, lastCause: r.last_cause, attempts: r.attempts, callUuid: r.call_uuid, lastCallUuid: r.last_call_uuid,
          nextAttemptAt: iso(r.next_attempt_at), lastAttemptAt: iso(r.last_attempt_at), createdAt: iso(r.created_at), doneAt: iso(r.done_at),
        })),
        nextBeforeId: more ? Number(page[page.length - 1].id) : null,
      }
    })
  }
}
