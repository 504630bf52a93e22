import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startEmbeddedPostgres } from '../../src/db/embedded.ts'
import { migrate } from '../../src/db/migrate.ts'
import { createPool, type Pool } from '../../src/db/pool.ts'
import { silentLogger } from '../../src/log.ts'

export interface TestDatabase {
  url: string
  pool: Pool
  dataDir: string
  /** Stop Postgres (for outage tests); `restart()` brings the same cluster back on the same port. */
  stopServer(): Promise<void>
  restart(): Promise<void>
  close(): Promise<void>
}

/**
 * A real, migrated Postgres for one test file: the same embedded server `npm start`
 * uses, in a temporary directory, removed afterwards.
 */
export async function startTestDatabase(): Promise<TestDatabase> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-test-db-'))
  const log = silentLogger()
  let db = await startEmbeddedPostgres(dataDir, log)
  const port = Number(new URL(db.url).port)
  await migrate(db.url, log)
  const pool = createPool(db.url, log)
  return {
    url: db.url,
    pool,
    dataDir,
    stopServer: () => db.stop(),
    restart: async () => { db = await startEmbeddedPostgres(dataDir, log, port) },
    close: async () => {
      await pool.end().catch(() => undefined)
      await db.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
