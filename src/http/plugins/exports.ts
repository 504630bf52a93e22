import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import { audit } from '../../recordings/access/audit.ts'
import { actorOf, limitUrlLength } from '../../recordings/access/http-common.ts'
import { checkCsvQuery, streamCallsCsv } from '../../erp/calls-csv.ts'

export interface ExportsRoutesDeps { pool: Pool; config: () => SwitchboardFile }

const Query = Type.Object({
  date: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description: 'local date YYYY-MM-DD' }),
  tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone of the date (default erp.dailyCsv.timeZone)' })),
  countedOnly: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })

/** ERP exports (issue 7): one day of calls as CSV, streamed from Postgres. */
export function exportsRoutes(deps: ExportsRoutesDeps) {
  return async function exportsPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    app.get<{ Querystring: Static<typeof Query> }>('/api/exports/calls.csv', {
      config: { roles: ['admin', 'supervisor'] },
      schema: {
        tags: ['exports'], querystring: Query,
        summary: 'Calls of one local day as CSV for the ERP (manager, client, direction, start, talk time, counted, recording links)',
      },
    }, async (req, reply) => {
      const cfg = deps.config()
      const q = { date: req.query.date, tz: req.query.tz ?? cfg.erp.dailyCsv.timeZone, countedOnly: req.query.countedOnly ?? false, publicBaseUrl: cfg.links.publicBaseUrl }
      checkCsvQuery(q)
      await audit(deps.pool, { actor: actorOf(req), action: 'export.calls_csv', ip: req.ip, details: { date: q.date, tz: q.tz, countedOnly: q.countedOnly } })
      const stream = await streamCallsCsv(deps.pool, q)
      return reply.type('text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="calls-${q.date}.csv"`)
        .header('Cache-Control', 'no-store').send(stream)
    })
  }
}
