import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Pool } from '../../db/pool.ts'
import { SwitchboardError } from '../../errors.ts'
import { hashToken, principalOfHash, type Principal, type Role } from './tokens.ts'
import { PrincipalCache, PRINCIPAL_CACHE_TTL_MS } from './principal-cache.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on this route; `'public'` for the few unauthenticated ones (health, docs). */
    roles?: readonly Role[] | 'public'
  }
  interface FastifyRequest {
    principal: Principal | null
  }
  interface FastifyInstance {
    /** token → principal cache of this app (auth/principal-cache.ts); `forget` makes a revocation effective here at once */
    principalCache: PrincipalCache
  }
}

export class UnauthorizedError extends SwitchboardError {
  constructor(message = 'a valid bearer token is required') { super('unauthorized', message, 401) }
}
export class ForbiddenError extends SwitchboardError {
  constructor(role: string, allowed: readonly string[]) { super('forbidden', `role ${role} may not do this (allowed: ${allowed.join(', ')})`, 403) }
}

/**
 * Every route must declare `config.roles`; a route without it is refused for everyone
 * (fail closed), so forgetting it cannot open a hole. 401 = who are you?, 403 = not you.
 * Token lookups go through a short cache (default 5 s, `principalCacheTtlMs`; 0 = off):
 * a revoked token is refused on every node at most that long after the revocation.
 */
export const authPlugin = fp(async (app: FastifyInstance, opts: { pool: Pool; principalCacheTtlMs?: number }) => {
  const cache = new PrincipalCache((h) => principalOfHash(opts.pool, h), opts.principalCacheTtlMs ?? PRINCIPAL_CACHE_TTL_MS)
  app.decorate('principalCache', cache)
  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const roles = req.routeOptions.config?.roles
    if (roles === 'public') return
    if (req.routeOptions.url === undefined) return // 404 handler
    const token = bearerOf(req)
    if (!token) throw new UnauthorizedError()
    const principal = await cache.get(hashToken(token))
    if (!principal) throw new UnauthorizedError('unknown, expired or revoked token')
    req.principal = principal
    if (!roles || !roles.includes(principal.role)) throw new ForbiddenError(principal.role, roles ?? [])
  })
}, { name: 'switchboard-auth' })

const TOKEN_SHAPE = /^[A-Za-z0-9._~+/=-]{10,200}$/
/** Name of the HttpOnly cookie the web console's sign-in sets (see the console routes). */
export const SESSION_COOKIE = 'sb_token'

/**
 * The bearer token, or — for GET/HEAD only — the console's session cookie: an <audio>
 * element (Range streaming) and EventSource (SSE) cannot send an Authorization header.
 * Never for state-changing methods, so a cross-site form cannot ride on the cookie (the
 * cookie is SameSite=Strict as well).
 */
function bearerOf(req: FastifyRequest): string | null {
  const h = req.headers.authorization
  if (typeof h === 'string' && h.startsWith('Bearer ') && TOKEN_SHAPE.test(h.slice(7))) return h.slice(7)
  if (req.method === 'GET' || req.method === 'HEAD') return cookieToken(req.headers.cookie)
  return null
}

function cookieToken(header: string | undefined): string | null {
  if (!header || header.length > 4096) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim()
      return TOKEN_SHAPE.test(value) ? value : null
    }
  }
  return null
}
