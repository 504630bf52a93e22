import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buffer } from 'node:stream/consumers'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'
import { silentLogger } from '../src/log.ts'
import { startTestS3 } from './support/s3rver.ts'

// The same contract, run against both implementations: what the pipeline and the HTTP
// streaming rely on must hold for the filesystem and for a real S3 HTTP server.
async function contract(t: Test, store: ObjectStore) {
  await store.init()
  await store.ping()
  const body = Buffer.alloc(300_000)
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251

  t.equal(await store.stat('calls/2026/11/23/missing.opus'), null, 'stat of a missing object is null')

  const key = 'calls/2026/11/23/abc-123.opus'
  await store.put(key, Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), body.length, { 'call-uuid': 'abc', sha256: 'f'.repeat(64) }, 'audio/ogg')
  const info = await store.stat(key)
  t.ok(info, 'object exists after put')
  t.equal(info!.size, body.length, 'size')
  t.equal(info!.metadata['call-uuid'], 'abc', 'metadata round-trips')
  t.equal(info!.metadata['sha256'], 'f'.repeat(64))
  t.match(info!.etag, /^".+"$/, 'etag is quoted')

  t.same(await buffer(await store.get(key)), body, 'whole object reads back byte for byte')
  t.same(await buffer(await store.get(key, { start: 1000, end: 1999 })), body.subarray(1000, 2000), 'inclusive range')
  t.same(await buffer(await store.get(key, { start: body.length - 10, end: body.length - 1 })), body.subarray(body.length - 10), 'tail range')

  await t.rejects(store.put('../etc/passwd', Readable.from([Buffer.from('x')]), 1, {}, 'text/plain'), 'path-like keys refused')

  await store.delete(key)
  t.equal(await store.stat(key), null, 'gone after delete')
}

t.test('filesystem store', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-fs-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsObjectStore(dir)
  await contract(t, store)
  t.equal(await store.presignedGetUrl(), null, 'no presigned URLs on a filesystem')
  t.equal(await store.setLegalHold(), false, 'object lock not supported, reported as such')
  await t.rejects(store.put('calls/short.opus', Readable.from([Buffer.from('abc')]), 10, {}, 'audio/ogg'), /size mismatch/, 'a short body is refused')
  t.equal(await store.stat('calls/short.opus'), null, 'and leaves no object behind')

  // A temporary file left by a killed upload is cleaned at the next start; a fresh one is not.
  const { writeFile, utimes, readdir } = await import('node:fs/promises')
  const stale = path.join(dir, '.tmp', 'killed-upload')
  const fresh = path.join(dir, '.tmp', 'running-upload')
  await writeFile(stale, 'x')
  await writeFile(fresh, 'y')
  const twoHoursAgo = new Date(Date.now() - 7_200_000)
  await utimes(stale, twoHoursAgo, twoHoursAgo)
  await new FsObjectStore(dir).init()
  t.same(await readdir(path.join(dir, '.tmp')), ['running-upload'], 'stale temporary upload removed, running one kept')
})

t.test('S3 store against s3rver', async (t) => {
  const s3 = await startTestS3()
  t.teardown(() => s3.close())
  const store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, silentLogger())
  await contract(t, store)
  const url = await store.presignedGetUrl('calls/x.opus', 60)
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/recordings\/calls\/x\.opus\?.*X-Amz-Signature=/, 'presigned URL')
  t.equal(await store.setLegalHold('calls/x.opus', true), false, 's3rver has no object lock: degrade, do not throw')
  await s3.stop()
  await t.rejects(store.ping(), 'ping fails while the server is down')
  await s3.start()
  await store.ping()
})
