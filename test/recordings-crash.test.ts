/**
 * Crash safety of the recording pipeline: the pipeline runs in a child process
 * (test/support/pipeline-worker.ts) against a real embedded Postgres and a real object
 * store (filesystem, and once s3rver), and is killed with SIGKILL — no shutdown hook runs —
 * while transcoding, during/just after the upload, and at random points with several
 * recordings in flight. After each kill a fresh worker is started (the jobs of the dead one
 * stay locked in graphile-worker for hours: the start-up scan must get around them) and we
 * check that every recording ends as exactly one object and one `stored` row with the same
 * SHA-256, and that the spool is empty.
 */
import t, { type Test } from 'tap'
import { onJsonLines } from './support/process.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createHash, randomUUID } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as Minio from 'minio'
import { startTestDatabase } from './support/db.ts'
import { startTestS3, type TestS3 } from './support/s3rver.ts'
import { ROOT } from './support/process.ts'
import { waitFor } from './support/pipeline.ts'
import { writeSpeechLikeCall } from './support/audio-fixtures.ts'
import { Spool, type SpoolSidecar } from '../src/recordings/spool.ts'
import { objectKey } from '../src/recordings/process-recording.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())

const fixtures = await mkdtemp(path.join(tmpdir(), 'sb-crash-fixtures-'))
t.teardown(() => rm(fixtures, { recursive: true, force: true }))
// A 5-minute 8 kHz stereo call (9.6 MB WAV, ~900 kB Opus: transcoding takes seconds and the
// upload + re-hash window is as wide as a real call makes it) and 1-minute ones, kept few
// because the machine running the tests may be shared.
const LONG = await writeSpeechLikeCall(path.join(fixtures, 'long.wav'), { durationMs: 300_000, seed: 1 })
const SHORT = await Promise.all([3, 4].map((seed) => writeSpeechLikeCall(path.join(fixtures, `short-${seed}.wav`), { durationMs: 60_000, seed })))

const totals = { expected: 0, stored: 0, lost: 0, duplicated: 0, kills: 0, phases: new Map<string, number>() }
t.teardown(() => {
  const phases = [...totals.phases].map(([p, n]) => `${p}=${n}`).join(' ')
  t.comment(`crash: recordings expected ${totals.expected} stored ${totals.stored} lost ${totals.lost} duplicated ${totals.duplicated} (${totals.kills} SIGKILLs: ${phases})`)
})

// ---------------------------------------------------------------- worker processes

interface WorkerProcess {
  child: ChildProcess
  exited: Promise<void>
  logs: Array<Record<string, unknown>>
  stderr: () => string
}

const everyWorker: WorkerProcess[] = []
t.teardown(async () => {
  // kill -9 leaves the worker's ffmpeg children running as orphans in its process group: clean them up
  for (const w of everyWorker) {
    try { process.kill(-w.child.pid!, 'SIGKILL') } catch { /* group already gone */ }
  }
})

interface Env { spool: string; store?: string; s3?: TestS3 }

async function startWorker(env: Env): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/pipeline-worker.ts'], {
    cwd: ROOT,
    detached: true, // own process group, so that teardown can reap orphaned ffmpeg processes
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: '1', LOG_LEVEL: 'info',
      DATABASE_URL: db.url, SPOOL_DIR: env.spool,
      ...(env.store ? { STORE_DIR: env.store } : {}),
      ...(env.s3 ? { S3_ENDPOINT: env.s3.endpoint, S3_ACCESS_KEY: env.s3.accessKey, S3_SECRET_KEY: env.s3.secretKey, S3_BUCKET: env.s3.bucket } : {}),
      PIPELINE_SCAN_SEC: '1', PIPELINE_MAX_RETRY_SEC: '2', PIPELINE_CONCURRENCY: '2',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const w: WorkerProcess = { child, exited: once(child, 'exit').then(() => undefined), logs: [], stderr: () => err }
  everyWorker.push(w)
  let err = ''
  onJsonLines(child.stdout!, (line) => w.logs.push(line))
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
  let dead = false
  void w.exited.then(() => { dead = true })
  await waitFor('worker ready', async () => {
    if (dead) throw new Error(`worker exited before it was ready: ${err}`)
    return w.logs.some((l) => l.msg === 'pipeline worker ready')
  }, 60_000, 50)
  return w
}

async function kill9(w: WorkerProcess, phase: string): Promise<void> {
  w.child.kill('SIGKILL')
  await w.exited
  totals.kills++
  totals.phases.set(phase, (totals.phases.get(phase) ?? 0) + 1)
}

async function stopGracefully(w: WorkerProcess): Promise<void> {
  w.child.kill('SIGTERM')
  await w.exited
}

// ---------------------------------------------------------------- spool and store

interface Spooled { id: string; key: string }

/** What a CallSession + FreeSWITCH leave in the spool at hangup: sidecar, WAV, "stopped". */
async function spoolCall(spool: Spool, wav: string): Promise<Spooled> {
  const started = new Date()
  const sidecar: SpoolSidecar = {
    recordingId: randomUUID(), callUuid: randomUUID(), legUuid: randomUUID(), direction: 'inbound',
    caller: '+74951234567', callee: '7001', did: '+74951112233', clientId: null, agentId: null, queueId: null, segment: null,
    stereo: true, startedAt: started.toISOString(), stoppedAt: null, pausedSpans: [],
  }
  const target = await spool.open(sidecar)
  await copyFile(wav, target)
  await spool.update(sidecar.recordingId, { stoppedAt: new Date().toISOString() })
  return { id: sidecar.recordingId, key: objectKey(started, sidecar.callUuid, sidecar.recordingId, 'opus') }
}

async function walk(dir: string, skip: (rel: string) => boolean = () => false, base = dir): Promise<string[]> {
  const out: string[] = []
  let entries
  try { entries = await readdir(dir, { withFileTypes: true }) } catch { return out }
  for (const e of entries) {
    const full = path.join(dir, e.name)
    const rel = path.relative(base, full)
    if (skip(rel)) continue
    if (e.isDirectory()) out.push(...await walk(full, skip, base))
    else out.push(rel)
  }
  return out
}

function sha256(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    stream.on('data', (d: Buffer) => h.update(d))
    stream.on('end', () => resolve(h.digest('hex')))
    stream.on('error', reject)
  })
}

/** Every object in the store: key → SHA-256 of its bytes, read straight from the store's own files/API. */
interface StoreView { objects(): Promise<Map<string, string>>; leftovers(): Promise<string[]> }

function fsStoreView(root: string): StoreView {
  return {
    async objects() {
      const files = (await walk(root, (rel) => rel === '.tmp')).filter((f) => !f.endsWith('.meta.json'))
      const m = new Map<string, string>()
      for (const f of files) m.set(f.split(path.sep).join('/'), await sha256(createReadStream(path.join(root, f))))
      return m
    },
    // temporary files of uploads cut short by a kill (the store renames into place, so they are never objects)
    leftovers: () => walk(path.join(root, '.tmp')),
  }
}

function s3StoreView(s3: TestS3): StoreView {
  const client = new Minio.Client({ endPoint: '127.0.0.1', port: Number(new URL(s3.endpoint).port), useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, region: 'us-east-1', pathStyle: true })
  return {
    async objects() {
      const m = new Map<string, string>()
      const keys: string[] = []
      for await (const o of client.listObjectsV2(s3.bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name) keys.push(o.name)
      for (const k of keys) m.set(k, await sha256(await client.getObject(s3.bucket, k)))
      return m
    },
    leftovers: async () => [],
  }
}

interface Row { id: string; state: string; object_key: string | null; sha256: string | null; bytes: number | null }

async function rows(ids: string[]): Promise<Row[]> {
  return (await db.pool.query<Row>('SELECT id, state, object_key, sha256, bytes FROM recordings WHERE id = ANY($1::uuid[])', [ids])).rows
}

/**
 * Wait until every recording is stored, then check the invariants: one `stored` row each,
 * exactly one object each (no stray objects at all), object SHA-256 = row, spool empty.
 */
async function expectAllStored(t: Test, label: string, recs: Spooled[], spool: Spool, view: StoreView, ms = 120_000): Promise<void> {
  const ids = recs.map((r) => r.id)
  try {
    await waitFor(`${label}: all ${ids.length} recordings stored`, async () => (await rows(ids)).filter((r) => r.state === 'stored').length === ids.length, ms, 200)
  } catch (err) {
    const states = (await rows(ids)).map((r) => r.state)
    t.fail(`${label}: not all stored (${states.join(',')}): ${(err as Error).message}`)
  }
  // the worker removes the spool files right after the row says stored
  await waitFor(`${label}: spool drained`, async () => (await walk(spool.dir, (rel) => rel === 'quarantine')).length === 0, 15_000, 100).catch(() => undefined)

  const all = await rows(ids)
  const objects = await view.objects()
  let stored = 0
  let duplicated = 0
  for (const r of recs) {
    const row = all.find((x) => x.id === r.id)
    const mine = [...objects.keys()].filter((k) => k.includes(r.id))
    if (row?.state === 'stored') stored++
    if (mine.length > 1) duplicated += mine.length - 1
    t.equal(row?.state, 'stored', `${label}: ${r.id.slice(0, 8)} has one stored row`)
    t.same(mine, [r.key], `${label}: ${r.id.slice(0, 8)} has exactly one object, under its key`)
    t.equal(objects.get(r.key), row?.sha256, `${label}: ${r.id.slice(0, 8)} object SHA-256 = row`)
  }
  const stray = [...objects.keys()].filter((k) => !recs.some((r) => k.includes(r.id)))
  t.same(stray, [], `${label}: no objects besides the recordings'`)
  t.same(await walk(spool.dir, (rel) => rel === 'quarantine'), [], `${label}: spool empty (WAVs, sidecars, work and partial files)`)
  const leftovers = await view.leftovers()
  if (leftovers.length) t.comment(`${label}: ${leftovers.length} temporary upload file(s) left in the store's .tmp by killed uploads`)
  totals.expected += recs.length
  totals.stored += stored
  totals.lost += recs.length - stored
  totals.duplicated += duplicated + stray.length
}

async function freshDirs(t: Test): Promise<{ spool: Spool; store: string }> {
  const spool = new Spool(await mkdtemp(path.join(tmpdir(), 'sb-crash-spool-')))
  await spool.init()
  const store = await mkdtemp(path.join(tmpdir(), 'sb-crash-objects-'))
  t.teardown(async () => {
    await rm(spool.dir, { recursive: true, force: true })
    await rm(store, { recursive: true, force: true })
  })
  return { spool, store }
}

/** Poll `probe` as fast as the event loop allows (setImmediate), up to `ms`. */
async function pollFast(probe: () => string | null | Promise<string | null>, ms: number): Promise<string | null> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    const hit = await probe()
    if (hit) return hit
    await new Promise((r) => setImmediate(r))
  }
  return null
}

// ---------------------------------------------------------------- the scenarios

t.test('kill -9 while transcoding: a fresh worker finishes every recording exactly once', async (t) => {
  const { spool, store } = await freshDirs(t)
  const recs = [await spoolCall(spool, LONG.path), await spoolCall(spool, SHORT[0].path), await spoolCall(spool, SHORT[1].path)]
  const w1 = await startWorker({ spool: spool.dir, store })
  const seen = await waitFor('a recording in transcoding', async () => {
    const parts = (await readdir(spool.workDir)).filter((f) => f.includes('.part-'))
    const transcoding = (await rows(recs.map((r) => r.id))).filter((r) => r.state === 'transcoding')
    return transcoding.length && parts.length ? `${transcoding.length} row(s) transcoding, ${parts.length} .part file(s)` : null
  }, 60_000, 20)
  await kill9(w1, 'transcoding')
  t.comment(`killed while ${seen}`)
  t.ok((await rows(recs.map((r) => r.id))).some((r) => r.state === 'transcoding'), 'a row was left in transcoding')
  const locked = await db.pool.query<{ id: string }>(`SELECT id FROM graphile_worker.jobs WHERE key = ANY($1) AND locked_at IS NOT NULL`, [recs.map((r) => r.id)])
  const lockedIds = locked.rows.map((j) => j.id)
  t.ok(lockedIds.length >= 1, `the dead worker left ${lockedIds.length} job(s) locked (graphile-worker would wait 4 h)`)

  const w2 = await startWorker({ spool: spool.dir, store })
  await expectAllStored(t, 'transcoding', recs, spool, fsStoreView(store))
  await stopGracefully(w2)
  // the start-up scan's 'replace' detached the dead worker's jobs (key cleared, attempts
  // used up): when their lock expires in 4 h they will not run again
  const left = await db.pool.query<{ key: string | null; spent: boolean }>(
    `SELECT key, attempts >= max_attempts AS spent FROM graphile_worker.jobs WHERE id = ANY($1::bigint[])`, [lockedIds])
  t.ok(left.rows.every((j) => j.key === null && j.spent), `the ${left.rowCount} job(s) left behind by the dead worker are spent and keyless`)
})

t.test('kill -9 during the upload, and after the upload before the row says stored (filesystem store)', async (t) => {
  const { spool, store } = await freshDirs(t)
  const recs: Spooled[] = []
  const tmpFiles = async () => new Set(await readdir(path.join(store, '.tmp')).catch(() => [] as string[]))

  // 1. during the upload: a new temporary file in the store's .tmp is the upload being written
  const first = [await spoolCall(spool, LONG.path), await spoolCall(spool, SHORT[0].path)]
  recs.push(...first)
  const before = await tmpFiles()
  const w1 = await startWorker({ spool: spool.dir, store })
  const uploading = await pollFast(async () => ([...await tmpFiles()].some((f) => !before.has(f)) ? 'uploading' : null), 90_000)
  await kill9(w1, uploading ?? 'missed')
  t.ok(uploading, 'killed while an upload was being written')
  t.comment(`killed during the upload; rows ${(await rows(first.map((r) => r.id))).map((r) => r.state).join(',')}`)

  // 2. after the upload: the object is in place but the worker is still verifying it
  // (stat + re-hash of ~900 kB) and has not written `stored`: a window of milliseconds,
  // so once the transcoded file is ready we watch for the object in a tight synchronous loop.
  let afterUpload = 0
  for (let round = 0; round < 3 && afterUpload === 0; round++) {
    const rec = await spoolCall(spool, LONG.path)
    recs.push(rec)
    const w = await startWorker({ spool: spool.dir, store })
    await waitFor('transcoded file ready for upload', async () => existsSync(spool.workPath(rec.id, 'opus')) || existsSync(path.join(store, rec.key)), 90_000, 5)
    const objectPath = path.join(store, rec.key)
    const until = Date.now() + 5_000
    while (!existsSync(objectPath) && Date.now() < until) { /* spin: milliseconds matter here */ }
    w.child.kill('SIGKILL')
    const state = (await rows([rec.id]))[0]?.state
    await kill9(w, state === 'stored' ? 'after-upload-missed' : 'after-upload')
    if (state !== 'stored' && existsSync(objectPath)) afterUpload++
    t.comment(`round ${round}: object ${existsSync(objectPath) ? 'present' : 'absent'}, row ${state} at the kill`)
  }
  if (afterUpload === 0) t.comment('the after-upload window was missed in every round (machine too slow to catch it); the upload kill above still counts')

  const w = await startWorker({ spool: spool.dir, store })
  await expectAllStored(t, 'upload', recs, spool, fsStoreView(store))
  await stopGracefully(w)
})

t.test('kill -9 around the upload to S3 (s3rver)', async (t) => {
  const s3 = await startTestS3()
  t.teardown(() => s3.close())
  const { spool } = await freshDirs(t)
  const recs = [await spoolCall(spool, LONG.path), await spoolCall(spool, SHORT[1].path)]
  const w1 = await startWorker({ spool: spool.dir, s3 })
  // the transcoded file in .work (renamed from its .part) means: hashed, upload starting
  const hit = await pollFast(async () => {
    const done = (await readdir(spool.workDir)).filter((f) => f.endsWith('.opus'))
    if (!done.length) return null
    const st = await rows(recs.map((r) => r.id))
    return st.some((r) => r.state === 'transcoding') ? `upload of ${done.length} recording(s) starting` : null
  }, 90_000)
  await kill9(w1, 's3-upload')
  t.ok(hit, `killed when ${hit}`)
  const w2 = await startWorker({ spool: spool.dir, s3 })
  await expectAllStored(t, 's3', recs, spool, s3StoreView(s3))
  await stopGracefully(w2)
})

t.test('kill -9 at random points, 6 times, several recordings in flight', async (t) => {
  const { spool, store } = await freshDirs(t)
  const recs: Spooled[] = []
  let seed = 20240611
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  for (let i = 0; i < 6; i++) {
    // two more 1-minute calls per iteration, on top of whatever the killed workers left
    recs.push(await spoolCall(spool, SHORT[0].path), await spoolCall(spool, SHORT[1].path))
    const w = await startWorker({ spool: spool.dir, store })
    const delay = Math.round(200 + rand() * 3000)
    await new Promise((r) => setTimeout(r, delay))
    const st = await rows(recs.map((r) => r.id))
    const count = (s: string) => st.filter((r) => r.state === s).length
    await kill9(w, 'random')
    t.comment(`iteration ${i}: killed ${delay} ms after start with ${count('transcoding')} transcoding, ${count('stored')}/${recs.length} stored`)
  }
  const w = await startWorker({ spool: spool.dir, store })
  await expectAllStored(t, 'random', recs, spool, fsStoreView(store))
  await stopGracefully(w)
})
