import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startTestDatabase } from './support/db.ts'
import { makePipeline, spoolRecording, waitFor } from './support/pipeline.ts'
import { Spool } from '../src/recordings/spool.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'

// Seed 003: a full disk once corrupted the database. The spool sits on a real, tiny
// filesystem here (tmpfs, 8 MiB) that we fill up: the pipeline must notice, suspend
// optional recordings, never delete one, and still drain what it has.
const mnt = await mkdtemp(path.join(tmpdir(), 'sb-tinyspool-'))
let mountError: string | false = false
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'pipe' })
} catch (err) {
  mountError = `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`
  await rm(mnt, { recursive: true, force: true })
}
t.test('spool disk watermarks on a nearly full filesystem', { skip: mountError }, async (t) => {
  t.teardown(async () => { execFileSync('umount', ['-l', mnt]); await rm(mnt, { recursive: true, force: true }) })
  const db = await startTestDatabase()
  t.teardown(() => db.close())
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = new Spool(mnt)
  await spool.init()
  const pipeline = await makePipeline(db.pool, store, spool, { warnFreePercent: 50, criticalFreePercent: 20, scanIntervalSec: 3600 })
  await pipeline.start()
  t.teardown(() => pipeline.stop())
  t.equal(pipeline.diskStatus().level, 'ok', 'empty spool: ok')
  t.ok(pipeline.mayStartOptionalRecording())

  // A real recording waiting in the spool, then ballast until less than 20 % is free.
  const rec = await spoolRecording(spool, { channels: 2, segments: [[{ kind: 'noise', ms: 4000 }], [{ kind: 'tone', ms: 4000 }]] })
  // Ballast sized from what statfs reports, so the test does not depend on tmpfs bookkeeping.
  const fillTo = async (name: string, freePercent: number) => {
    const d = await spool.disk()
    await writeFile(path.join(mnt, name), Buffer.alloc(Math.floor(d.freeBytes - (freePercent / 100) * d.totalBytes)))
  }
  await fillTo('ballast-1', 40)
  await pipeline.checkDisk()
  t.equal(pipeline.diskStatus().level, 'warning', `below 50 % free: warning (${pipeline.diskStatus().freePercent.toFixed(1)} %)`)
  t.ok(pipeline.mayStartOptionalRecording(), 'warning does not stop recording yet')
  await fillTo('ballast-2', 10)
  await pipeline.checkDisk()
  t.equal(pipeline.diskStatus().level, 'critical', `below 20 % free: critical (${pipeline.diskStatus().freePercent.toFixed(1)} %)`)
  t.notOk(pipeline.mayStartOptionalRecording(), 'optional recordings suspended')
  t.ok(existsSync(spool.wavPath(rec.recordingId)), 'nothing in the spool was deleted to make room')

  // The recording still drains to the object store, which frees the spool.
  await pipeline.enqueue(rec.recordingId)
  const row = await waitFor('stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE id = $1 AND state = 'stored'`, [rec.recordingId])).rows[0])
  t.ok(await store.stat(row.object_key), 'stored despite the full spool')
  await rm(path.join(mnt, 'ballast-2'))
  await pipeline.checkDisk()
  t.equal(pipeline.diskStatus().level, 'warning', 'back above the critical mark once space is freed')
})
