import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Registry } from 'prom-client'
import type { Logger } from '../log.ts'
import { sendProblem } from './problem.ts'
import { healthRoutes, type ReadinessCheck } from './plugins/health.ts'
import { metricsRoutes } from './plugins/metrics.ts'
import { NotFoundError } from '../errors.ts'
import type { Pool } from '../db/pool.ts'
import { authPlugin } from './auth/plugin.ts'
import { registerSecurity, DEFAULT_SECURITY, type SecurityOptions } from './security.ts'

/** Every route with the roles it declares (null = none declared → refused for everyone). */
export interface RouteInfo { method: string; url: string; roles: readonly string[] | 'public' | null }

declare module 'fastify' {
  interface FastifyInstance { routeList: RouteInfo[] }
}

export interface HttpDeps {
  log: Logger
  pool: Pool
  registry: Registry
  readiness: ReadinessCheck[]
  /** helmet headers and per-IP rate limit (DEFAULT_SECURITY when omitted) */
  security?: SecurityOptions
  /** Resource plugins added by later parts (recordings, agents, stats…), each encapsulated. */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>
}

/**
 * The fastify app: problem-details errors, OpenAPI at /docs, bounded bodies and
 * timeouts so a hostile client cannot hold resources. One plugin per resource.
 */
export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ part: 'http' }) as FastifyBaseLogger,
    bodyLimit: 1_048_576,
    // Whole-request bound (slowloris); generous because admins stream large CRM imports.
    requestTimeout: 300_000,
    connectionTimeout: 60_000,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  })

  // Before any route: security headers and the rate limit apply to every one of them.
  await registerSecurity(app, deps.security ?? DEFAULT_SECURITY)

  // The documentation is public; every other route must declare its roles (see auth/plugin.ts).
  const routes: RouteInfo[] = []
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), roles: 'public' }
    const roles = (route.config as { roles?: RouteInfo['roles'] } | undefined)?.roles
    for (const method of ([] as string[]).concat(route.method)) if (method !== 'HEAD') routes.push({ method, url: route.url, roles: roles ?? null })
  })
  app.decorate('routeList', routes)
  await app.register(authPlugin, { pool: deps.pool })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Switchboard API', version: '0.1.0', description: 'Call control and call recording for FreeSWITCH contact centres.' },
      tags: [{ name: 'operations' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  app.setErrorHandler((err, req, reply) => sendProblem(reply, req, err))
  app.setNotFoundHandler((req, reply) => sendProblem(reply, req, new NotFoundError('route', `${req.method} ${req.url.split('?')[0]}`)))

  await app.register(healthRoutes, { checks: deps.readiness })
  await app.register(metricsRoutes, { registry: deps.registry })
  for (const plugin of deps.plugins ?? []) await app.register(plugin)
  return app as unknown as FastifyInstance
}
