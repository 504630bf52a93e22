import { runner } from 'node-pg-migrate'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../log.ts'

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations')

/** Apply every pending migration in migrations/ (numbered SQL files). Safe to run concurrently: node-pg-migrate takes an advisory lock. */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    singleTransaction: true,
    log: (msg: string) => log.debug({ migrate: msg }, 'migration'),
    logger: { debug: () => undefined, info: (m: string) => log.debug(m), warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) },
  })
  const names = applied.map((m) => m.name)
  if (names.length > 0) log.info({ applied: names }, 'migrations applied')
  return names
}
