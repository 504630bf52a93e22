import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import { audit } from '../../recordings/access/audit.ts'
import { clientCard } from '../../recordings/access/client-card.ts'
import { actorOf, EVERY_ROLE, ID_PATTERN, limitUrlLength } from '../../recordings/access/http-common.ts'

export interface ClientsRoutesDeps { pool: Pool }

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
  }
}
