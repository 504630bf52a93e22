import { createHash, randomBytes } from 'node:crypto'
import type { Pool } from '../../db/pool.ts'

export type Role = 'agent' | 'qa' | 'supervisor' | 'legal' | 'admin'
export const ROLES: readonly Role[] = ['agent', 'qa', 'supervisor', 'legal', 'admin']

export interface Principal { userId: string; name: string; role: Role; employeeId: string | null }

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Create a user (if missing) and a new API token for them; returns the token in clear, once. */
export async function createApiToken(pool: Pool, user: { id: string; name: string; role: Role; employeeId?: string | null }, label = 'api'): Promise<string> {
  const token = `sb_${randomBytes(24).toString('base64url')}`
  await pool.query(
    `INSERT INTO users (id, name, role, employee_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, employee_id = EXCLUDED.employee_id`,
    [user.id, user.name, user.role, user.employeeId ?? null])
  await pool.query('INSERT INTO api_tokens (token_hash, user_id, label) VALUES ($1, $2, $3)', [hashToken(token), user.id, label])
  return token
}

/** The bootstrap admin token from SWITCHBOARD_ADMIN_TOKEN: stored hashed, idempotent across restarts. */
export async function ensureBootstrapAdmin(pool: Pool, token: string): Promise<void> {
  await pool.query(`INSERT INTO users (id, name, role) VALUES ('admin', 'Bootstrap admin', 'admin') ON CONFLICT (id) DO NOTHING`)
  await pool.query(`INSERT INTO api_tokens (token_hash, user_id, label) VALUES ($1, 'admin', 'bootstrap') ON CONFLICT (token_hash) DO NOTHING`, [hashToken(token)])
}

export async function principalOf(pool: Pool, token: string): Promise<Principal | null> {
  return (await principalOfHash(pool, hashToken(token)))?.principal ?? null
}

/** The principal of a live token (not revoked, user active, not expired) and when the token expires. */
export async function principalOfHash(pool: Pool, tokenHash: string): Promise<{ principal: Principal; tokenExpiresAt: Date | null } | null> {
  const r = await pool.query<{ id: string; name: string; role: Role; employee_id: string | null; expires_at: Date | null }>(
    `SELECT u.id, u.name, u.role, u.employee_id, t.expires_at FROM api_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_hash = $1 AND NOT t.revoked AND u.active AND (t.expires_at IS NULL OR t.expires_at > now())`, [tokenHash])
  const u = r.rows[0]
  return u ? { principal: { userId: u.id, name: u.name, role: u.role, employeeId: u.employee_id }, tokenExpiresAt: u.expires_at } : null
}

/** Revoke a token in Postgres. Other nodes (and caches not passed here) stop accepting it within their cache TTL. */
export async function revokeApiToken(pool: Pool, token: string, cache?: { forget(tokenHash: string): void }): Promise<boolean> {
  const h = hashToken(token)
  const r = await pool.query('UPDATE api_tokens SET revoked = true WHERE token_hash = $1 AND NOT revoked', [h])
  cache?.forget(h)
  return (r.rowCount ?? 0) > 0
}
