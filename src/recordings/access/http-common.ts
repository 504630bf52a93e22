import type { FastifyInstance } from 'fastify'
import { SwitchboardError } from '../../errors.ts'
import type { Role } from '../../http/auth/tokens.ts'

/** Shared bits of the recording-access HTTP plugins. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
export const UUID_RE = new RegExp(UUID_PATTERN)
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$'

export const QA_UP: readonly Role[] = ['qa', 'supervisor', 'legal', 'admin']
export const LEGAL_ADMIN: readonly Role[] = ['legal', 'admin']
export const LEGAL_ONLY: readonly Role[] = ['legal']
export const EVERY_ROLE: readonly Role[] = ['agent', 'qa', 'supervisor', 'legal', 'admin']

export const MAX_URL_LENGTH = 4_096

export class UriTooLongError extends SwitchboardError {
  constructor(n: number) { super('uri_too_long', `request target of ${n} characters exceeds ${MAX_URL_LENGTH}`, 414) }
}

/** 414 for absurdly long request targets, before any query parsing work. */
export function limitUrlLength(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    if (req.url.length > MAX_URL_LENGTH) throw new UriTooLongError(req.url.length)
  })
}

export function actorOf(req: { principal: { userId: string } | null }): string {
  return req.principal?.userId ?? 'anonymous'
}
