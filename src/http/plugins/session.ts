import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { hashToken } from '../auth/tokens.ts'
import { SESSION_COOKIE, UnauthorizedError } from '../auth/plugin.ts'
import { EVERY_ROLE } from '../../recordings/access/http-common.ts'

/** Same shape the auth plugin accepts in a bearer header or the cookie (auth/plugin.ts TOKEN_SHAPE). */
const TOKEN_PATTERN = '^[A-Za-z0-9._~+/=-]{10,200}$'

const SignInBody = Type.Object({ token: Type.String({ pattern: TOKEN_PATTERN, maxLength: 200 }) }, { additionalProperties: false })
const PrincipalSchema = Type.Object({
  userId: Type.String(), name: Type.String(), role: Type.String(), employeeId: Type.Union([Type.String(), Type.Null()]),
})

/**
 * The web console's sign-in. The console keeps the token in the tab (sessionStorage) and
 * sends it as a bearer header; this sets the same token as an HttpOnly, SameSite=Strict
 * cookie because an <audio> element (Range streaming) and EventSource cannot send headers.
 * The auth plugin honours that cookie for GET/HEAD only, so it can never authorise a change.
 *
 * POST and DELETE are public on purpose: sign-in is how a token is presented, and sign-out
 * only expires the caller's own cookie (it revokes nothing and reveals nothing).
 */
export function sessionRoutes() {
  return async function sessionPlugin(app: FastifyInstance): Promise<void> {
    app.post<{ Body: Static<typeof SignInBody> }>('/api/session', {
      config: { roles: 'public' },
      schema: {
        tags: ['session'], summary: 'Console sign-in: check a token, set the HttpOnly session cookie (GET/HEAD only), return the principal',
        body: SignInBody, security: [], response: { 200: PrincipalSchema },
      },
    }, async (req, reply) => {
      // the same cached lookup the auth plugin uses: revoked/expired tokens are refused alike
      const principal = await app.principalCache.get(hashToken(req.body.token))
      if (!principal) throw new UnauthorizedError('unknown, expired or revoked token')
      reply.header('Set-Cookie', sessionCookie(req, req.body.token)).header('Cache-Control', 'no-store')
      req.log.info({ user: principal.userId, role: principal.role }, 'console sign-in')
      return principal
    })

    app.get('/api/session', {
      config: { roles: EVERY_ROLE },
      schema: { tags: ['session'], summary: 'Who am I: the principal of the bearer token or session cookie', response: { 200: PrincipalSchema } },
    }, async (req, reply) => {
      reply.header('Cache-Control', 'no-store')
      return req.principal
    })

    app.delete('/api/session', {
      config: { roles: 'public' },
      schema: { tags: ['session'], summary: 'Console sign-out: expire the session cookie', security: [] },
    }, async (req, reply) => clearSession(req, reply))
  }
}

function cookieAttributes(req: FastifyRequest): string {
  // Secure whenever the console is reached over TLS; plain http on 127.0.0.1 keeps working for development.
  return `Path=/; HttpOnly; SameSite=Strict${req.protocol === 'https' ? '; Secure' : ''}`
}

/** A browser-session cookie (no Max-Age): it ends with the browser, the token's own expiry still applies. */
export function sessionCookie(req: FastifyRequest, token: string): string {
  return `${SESSION_COOKIE}=${token}; ${cookieAttributes(req)}`
}

function clearSession(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(204).header('Set-Cookie', `${SESSION_COOKIE}=; Max-Age=0; ${cookieAttributes(req)}`).header('Cache-Control', 'no-store').send()
}
