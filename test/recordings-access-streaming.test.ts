import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startTestDatabase } from './support/db.ts'
import { startTestS3 } from './support/s3rver.ts'
import { accessApp, addRecording, bearer, makeTokens, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import { silentLogger } from '../src/log.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'
import { parseRange } from '../src/recordings/access/range.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool)
const tokens = await makeTokens(db.pool)
const s3 = await startTestS3()
t.teardown(() => s3.close())
const s3store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, silentLogger())
await s3store.init()
const stores: Array<[string, ObjectStore]> = [['filesystem', await tempFsStore()], ['s3rver', s3store]]

t.test('parseRange table', async (t) => {
  const cases: Array<[string | undefined, number, unknown]> = [
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-1000', 100, { kind: 'partial', start: 0, end: 99 }],
    ['bytes=50-5000', 100, { kind: 'partial', start: 50, end: 99 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=9-1', 100, { kind: 'full' }],
    ['bytes=0-1,5-9', 100, { kind: 'full' }],
    ['items=0-1', 100, { kind: 'full' }],
    ['bytes=abc', 100, { kind: 'full' }],
  ]
  for (const [h, size, want] of cases) t.same(parseRange(h, size), want, String(h))
})

for (const [name, store] of stores) {
  t.test(`Range streaming from the ${name} store`, async (t) => {
    const app = await accessApp(db.pool, store)
    t.teardown(() => app.close())
    const body = randomBytes(300_000)
    const rec = await addRecording(db.pool, store, { body, ext: 'opus' })
    const mp3 = await addRecording(db.pool, store, { size: 1000, ext: 'mp3' })
    const wav = await addRecording(db.pool, store, { size: 1000, ext: 'wav' })
    const url = `/api/recordings/${rec.id}/audio`
    const get = (headers: Record<string, string> = {}, u = url) => app.inject({ method: 'GET', url: u, headers: { ...bearer(tokens.qa), ...headers } })

    const full = await get()
    t.equal(full.statusCode, 200)
    t.equal(full.headers['accept-ranges'], 'bytes')
    t.equal(full.headers['content-type'], 'audio/ogg')
    t.equal(Number(full.headers['content-length']), body.length)
    t.equal(full.headers.etag, `"${rec.sha256}"`)
    t.ok(full.rawPayload.equals(body), 'full body byte-exact')
    t.equal((await get({}, `/api/recordings/${mp3.id}/audio`)).headers['content-type'], 'audio/mpeg')
    t.equal((await get({}, `/api/recordings/${wav.id}/audio`)).headers['content-type'], 'audio/wav')

    const ranges: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0], ['bytes=0-1023', 0, 1023], ['bytes=1000-199999', 1000, 199_999], ['bytes=299999-', 299_999, 299_999],
      ['bytes=150000-', 150_000, 299_999], ['bytes=-500', 299_500, 299_999], ['bytes=-400000', 0, 299_999], ['bytes=290000-999999', 290_000, 299_999],
    ]
    for (const [h, a, b] of ranges) {
      const res = await get({ range: h })
      t.equal(res.statusCode, 206, h)
      t.equal(res.headers['content-range'], `bytes ${a}-${b}/${body.length}`, h)
      t.equal(Number(res.headers['content-length']), b - a + 1, h)
      t.ok(res.rawPayload.equals(body.subarray(a, b + 1)), `${h} byte-exact`)
    }
    // a player seeking around: many requests, every slice exact
    for (let i = 0; i < 25; i++) {
      const a = Math.floor(Math.random() * body.length)
      const b = Math.min(body.length - 1, a + Math.floor(Math.random() * 20_000))
      const res = await get({ range: `bytes=${a}-${b}` })
      if (!res.rawPayload.equals(body.subarray(a, b + 1))) t.fail(`seek ${a}-${b} differs`)
    }
    const plays = (await db.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE recording_id = $1 AND action = 'play'`, [rec.id])).rows[0].n
    t.equal(plays, 1, 'one play entry for a user playing and seeking (per window)')

    for (const h of ['bytes=300000-', 'bytes=999999-1000000', 'bytes=-0']) {
      const res = await get({ range: h })
      t.equal(res.statusCode, 416, h)
      t.equal(res.headers['content-range'], `bytes */${body.length}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
    }
    const multi = await get({ range: 'bytes=0-9,20-29' })
    t.equal(multi.statusCode, 200, 'multi-range → full body (documented)')
    t.ok(multi.rawPayload.equals(body))

    const ifRangeOk = await get({ range: 'bytes=10-19', 'if-range': `"${rec.sha256}"` })
    t.equal(ifRangeOk.statusCode, 206, 'If-Range with the current ETag → range')
    t.ok(ifRangeOk.rawPayload.equals(body.subarray(10, 20)))
    const ifRangeStale = await get({ range: 'bytes=10-19', 'if-range': '"stale"' })
    t.equal(ifRangeStale.statusCode, 200, 'If-Range with another ETag → whole representation')
    t.ok(ifRangeStale.rawPayload.equals(body))
    const ifRangeWeak = await get({ range: 'bytes=10-19', 'if-range': `W/"${rec.sha256}"` })
    t.equal(ifRangeWeak.statusCode, 200, 'weak validators never satisfy If-Range')
    const ifRangeDate = await get({ range: 'bytes=10-19', 'if-range': new Date(Date.now() + 60_000).toUTCString() })
    t.equal(ifRangeDate.statusCode, 206, 'If-Range date not older than Last-Modified → range')
    const notModified = await get({ 'if-none-match': `"${rec.sha256}"` })
    t.equal(notModified.statusCode, 304)
    t.equal(notModified.rawPayload.length, 0)

    // download URL: S3 presigns a working short-lived URL; the filesystem store says 409
    const dl = await app.inject({ method: 'GET', url: `/api/recordings/${rec.id}/download-url`, headers: bearer(tokens.legal) })
    if (store.kind === 's3') {
      t.equal(dl.statusCode, 200)
      const { url: signed } = dl.json()
      t.match(signed, /^http:\/\/127\.0\.0\.1:\d+\/recordings\/.+X-Amz-Expires=300/)
      const fetched = await httpGet(signed)
      t.ok(fetched.equals(body), 'presigned URL serves the object')
    } else {
      t.equal(dl.statusCode, 409)
      t.match(dl.json(), { code: 'presign_unsupported' })
    }

    // tamper check with the real store: overwrite the object with different bytes
    t.match((await app.inject({ method: 'POST', url: `/api/recordings/${mp3.id}/verify`, headers: bearer(tokens.legal) })).json(), { ok: true })
    const { Readable } = await import('node:stream')
    const evil = randomBytes(1000)
    await store.put(mp3.key, Readable.from([evil]), evil.length, { sha256: mp3.sha256 }, 'audio/mpeg')
    t.match((await app.inject({ method: 'POST', url: `/api/recordings/${mp3.id}/verify`, headers: bearer(tokens.legal) })).json(), { ok: false, reason: 'sha256 differs' })

    // no audio: deleted row → 409, missing object → 404
    await db.pool.query(`UPDATE recordings SET state = 'deleted' WHERE id = $1`, [wav.id])
    t.equal((await get({}, `/api/recordings/${wav.id}/audio`)).statusCode, 409)
    const gone = await addRecording(db.pool, store, { withObject: false })
    t.equal((await get({}, `/api/recordings/${gone.id}/audio`)).statusCode, 404)
  })
}

t.test('streams over a real port, client abort does not break the server', async (t) => {
  const store = stores[0][1]
  const app = await accessApp(db.pool, store)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const body = randomBytes(5_000_000)
  const rec = await addRecording(db.pool, store, { body })
  const http = await import('node:http')
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.get(`http://127.0.0.1:${port}/api/recordings/${rec.id}/audio`, { headers: bearer(tokens.qa), agent: false }, (res) => {
      res.once('data', () => { req.destroy(); resolve(res.statusCode ?? 0) }) // listener hangs up after the first chunk
    })
    req.on('error', reject)
  })
  t.equal(status, 200)
  const again = await httpGet(`http://127.0.0.1:${port}/api/recordings/${rec.id}/audio`, { ...bearer(tokens.qa), range: 'bytes=-100' })
  t.ok(again.equals(body.subarray(body.length - 100)))
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 5_000, 'no request left hanging by the aborted stream')
})

t.test('the play audit: first byte before the commit, last byte after it; a failed append aborts the stream', async (t) => {
  const { AuditBatcher } = await import('../src/recordings/access/audit.ts')
  const { recordingsRoutes } = await import('../src/http/plugins/recordings.ts')
  const { buildHttpApp } = await import('../src/http/app.ts')
  const { Registry } = await import('prom-client')
  const store = stores[0][1]
  const errors: Array<{ msg: string }> = []
  const log = Object.assign(silentLogger(), { error: (_o: unknown, msg: string) => { errors.push({ msg }) } })
  let fail = true
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => { release = resolve })
  const flaky = new AuditBatcher({
    query: (async (...args: Parameters<typeof db.pool.query>) => {
      await gate
      if (fail) throw new Error('audit db down')
      return db.pool.query(...args)
    }) as typeof db.pool.query,
  })
  const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], security: { rateLimit: false, helmet: true },
    plugins: [recordingsRoutes({ pool: db.pool, store, log: log as never, auditBatcher: flaky })] })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const body = randomBytes(200_000)
  const rec = await addRecording(db.pool, store, { body })
  const http = await import('node:http')
  const fetchRaw = () => new Promise<{ status: number; firstByteBeforeCommit: boolean; bytes: number; complete: boolean }>((resolve) => {
    let bytes = 0
    let firstByteBeforeCommit = false
    const req = http.get(`http://127.0.0.1:${port}/api/recordings/${rec.id}/audio`, { headers: { ...bearer(tokens.qa), range: 'bytes=0-99999' }, agent: false }, (res) => {
      res.once('data', () => { firstByteBeforeCommit = true; release() }) // the audit commit is still held back here
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, firstByteBeforeCommit, bytes, complete: res.complete }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, firstByteBeforeCommit, bytes, complete: false }))
      res.on('aborted', () => undefined)
    })
    req.on('error', () => resolve({ status: 0, firstByteBeforeCommit, bytes, complete: false }))
  })
  const failed = await fetchRaw()
  t.equal(failed.status, 206)
  t.ok(failed.firstByteBeforeCommit, 'audio flows before the audit entry is committed')
  t.notOk(failed.complete && failed.bytes === 100_000, `an unaudited stream never completes (${failed.bytes} bytes, complete ${failed.complete})`)
  t.ok(errors.some((e) => /play audit append failed/.test(e.msg)), 'the failure is logged')
  const plays = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE recording_id = $1 AND action = 'play'`, [rec.id])).rows[0].n
  t.equal(await plays(), 0)
  fail = false // the next request appends again (the failed window entry was dropped)
  const ok = await fetchRaw()
  t.same([ok.status, ok.bytes, ok.complete], [206, 100_000, true])
  t.equal(await plays(), 1, 'audited once the append works')
})

t.test('size and ETag from the row; the store is asked when it disagrees', async (t) => {
  const store = await tempFsStore()
  const app = await accessApp(db.pool, store)
  t.teardown(() => app.close())
  const body = randomBytes(10_000)
  const rec = await addRecording(db.pool, store, { body })
  const get = (headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: `/api/recordings/${rec.id}/audio`, headers: { ...bearer(tokens.qa), ...headers } })
  const stored = (await db.pool.query('SELECT stored_at FROM recordings WHERE id = $1', [rec.id])).rows[0].stored_at as Date
  const ok = await get({ range: 'bytes=0-9' })
  t.equal(ok.headers['last-modified'], stored.toUTCString(), 'Last-Modified is when the object was stored')
  t.equal(ok.headers.etag, `"${rec.sha256}"`)
  // a row without stored_at (older data) still works, through a stat
  await db.pool.query('UPDATE recordings SET stored_at = NULL WHERE id = $1', [rec.id])
  const viaStat = await get({ range: 'bytes=10-19' })
  t.equal(viaStat.statusCode, 206)
  t.ok(viaStat.rawPayload.equals(body.subarray(10, 20)))
  await db.pool.query('UPDATE recordings SET stored_at = now() WHERE id = $1', [rec.id])
  // the object shrank behind our back: the body is not ended short as if complete
  const { Readable } = await import('node:stream')
  await store.put(rec.key, Readable.from([body.subarray(0, 5_000)]), 5_000, {}, 'audio/ogg')
  const short = await get({ range: 'bytes=4000-8999' }).then((r) => ({ ok: r.rawPayload.length === 5_000 }), () => ({ ok: false }))
  t.notOk(short.ok, 'a short object does not yield a complete-looking body')
  await store.delete(rec.key)
  t.equal((await get()).statusCode, 404, 'object gone → 404 after asking the store')
})

/** GET without keep-alive (undici's pooled sockets would hold servers open at teardown). */
async function httpGet(url: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const http = await import('node:http')
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => (res.statusCode && res.statusCode < 300 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url} → ${res.statusCode}`))))
      res.on('error', reject)
    }).on('error', reject)
  })
}
