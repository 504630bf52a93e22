import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { SwitchboardError } from '../errors.ts'

/**
 * Security headers (helmet) and a per-client request rate limit for the whole app.
 * Call it in buildHttpApp right after creating the instance and before any route is
 * added (the rate limit attaches to routes as they are registered).
 */
export interface SecurityOptions {
  /** requests per window per client IP; false disables the limit (not recommended) */
  rateLimit?: { max: number; timeWindowMs: number; allowList?: string[] } | false
  /** Content-Security-Policy etc.; defaults are helmet's */
  helmet?: boolean
}

export const DEFAULT_SECURITY: Required<SecurityOptions> = { rateLimit: { max: 600, timeWindowMs: 60_000 }, helmet: true }

export class RateLimitedError extends SwitchboardError {
  constructor(retryAfter: string) { super('rate_limited', `too many requests; retry in ${retryAfter}`, 429) }
}

export async function registerSecurity(app: FastifyInstance, opts: SecurityOptions = {}): Promise<void> {
  const o = { ...DEFAULT_SECURITY, ...opts }
  if (o.helmet) {
    await app.register(helmet, {
      global: true,
      // audio is played by the console of the same origin; browsers on other origins get nothing
      crossOriginResourcePolicy: { policy: 'same-origin' },
    })
  }
  if (o.rateLimit) {
    await app.register(rateLimit, {
      global: true,
      max: o.rateLimit.max,
      timeWindow: o.rateLimit.timeWindowMs,
      allowList: o.rateLimit.allowList,
      errorResponseBuilder: (_req, ctx) => new RateLimitedError(ctx.after),
    })
  }
}
