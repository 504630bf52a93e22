import type { FastifyInstance } from 'fastify'

/** A dependency /ready asks about: Postgres, the object store, the spool's free space… */
export interface ReadinessCheck {
  name: string
  check(): Promise<{ ok: boolean; detail?: string }>
}

const CHECK_TIMEOUT_MS = 2_000

/** /health: the process is alive. /ready: every dependency answers, each within a bound. */
export async function healthRoutes(app: FastifyInstance, opts: { checks: ReadinessCheck[] }): Promise<void> {
  app.get('/health', { config: { roles: 'public' }, schema: { tags: ['operations'], summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }))

  app.get('/ready', { config: { roles: 'public' }, schema: { tags: ['operations'], summary: 'Readiness: Postgres, object store, spool disk' } }, async (_req, reply) => {
    const results = await Promise.all(opts.checks.map(async (c) => {
      try {
        const r = await withTimeout(c.check(), CHECK_TIMEOUT_MS)
        return { name: c.name, ...r }
      } catch (err) {
        return { name: c.name, ok: false, detail: (err as Error).message }
      }
    }))
    const ok = results.every((r) => r.ok)
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks: results })
  })
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    p.then((v) => { clearTimeout(timer); resolve(v) }, (e) => { clearTimeout(timer); reject(e) })
  })
}
