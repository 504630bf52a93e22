import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../../recordings/store/object-store.ts'
import { actorOf, ID_PATTERN, LEGAL_ADMIN, limitUrlLength } from '../../recordings/access/http-common.ts'
import { eraseClient } from '../../privacy/erasure.ts'

export interface ErasureRoutesDeps { pool: Pool; store: ObjectStore; log: Logger }

const Params = Type.Object({ id: Type.String({ pattern: ID_PATTERN }) }, { additionalProperties: false })
const Query = Type.Object({ dryRun: Type.Optional(Type.Boolean({ default: true })) }, { additionalProperties: false })

/**
 * Right to erasure (legal, admin). `dryRun` defaults to true: a forgotten parameter
 * reports instead of deleting. The real run answers with the same plan it carried out.
 */
export function erasureRoutes(deps: ErasureRoutesDeps) {
  return async function erasurePlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    app.post<{ Params: Static<typeof Params>; Querystring: Static<typeof Query> }>('/api/clients/:id/erasure', {
      config: { roles: LEGAL_ADMIN },
      schema: {
        tags: ['legal'], params: Params, querystring: Query,
        summary: 'Erase one client\'s personal data (dryRun=true, the default, only reports)',
        description: 'Reports (dryRun=true) or deletes (dryRun=false): recordings with their objects and bytes, phone numbers, card fields, numbers on calls, callbacks. Recordings under legal hold are retained and listed with the hold reason and case reference. The real run writes an audit tombstone (counts only).',
      },
    }, async (req) => eraseClient(deps, req.params.id, { dryRun: req.query.dryRun ?? true, actor: actorOf(req), ip: req.ip }))
  }
}
