/**
 * `npm run migrate`: apply pending migrations to DATABASE_URL, or to the embedded
 * Postgres under DATA_DIR when DATABASE_URL is unset (started for the run, then stopped).
 * The server also migrates at start-up; this is for deployments that migrate first.
 * Exit codes: 0 applied (or nothing to do), 2 failed.
 */
import { readEnvConfig } from '../config/env.ts'
import { createLogger } from '../log.ts'
import { startEmbeddedPostgres } from './embedded.ts'
import { migrate } from './migrate.ts'

const log = createLogger(process.env.LOG_LEVEL ?? 'info')
try {
  const env = readEnvConfig(process.env)
  const embedded = env.DATABASE_URL ? undefined : await startEmbeddedPostgres(env.DATA_DIR, log)
  try {
    const applied = await migrate(env.DATABASE_URL ?? embedded!.url, log)
    log.info({ applied }, applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date')
  } finally {
    await embedded?.stop()
  }
} catch (err) {
  log.fatal({ err }, 'migration failed')
  process.exit(2)
}
