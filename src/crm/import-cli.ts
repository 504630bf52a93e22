/**
 * npm run import -- [--employees] [--no-prune] [--batch N] <file | ->
 *
 * Imports the CRM export (clients by default, employees with --employees) from a CSV,
 * JSON Lines or JSON-array file (`-` reads stdin) into DATABASE_URL, or into the embedded
 * Postgres under DATA_DIR when DATABASE_URL is unset (like the server; migrations are
 * applied first). The switchboard config (SWITCHBOARD_CONFIG, else the example) gives
 * defaultRegion and the offices. Prints the report as JSON on stdout.
 *
 * Exit codes:
 *   0  the import ran to the end — rejected rows, if any, are listed in the report
 *      (a nightly export always has a few; alerting on them is the operator's choice);
 *   2  fatal: unreadable / malformed file, another import running, database unreachable,
 *      bad arguments. Batches committed before a fatal error stay (re-run after fixing).
 */
import { createReadStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { readEnvConfig } from '../config/env.ts'
import { loadSwitchboardFile } from '../config/switchboard-file.ts'
import { createLogger } from '../log.ts'
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.ts'
import { migrate } from '../db/migrate.ts'
import { createPool } from '../db/pool.ts'
import { EXAMPLE_CONFIG } from '../server.ts'
import { runImport } from './import.ts'

const USAGE = 'usage: npm run import -- [--employees] [--no-prune] [--batch N] <file | ->'

async function main(argv: string[]): Promise<number> {
  let kind: 'clients' | 'employees' = 'clients'
  let prune = true
  let batchSize: number | undefined
  let file: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--employees') kind = 'employees'
    else if (a === '--clients') kind = 'clients'
    else if (a === '--no-prune') prune = false
    else if (a === '--batch') batchSize = Number(argv[++i])
    else if (a === '-h' || a === '--help') { process.stdout.write(`${USAGE}\n`); return 0 }
    else if (a.startsWith('--')) { process.stderr.write(`unknown option ${a}\n${USAGE}\n`); return 2 }
    else file = a
  }
  if (file === undefined || (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0))) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  const env = readEnvConfig(process.env)
  // Logs go to stderr so that stdout carries only the report.
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL)
  const config = await loadSwitchboardFile(env.SWITCHBOARD_CONFIG ?? EXAMPLE_CONFIG)
  let embedded: EmbeddedDatabase | undefined
  let url = env.DATABASE_URL
  if (!url) {
    await mkdir(env.DATA_DIR, { recursive: true })
    embedded = await startEmbeddedPostgres(env.DATA_DIR, log)
    url = embedded.url
  }
  const pool = createPool(url, log, 4)
  try {
    await migrate(url, log)
    const input = file === '-' ? process.stdin : createReadStream(file)
    const report = await runImport(kind, input, {
      pool, log, defaultRegion: config.defaultRegion, config, batchSize, prunePhones: prune, actor: 'cli', source: file,
    })
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    process.stderr.write(`${kind}: ${report.rows.read} rows read, ${report.rows.imported} imported, ${report.rows.rejected} rejected; ` +
      `${report.phones.imported} phones (${report.phones.reassigned} reassigned, ${report.phones.rejected} rejected, ${report.phones.removed} removed) ` +
      `in ${(report.durationMs / 1000).toFixed(1)} s\n`)
    return 0
  } finally {
    await pool.end().catch(() => undefined)
    if (embedded) await embedded.stop().catch(() => undefined)
  }
}

// Exit explicitly once stdout is flushed: a library's handle must not keep the process
// alive, and the exit code must be the one documented above.
const exit = (code: number) => process.stdout.write('', () => process.exit(code))
main(process.argv.slice(2)).then(
  (code) => exit(code),
  (err: unknown) => {
    const e = err as { message?: string; code?: string }
    process.stderr.write(`import failed${e.code ? ` (${e.code})` : ''}: ${e.message ?? String(err)}\n`)
    exit(2)
  },
)
