import type { FastifyInstance } from 'fastify'
import type { Pool } from '../../db/pool.ts'
import { verifyAuditChain } from '../../recordings/access/audit.ts'
import { LEGAL_ADMIN, limitUrlLength } from '../../recordings/access/http-common.ts'

export interface AuditRoutesDeps { pool: Pool }

/** Audit chain verification (the per-recording excerpt lives with the recordings routes). */
export function auditRoutes(deps: AuditRoutesDeps) {
  return async function auditPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    app.get('/api/audit/verify', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['audit'], summary: 'Walk the whole hash chain: altered, removed, reordered or truncated entries are reported' },
    }, async () => verifyAuditChain(deps.pool))
  }
}
