import type { Principal } from './tokens.ts'

/** Default lifetime of a cached token → principal answer (see PrincipalCache). */
export const PRINCIPAL_CACHE_TTL_MS = 5_000
const MAX_ENTRIES = 10_000

export interface PrincipalLookup { principal: Principal; tokenExpiresAt: Date | null }

/**
 * A short in-process cache of token hash → principal, so a burst of requests with the
 * same token (a player seeking, 200 range streams) costs one Postgres lookup, not one each.
 *
 * Revocation delay: a token revoked (or a user deactivated / re-roled) in Postgres keeps
 * working on a node for at most `ttlMs` (default 5 s) after its last lookup there; after
 * that it is 401 (403) again. A token's own `expires_at` is honoured to the millisecond
 * (an entry never outlives it). Only positive answers are cached: an unknown, revoked or
 * expired token is looked up every time and is 401 at once. Concurrent lookups of one
 * token share a single query. `ttlMs` 0 turns caching off.
 */
export class PrincipalCache {
  private readonly entries = new Map<string, { principal: Principal; until: number }>()
  private readonly inflight = new Map<string, Promise<PrincipalLookup | null>>()

  constructor(private readonly lookup: (tokenHash: string) => Promise<PrincipalLookup | null>, readonly ttlMs = PRINCIPAL_CACHE_TTL_MS) {}

  async get(tokenHash: string): Promise<Principal | null> {
    const now = Date.now()
    const hit = this.entries.get(tokenHash)
    if (hit && hit.until > now) return hit.principal
    if (hit) this.entries.delete(tokenHash)
    let pending = this.inflight.get(tokenHash)
    if (!pending) {
      pending = this.lookup(tokenHash).finally(() => this.inflight.delete(tokenHash))
      this.inflight.set(tokenHash, pending)
    }
    const found = await pending
    if (!found) return null
    const expires = found.tokenExpiresAt?.getTime() ?? Infinity
    if (expires <= Date.now()) return null
    if (this.ttlMs > 0) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string) // oldest first
      this.entries.set(tokenHash, { principal: found.principal, until: Math.min(Date.now() + this.ttlMs, expires) })
    }
    return found.principal
  }

  /** Drop one token (revoked on this node: effective here at once) or everything. */
  forget(tokenHash?: string): void {
    if (tokenHash === undefined) this.entries.clear()
    else this.entries.delete(tokenHash)
  }
}
