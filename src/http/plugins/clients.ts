import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import { audit } from '../../recordings/access/audit.ts'
import { clientCard } from '../../recordings/access/client-card.ts'
import { actorOf, EVERY_ROLE, ID_PATTERN, limitUrlLength } from '../../recordings/access/http-common.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../../crm/directory.ts'
import { createClient, type NewClient } from '../../screen-pop/create-client.ts'
import { CLIENT_NAME_MAX } from '../../screen-pop/card.ts'

export interface ClientsRoutesDeps {
  pool: Pool
  /** for POST /api/clients (phone normalisation); without it the route is not offered */
  config?: () => SwitchboardFile
  /** this node's directory learns a created client at once (other nodes reload on NOTIFY) */
  directory?: () => DirectorySnapshot
}

/** The client card: client, phones, manager, recent calls, recordings, callbacks, CSAT. */
export function clientsRoutes(deps: ClientsRoutesDeps) {
  return async function clientsPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    app.get<{ Params: { id: string }; Querystring: { recent?: number } }>('/api/clients/:id/card', {
      config: { roles: EVERY_ROLE },
      schema: {
        tags: ['clients'], summary: 'Client card',
        params: Type.Object({ id: Type.String({ pattern: ID_PATTERN }) }, { additionalProperties: false }),
        querystring: Type.Object({ recent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }),
      },
    }, async (req) => {
      const card = await clientCard(deps.pool, req.params.id, { recent: req.query.recent })
      await audit(deps.pool, { actor: actorOf(req), action: 'client_card', subject: `client:${card.client.id}`, ip: req.ip })
      return card
    })

    // "Create client" from the screen pop of an unknown number (issue 11).
    const config = deps.config
    if (config) app.post<{ Body: NewClient }>('/api/clients', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['clients'], summary: 'Create a client card with its phone (409 when the number already belongs to a client)',
        body: Type.Object({
          name: Type.String({ minLength: 1, maxLength: CLIENT_NAME_MAX }),
          segment: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('B'), Type.Literal('C')])),
          kind: Type.Optional(Type.Union([Type.Literal('client'), Type.Literal('supplier'), Type.Literal('partner'), Type.Literal('other')])),
          phone: Type.String({ minLength: 3, maxLength: 64 }),
          attributes: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 50 })),
        }, { additionalProperties: false }),
      },
    }, async (req, reply) => {
      const cfg = config()
      const unidentified = cfg.routing.unidentifiedSegment === 'none' ? undefined : cfg.routing.unidentifiedSegment
      const created = await createClient(deps.pool, req.body, { defaultRegion: cfg.defaultRegion, unidentifiedSegment: unidentified, directory: deps.directory })
      await audit(deps.pool, { actor: actorOf(req), action: 'client_create', subject: `client:${created.id}`, ip: req.ip, details: { phone: created.phone } })
      const card = await clientCard(deps.pool, created.id, { recent: 1 })
      return reply.code(201).header('location', `/api/clients/${created.id}/card`).send(card)
    })
  }
}
