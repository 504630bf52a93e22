/**
 * Outages around the recording pipeline, with the real servers taken down and brought back:
 * Postgres (the embedded cluster, stopped ~10 s while recordings are in flight, spooled and
 * enqueued) and the object store (s3rver, down ~12 s with a dozen recordings waiting).
 * Nothing may be lost: once the server is back every recording is stored, without a restart
 * of the pipeline, and the backlog metric falls back to 0.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startTestS3 } from './support/s3rver.ts'
import { tempSpool, spoolRecording, waitFor } from './support/pipeline.ts'
import { speechLikeSegments, type WavSpec } from './support/audio-fixtures.ts'
import { RecordingPipeline, DEFAULT_PIPELINE_OPTIONS } from '../src/recordings/pipeline.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'
import type { Spool, SpoolSidecar } from '../src/recordings/spool.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())

// the pipeline runs in this process: a rejection nobody handles would be the runner dying
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => { unhandled.push(reason); if (process.env.SB_DEBUG_UNHANDLED) console.error('UNHANDLED', (reason as Error)?.stack) }
process.on('unhandledRejection', onUnhandled)
t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)

async function startPipeline(store: ObjectStore, spool: Spool): Promise<{ pipeline: RecordingPipeline; registry: Registry }> {
  const registry = new Registry()
  const pipeline = new RecordingPipeline(
    { pool: db.pool, store, spool, log: silentLogger(), recording: () => cfg.recording, retention: () => cfg.retention },
    { ...DEFAULT_PIPELINE_OPTIONS, scanIntervalSec: 1, maxRetryDelaySec: 2 },
    registry,
  )
  await pipeline.start()
  return { pipeline, registry }
}

async function backlog(registry: Registry): Promise<number> {
  const m = await registry.getSingleMetric('switchboard_recordings_backlog')!.get()
  return m.values[0]?.value ?? 0
}

/** A `seconds`-long speech-like stereo call. */
function call(seconds: number, seed: number): WavSpec {
  return { channels: 2, seed, segments: [speechLikeSegments(seconds * 1000, seed * 2 + 1), speechLikeSegments(seconds * 1000, seed * 2 + 2)] }
}

async function storedCount(ids: string[]): Promise<number> {
  const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM recordings WHERE id = ANY($1::uuid[]) AND state = 'stored'`, [ids])
  return r.rows[0].n
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('Postgres down for ~10 s with recordings in flight, spooled and enqueued: all stored after it returns', async (t) => {
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-outage-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = await tempSpool()
  const { pipeline, registry } = await startPipeline(store, spool)
  t.teardown(() => pipeline.stop())

  // in flight when Postgres goes: four 40 s calls for two workers
  const before: SpoolSidecar[] = []
  for (let i = 0; i < 4; i++) before.push(await spoolRecording(spool, call(40, 10 + i)))
  for (const r of before) await pipeline.enqueue(r.recordingId)
  await waitFor('a recording being processed', async () => {
    const r = await db.pool.query(`SELECT 1 FROM recordings WHERE id = ANY($1::uuid[]) AND state = 'transcoding'`, [before.map((r) => r.recordingId)])
    return r.rowCount
  }, 30_000, 20)

  await db.stopServer()
  const downAt = Date.now()
  // hangups during the outage: spooled, enqueue fails (logged), the scanner must catch up later
  const during: SpoolSidecar[] = []
  for (let i = 0; i < 3; i++) {
    during.push(await spoolRecording(spool, call(20, 20 + i)))
    await pipeline.enqueue(during.at(-1)!.recordingId)
  }
  await sleep(10_000 - (Date.now() - downAt))
  await db.restart()
  t.comment(`Postgres was down for ${Date.now() - downAt} ms`)

  const all = [...before, ...during].map((r) => r.recordingId)
  const startedWaiting = Date.now()
  await waitFor('every recording stored after Postgres returned', async () => (await storedCount(all)) === all.length, 60_000, 250)
    .catch(async (err: Error) => {
      const states = await db.pool.query(`SELECT state, count(*)::int AS n FROM recordings WHERE id = ANY($1::uuid[]) GROUP BY state`, [all])
      const jobs = await db.pool.query(`SELECT key, attempts, locked_at IS NOT NULL AS locked, run_at FROM graphile_worker.jobs WHERE key = ANY($1)`, [all])
      t.fail(`${err.message}; rows ${JSON.stringify(states.rows)}; jobs ${JSON.stringify(jobs.rows)}`)
    })
  t.comment(`drained ${Date.now() - startedWaiting} ms after Postgres returned`)
  t.equal(await storedCount(all), all.length, `all ${all.length} recordings stored (4 in flight, 3 spooled during the outage)`)
  // The row says stored first and the spool file goes right after (never the other way round): allow that moment.
  await waitFor('spool drained', async () => all.every((id) => !existsSync(spool.wavPath(id))), 10_000, 100).catch(() => undefined)
  for (const id of all) t.notOk(existsSync(spool.wavPath(id)), `spool drained: ${id.slice(0, 8)}`)
  await waitFor('backlog metric back to 0', async () => (await backlog(registry)) === 0, 10_000, 200).catch(() => undefined)
  t.equal(await backlog(registry), 0, 'switchboard_recordings_backlog back to 0')
  t.same(unhandled.map(String), [], 'no unhandled rejection: the job runner survived its pool losing every connection')

  // the runner is alive, not just the scanner: a new hangup is picked up through its job at once
  const after = await spoolRecording(spool, call(5, 30))
  await pipeline.enqueue(after.recordingId)
  await waitFor('a new recording stored after the outage', async () => (await storedCount([after.recordingId])) === 1, 20_000, 100)
  t.pass('new recordings keep flowing')
})

t.test('object store down for ~12 s with a dozen recordings waiting: backlog rises, then drains to 0', async (t) => {
  const s3 = await startTestS3()
  t.teardown(() => s3.close())
  const store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, silentLogger())
  await store.init()
  const spool = await tempSpool()
  const { pipeline, registry } = await startPipeline(store, spool)
  t.teardown(() => pipeline.stop())

  await s3.stop()
  const downAt = Date.now()
  const recs: SpoolSidecar[] = []
  for (let i = 0; i < 12; i++) {
    recs.push(await spoolRecording(spool, call(10, 40 + i)))
    await pipeline.enqueue(recs.at(-1)!.recordingId)
  }
  const ids = recs.map((r) => r.recordingId)
  await waitFor('backlog metric shows the waiting recordings', async () => (await backlog(registry)) === recs.length, 10_000, 200)
  t.equal(await backlog(registry), 12, 'switchboard_recordings_backlog = 12 while the store is down')
  await sleep(12_000 - (Date.now() - downAt))
  t.equal(await storedCount(ids), 0, 'nothing marked stored while the store is down')
  t.equal((await readdir(spool.dir)).filter((f) => f.endsWith('.wav')).length, 12, 'all 12 still in the spool')
  const failures = await registry.getSingleMetric('switchboard_recordings_failures_total')!.get()
  t.ok(failures.values.reduce((s, v) => s + v.value, 0) >= 12, 'every recording failed at least once and was rescheduled')

  await s3.start()
  const upAt = Date.now()
  await waitFor('all stored after the store returned', async () => (await storedCount(ids)) === ids.length, 60_000, 250)
  t.comment(`store was down ${upAt - downAt} ms; drained ${Date.now() - upAt} ms after it returned`)
  t.ok(Date.now() - upAt < 30_000, 'drained well within the capped retry delay (2 s) plus processing time')
  await waitFor('backlog metric back to 0', async () => (await backlog(registry)) === 0, 10_000, 200)
  t.equal(await backlog(registry), 0, 'switchboard_recordings_backlog back to 0')
  for (const r of recs) {
    const row = (await db.pool.query('SELECT object_key, sha256 FROM recordings WHERE id = $1', [r.recordingId])).rows[0] as { object_key: string; sha256: string }
    t.equal((await store.stat(row.object_key))?.metadata.sha256, row.sha256, `${r.recordingId.slice(0, 8)} stored with its SHA-256`)
  }
  t.same(unhandled.map(String), [], 'no unhandled rejection')
})
