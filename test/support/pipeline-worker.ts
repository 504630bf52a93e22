/**
 * A RecordingPipeline in its own process, for crash tests and the benchmark:
 *
 *   node --import tsx test/support/pipeline-worker.ts [--db=URL] [--spool=DIR] [--store=DIR]
 *
 * Settings come from argv (`--name=value`) or the environment: DATABASE_URL, SPOOL_DIR,
 * STORE_DIR (filesystem object store) or S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY/S3_BUCKET,
 * PIPELINE_CONCURRENCY (2), PIPELINE_QUIET_SEC (120), PIPELINE_SCAN_SEC (1),
 * PIPELINE_MAX_RETRY_SEC (2), LOG_LEVEL (info).
 *
 * Logs are pino JSON lines on stdout; once the pipeline runs it logs `pipeline worker ready`.
 * Each stdin line `enqueue <recording id>` calls pipeline.enqueue() as a hangup would.
 * SIGTERM/SIGINT or the end of stdin (the parent is gone) stop gracefully; the crash tests
 * use SIGKILL instead.
 */
import { createInterface } from 'node:readline'
import { Registry } from 'prom-client'
import { pino } from 'pino'
import { createPool } from '../../src/db/pool.ts'
import { Spool } from '../../src/recordings/spool.ts'
import { RecordingPipeline, DEFAULT_PIPELINE_OPTIONS } from '../../src/recordings/pipeline.ts'
import { FsObjectStore } from '../../src/recordings/store/fs-store.ts'
import { S3ObjectStore } from '../../src/recordings/store/s3-store.ts'
import type { ObjectStore } from '../../src/recordings/store/object-store.ts'
import { loadSwitchboardFile } from '../../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../../src/server.ts'

const args = new Map<string, string>()
for (const a of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(a)
  if (m) args.set(m[1], m[2])
}
const setting = (arg: string, env: string, fallback?: string): string | undefined => args.get(arg) ?? process.env[env] ?? fallback
const num = (arg: string, env: string, fallback: number): number => Number(setting(arg, env, String(fallback)))

const log = pino({ level: setting('log-level', 'LOG_LEVEL', 'info'), base: { service: 'pipeline-worker', pid: process.pid } })

const dbUrl = setting('db', 'DATABASE_URL')
const spoolDir = setting('spool', 'SPOOL_DIR')
if (!dbUrl || !spoolDir) {
  log.fatal('usage: pipeline-worker --db=URL --spool=DIR (--store=DIR | S3_ENDPOINT…)')
  process.exit(2)
}

let store: ObjectStore
const s3 = setting('s3-endpoint', 'S3_ENDPOINT')
if (s3) {
  store = new S3ObjectStore({
    endpoint: s3,
    accessKey: setting('s3-access-key', 'S3_ACCESS_KEY', 'S3RVER')!,
    secretKey: setting('s3-secret-key', 'S3_SECRET_KEY', 'S3RVER')!,
    bucket: setting('s3-bucket', 'S3_BUCKET', 'recordings')!,
    region: 'us-east-1',
  }, log)
} else {
  const dir = setting('store', 'STORE_DIR')
  if (!dir) {
    log.fatal('no object store: give --store=DIR or S3_ENDPOINT')
    process.exit(2)
  }
  store = new FsObjectStore(dir)
}

const pool = createPool(dbUrl, log)
const spool = new Spool(spoolDir)
const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
const pipeline = new RecordingPipeline(
  { pool, store, spool, log, recording: () => cfg.recording, retention: () => cfg.retention },
  {
    ...DEFAULT_PIPELINE_OPTIONS,
    concurrency: num('concurrency', 'PIPELINE_CONCURRENCY', 2),
    quietSec: num('quiet-sec', 'PIPELINE_QUIET_SEC', DEFAULT_PIPELINE_OPTIONS.quietSec),
    scanIntervalSec: num('scan-sec', 'PIPELINE_SCAN_SEC', 1),
    maxRetryDelaySec: num('max-retry-sec', 'PIPELINE_MAX_RETRY_SEC', 2),
  },
  new Registry(),
)

await store.init()
await pipeline.start()
log.info({ spool: spoolDir, store: store.kind }, 'pipeline worker ready')

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const [cmd, id] = line.trim().split(/\s+/)
  if (cmd === 'enqueue' && id) void pipeline.enqueue(id)
})

let stopping = false
const shutdown = async (signal: string) => {
  if (stopping) return
  stopping = true
  log.info({ signal }, 'pipeline worker stopping')
  setTimeout(() => process.exit(1), 15_000).unref() // running jobs get 15 s, then we go anyway
  try {
    await pipeline.stop()
    await pool.end()
  } finally {
    log.info('pipeline worker stopped')
    process.exit(0)
  }
}
// stdin closes when the parent (test, benchmark) is gone, however it ended: do not outlive it
rl.on('close', () => void shutdown('stdin closed'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
