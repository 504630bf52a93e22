import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../../crm/directory.ts'
import { normalizePhone } from '../../crm/phone.ts'
import { SwitchboardError, ValidationError } from '../../errors.ts'
import { openSse, type SseStream } from '../sse.ts'
import { loadCard } from '../../screen-pop/card.ts'
import type { ScreenPopHub } from '../../screen-pop/hub.ts'
import { audit } from '../../recordings/access/audit.ts'
import { actorOf, ID_PATTERN, limitUrlLength } from '../../recordings/access/http-common.ts'

export interface ScreenPopRoutesDeps {
  hub: ScreenPopHub
  pool: Pool
  config: () => SwitchboardFile
  directory?: () => DirectorySnapshot
  /** SSE heartbeat (tests shorten it) */
  heartbeatMs?: number
}

const ROLES = ['agent', 'supervisor', 'admin'] as const

/**
 * Agents' screen pop:
 *   GET /api/screen-pop/stream            SSE: `ready` once subscribed, then `offer` (call,
 *        IVR path, client card) when a call rings this employee, `answered` and `ended`
 *        for that call. An agent gets their own offers (the token's employee); a supervisor
 *        or admin may watch any employee with ?employeeId=.
 *   GET /api/screen-pop/card?phone=|clientId=   the same card on demand.
 */
export function screenPopRoutes(deps: ScreenPopRoutesDeps) {
  return async function screenPopPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    // Streams never end on their own: close them when the server closes, or close() would wait for the clients.
    const open = new Set<SseStream>()
    app.addHook('preClose', async () => { for (const s of open) s.close() })
    app.get<{ Querystring: { employeeId?: string } }>('/api/screen-pop/stream', {
      config: { roles: [...ROLES] },
      schema: {
        tags: ['screen-pop'], summary: 'Screen pop events for one employee (server-sent events)',
        querystring: Type.Object({ employeeId: Type.Optional(Type.String({ pattern: ID_PATTERN })) }, { additionalProperties: false }),
      },
    }, async (req, reply) => {
      const p = req.principal!
      const wanted = req.query.employeeId
      if (wanted !== undefined && p.role === 'agent' && wanted !== p.employeeId) {
        throw new SwitchboardError('forbidden', 'an agent receives only their own screen pop', 403)
      }
      const employeeId = wanted ?? p.employeeId
      if (!employeeId) throw new ValidationError('this token is not linked to an employee: pass ?employeeId=', { field: 'employeeId' })
      // Checked before the stream opens so that the refusal is a proper problem response.
      deps.hub.assertCanSubscribe(employeeId)
      const stream = openSse(req, reply, deps.heartbeatMs ? { heartbeatMs: deps.heartbeatMs } : {})
      open.add(stream)
      void stream.closed.then(() => open.delete(stream))
      let unsubscribe: () => void
      try {
        unsubscribe = deps.hub.subscribe(employeeId, stream)
      } catch (err) {
        // Lost a race with another connection for the last stream slot: the response is an event stream by now.
        stream.send('error', { code: (err as SwitchboardError).code ?? 'error', detail: (err as Error).message })
        stream.close()
        return
      }
      stream.send('ready', { employeeId, at: new Date().toISOString() })
      await stream.closed
      unsubscribe()
    })

    app.get<{ Querystring: { phone?: string; clientId?: string } }>('/api/screen-pop/card', {
      config: { roles: [...ROLES] },
      schema: {
        tags: ['screen-pop'], summary: 'Client card for a phone number (any notation) or a client id; unknown numbers get the create form',
        querystring: Type.Object({
          phone: Type.Optional(Type.String({ minLength: 3, maxLength: 64 })),
          clientId: Type.Optional(Type.String({ pattern: ID_PATTERN })),
        }, { additionalProperties: false }),
      },
    }, async (req) => {
      const { phone: raw, clientId } = req.query
      if ((raw === undefined) === (clientId === undefined)) throw new ValidationError('give exactly one of phone or clientId')
      let phone: string | null = null
      if (raw !== undefined) {
        phone = normalizePhone(raw, deps.config().defaultRegion)
        if (phone === null) throw new ValidationError(`${JSON.stringify(raw)} is not a phone number`, { field: 'phone' })
      }
      const card = await loadCard(deps.pool, { clientId: clientId ?? null, phone }, deps.config().screenPop, deps.directory)
      if (clientId !== undefined && card.unknown) throw new SwitchboardError('not_found', `client ${JSON.stringify(clientId)} not found`, 404)
      if (!card.unknown) await audit(deps.pool, { actor: actorOf(req), action: 'client_card', subject: `client:${card.client.id}`, ip: req.ip })
      return card
    })
  }
}
