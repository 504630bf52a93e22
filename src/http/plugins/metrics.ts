import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'

/** Prometheus scrape endpoint: default process metrics plus every gauge the parts register. */
export async function metricsRoutes(app: FastifyInstance, opts: { registry: Registry }): Promise<void> {
  // Public like /health: scraped by Prometheus inside the operator's network; holds no call data.
  app.get('/metrics', { config: { roles: 'public' }, schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    reply.type(opts.registry.contentType)
    return opts.registry.metrics()
  })
}
