import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import { openSse, type SseStream } from '../sse.ts'
import { parseReportRange, GROUP_BYS } from '../../stats/range.ts'
import { runReport } from '../../stats/report.ts'
import { reportToCsv } from '../../stats/csv.ts'
import type { LiveStats } from '../../stats/live.ts'
import { limitUrlLength } from '../../recordings/access/http-common.ts'

export interface StatsRoutesDeps {
  pool: Pool
  config: () => SwitchboardFile
  live: LiveStats
  heartbeatMs?: number
}

const ROLES = ['supervisor', 'admin'] as const
const DATE_OR_TIME = Type.String({ minLength: 10, maxLength: 35, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$' })

/**
 * Statistics:
 *   GET /api/stats/report?from=&to=&groupBy=day|hour|queue|agent&tz=&format=json|csv
 *   GET /api/stats/live             SSE, event `snapshot` every stats.liveIntervalSec and on changes
 *   GET /api/stats/live/snapshot    the same snapshot once
 * Definitions of every figure: src/stats/report.ts.
 */
export function statsRoutes(deps: StatsRoutesDeps) {
  return async function statsPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)
    // Streams never end on their own: close them when the server closes, or close() would wait for the clients.
    const open = new Set<SseStream>()
    app.addHook('preClose', async () => { for (const s of open) s.close() })
    app.get<{ Querystring: { from?: string; to?: string; groupBy?: string; tz?: string; format?: 'json' | 'csv' } }>('/api/stats/report', {
      config: { roles: [...ROLES] },
      schema: {
        tags: ['stats'], summary: 'Contact-centre report per day, hour, queue or agent (JSON or CSV)',
        querystring: Type.Object({
          from: Type.Optional(DATE_OR_TIME),
          to: Type.Optional(DATE_OR_TIME),
          groupBy: Type.Optional(Type.Union(GROUP_BYS.map((g) => Type.Literal(g)))),
          tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_+\\-/]+$' })),
          format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
        }, { additionalProperties: false }),
      },
    }, async (req, reply) => {
      const cfg = deps.config()
      const range = parseReportRange(req.query, cfg)
      const report = await runReport(deps.pool, range, cfg)
      if (req.query.format === 'csv') {
        const name = `switchboard-stats-${range.groupBy}-${report.from.slice(0, 10)}.csv`
        return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(reportToCsv(report))
      }
      return report
    })

    app.get('/api/stats/live', {
      config: { roles: [...ROLES] },
      schema: { tags: ['stats'], summary: 'Live supervisor snapshot (server-sent events: snapshot)' },
    }, async (req, reply) => {
      const stream = openSse(req, reply, deps.heartbeatMs ? { heartbeatMs: deps.heartbeatMs } : {})
      open.add(stream)
      void stream.closed.then(() => open.delete(stream))
      const unsubscribe = deps.live.subscribe(stream)
      await stream.closed
      unsubscribe()
    })

    app.get('/api/stats/live/snapshot', {
      config: { roles: [...ROLES] },
      schema: { tags: ['stats'], summary: 'Live supervisor snapshot, once' },
    }, async () => deps.live.snapshot(500))
  }
}
