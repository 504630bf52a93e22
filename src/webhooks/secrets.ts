import { randomBytes } from 'node:crypto'
import type { Pool } from '../db/pool.ts'

/**
 * A secret every node must agree on (a link signed on node A is served by node B), made
 * once and kept in Postgres (migration 0006). The first node to ask creates it; a
 * concurrent creator loses the INSERT race and reads the winner's value.
 */
export async function sharedSecret(pool: Pick<Pool, 'query'>, name: string): Promise<string> {
  await pool.query('INSERT INTO switchboard_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, randomBytes(32).toString('base64url')])
  const r = await pool.query<{ value: string }>('SELECT value FROM switchboard_secrets WHERE name = $1', [name])
  return r.rows[0].value
}
