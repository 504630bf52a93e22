import pg from 'pg'
import type { Logger } from '../log.ts'

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient

// BIGINT columns (counts, bytes) as JS numbers: every value we store fits in 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v))

export function createPool(url: string, log: Logger, max = 20): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 30_000,
    application_name: 'switchboard',
  })
  // An idle client losing its server (Postgres restarted) must not crash the process.
  pool.on('error', (err) => log.warn({ err }, 'idle Postgres client error'))
  pool.on('connect', (client) => client.on('error', (err) => log.warn({ err }, 'Postgres client error')))
  return pool
}

/** Run `fn` in one transaction; rolls back on any error and always releases the client. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    client.release()
  }
}
