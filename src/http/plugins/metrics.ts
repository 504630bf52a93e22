import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'

/** Prometheus scrape endpoint: default process metrics plus every gauge the parts register. */
export async function metricsRoutes(app: FastifyInstance, opts: { registry: Registry }): Promise<void> {
  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    reply.type(opts.registry.contentType)
    return opts.registry.metrics()
  })
}
