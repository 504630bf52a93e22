import t from 'tap'
import { existsSync } from 'node:fs'
import { readFile, readdir, rm } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buffer } from 'node:stream/consumers'
import { createHash } from 'node:crypto'
import { startTestDatabase } from './support/db.ts'
import { startTestS3 } from './support/s3rver.ts'
import { tempSpool, makePipeline, spoolRecording, waitFor } from './support/pipeline.ts'
import { writeCorruptWav } from './support/audio-fixtures.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import { silentLogger } from '../src/log.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())

const talkSpec = {
  channels: 2 as const,
  segments: [
    [{ kind: 'noise' as const, ms: 3000 }, { kind: 'silence' as const, ms: 3000 }],
    [{ kind: 'silence' as const, ms: 2000 }, { kind: 'tone' as const, ms: 3000, freq: 600 }, { kind: 'silence' as const, ms: 1000 }],
  ],
}

async function storedRow(id: string) {
  const r = await db.pool.query('SELECT * FROM recordings WHERE id = $1', [id])
  return r.rows[0]?.state === 'stored' ? r.rows[0] : null
}

t.test('a spooled call recording is transcoded, stored, verified, linked, then removed from the spool', async (t) => {
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = await tempSpool()
  await db.pool.query(`INSERT INTO employees (id, name, role) VALUES ('e1', 'Anna', 'manager')`)
  await db.pool.query(`INSERT INTO clients (id, name, segment, assigned_manager_id) VALUES ('c1', 'ООО Ромашка', 'A', 'e1')`)
  const pipeline = await makePipeline(db.pool, store, spool)
  await pipeline.start()
  t.teardown(() => pipeline.stop())

  const rec = await spoolRecording(spool, talkSpec, { clientId: 'c1', agentId: 'e1', segment: 'A' })
  await pipeline.enqueue(rec.recordingId)
  const row = await waitFor('stored row', () => storedRow(rec.recordingId))

  t.equal(row.codec, 'opus')
  t.equal(row.channels, 2, 'stereo kept: caller left, agent right')
  t.ok(Math.abs(row.duration_ms - 6000) < 150, `duration ≈ 6 s (${row.duration_ms})`)
  t.equal(row.client_id, 'c1', 'linked to the client card')
  t.equal(row.agent_id, 'e1', 'linked to the agent')
  t.equal(row.call_uuid, rec.callUuid, 'linked to the call')
  t.equal(row.leg_uuid, rec.legUuid, 'and the leg')
  t.ok(row.retention_until > new Date(), 'retention computed')
  const stored = await buffer(await store.get(row.object_key))
  t.equal(createHash('sha256').update(stored).digest('hex'), row.sha256, 'SHA-256 of the stored object matches the row')
  t.equal(stored.length, Number(row.bytes))
  const metrics = row.metrics as { channels: Array<{ talkMs: number }>; overtalkMs: number }
  t.ok(Math.abs(metrics.channels[0].talkMs - 3000) < 200, `caller talk ≈ 3 s (${metrics.channels[0].talkMs})`)
  t.ok(Math.abs(metrics.overtalkMs - 1000) < 200, `overtalk ≈ 1 s (${metrics.overtalkMs})`)
  const call = await db.pool.query('SELECT * FROM calls WHERE uuid = $1', [rec.callUuid])
  t.equal(call.rowCount, 1, 'a CDR exists for the call (rebuilt from the sidecar when missing)')
  await waitFor('spool cleaned', async () => !existsSync(spool.wavPath(rec.recordingId)), 5_000).catch(() => undefined) // removal follows the row by a moment
  t.notOk(existsSync(spool.wavPath(rec.recordingId)), 'spool WAV removed after verification')
  t.notOk(existsSync(spool.sidecarPath(rec.recordingId)), 'and its sidecar')

  // Idempotent: running the same job again changes nothing and stores no second object.
  await pipeline.enqueue(rec.recordingId)
  await new Promise((r) => setTimeout(r, 1500))
  const dir = path.join(objects, path.dirname(row.object_key))
  t.same(await readdir(dir).then((f) => f.filter((n) => !n.endsWith('.meta.json'))), [path.basename(row.object_key)], 'exactly one object')
})

t.test('a corrupt WAV is quarantined with its reason; the call\'s other recording is unaffected', async (t) => {
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = await tempSpool()
  const pipeline = await makePipeline(db.pool, store, spool)
  await pipeline.start()
  t.teardown(() => pipeline.stop())

  const good = await spoolRecording(spool, talkSpec)
  const bad = await spoolRecording(spool, talkSpec, { callUuid: good.callUuid })
  await writeCorruptWav(spool.wavPath(bad.recordingId))
  await pipeline.enqueue(bad.recordingId)
  await pipeline.enqueue(good.recordingId)
  await waitFor('good stored', () => storedRow(good.recordingId))
  const badRow = await waitFor('bad quarantined', async () => {
    const r = await db.pool.query(`SELECT * FROM recordings WHERE id = $1 AND state = 'quarantined'`, [bad.recordingId])
    return r.rows[0]
  })
  t.match(badRow.failure_reason, /corrupt|not_audio/, 'reason recorded')
  const reason = JSON.parse(await readFile(path.join(spool.quarantineDir, `${bad.recordingId}.reason.json`), 'utf8')) as { reason: string }
  t.match(reason.reason, /corrupt|not_audio/, 'reason file beside the quarantined WAV')
  t.ok(existsSync(path.join(spool.quarantineDir, `${bad.recordingId}.wav`)), 'the broken file is kept, never deleted')
})

t.test('object store down: recordings wait in the spool, then store when it returns', async (t) => {
  const s3 = await startTestS3()
  t.teardown(() => s3.close())
  const store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, silentLogger())
  const spool = await tempSpool()
  const pipeline = await makePipeline(db.pool, store, spool, { maxRetryDelaySec: 2 })
  await pipeline.start()
  t.teardown(() => pipeline.stop())

  await s3.stop()
  const recs = [await spoolRecording(spool, talkSpec), await spoolRecording(spool, talkSpec)]
  for (const r of recs) await pipeline.enqueue(r.recordingId)
  await new Promise((r) => setTimeout(r, 3000))
  for (const r of recs) {
    t.ok(existsSync(spool.wavPath(r.recordingId)), 'still in the spool while the store is down')
    t.equal(await storedRow(r.recordingId), null, 'not marked stored')
  }
  await s3.start()
  for (const r of recs) {
    const row = await waitFor('stored after outage', () => storedRow(r.recordingId), 30_000)
    const info = await store.stat(row.object_key)
    t.equal(info?.metadata.sha256, row.sha256, 'stored with its SHA-256 after the outage')
    // the spool file goes right after the row says stored (and the object retention call returns)
    t.ok(await waitFor('spool drained', async () => !existsSync(spool.wavPath(r.recordingId)), 5_000), 'spool drained')
  }
})

t.test('the scanner finds recordings nobody enqueued (e.g. after a crash)', async (t) => {
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  const spool = await tempSpool()
  const orphan = await spoolRecording(spool, talkSpec)
  const pipeline = await makePipeline(db.pool, store, spool)
  await store.init()
  await pipeline.start()   // start-up scan
  t.teardown(() => pipeline.stop())
  await waitFor('orphan stored', () => storedRow(orphan.recordingId))
  t.pass('stored without an explicit enqueue')
})
