import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ZipFile } from 'yazl'
import yauzl from 'yauzl'
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { startTestDatabase } from './support/db.ts'
import { accessApp, addRecording, bearer, makeTokens, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { verifyBundle } from '../src/recordings/access/bundle-verify.ts'

const run = promisify(execFile)
const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool)
const tokens = await makeTokens(db.pool)
const store = await tempFsStore()
const app = await accessApp(db.pool, store)
t.teardown(() => app.close())
const dir = await mkdtemp(path.join(tmpdir(), 'sb-export-'))
const CLI = path.resolve('src/recordings/verify-bundle-cli.ts')

async function cli(file: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', CLI, file], { cwd: path.resolve('.') })
    return { code: 0, out: r.stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, out: e.stdout + e.stderr }
  }
}

async function readZip(file: string): Promise<Map<string, Buffer>> {
  const zip = await yauzl.openPromise(file)
  const out = new Map<string, Buffer>()
  for await (const e of zip.eachEntry()) {
    const chunks: Buffer[] = []
    for await (const c of await zip.openReadStreamPromise(e)) chunks.push(c as Buffer)
    out.set(e.fileName, Buffer.concat(chunks))
  }
  zip.close()
  return out
}

async function writeZip(file: string, entries: Map<string, Buffer>): Promise<void> {
  const z = new ZipFile()
  for (const [name, buf] of entries) z.addBuffer(buf, name)
  z.end()
  await pipeline(z.outputStream, createWriteStream(file))
}

// one call with two legs recorded (agent + transfer), another call, and a case spanning both
const callUuid = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
const a = await addRecording(db.pool, store, { callUuid, size: 50_000, ext: 'opus' })
const b = await addRecording(db.pool, store, { callUuid, size: 70_000, ext: 'mp3', agentId: 'a2' })
const other = await addRecording(db.pool, store, { clientId: 'c2', size: 30_000 })
await app.inject({ method: 'GET', url: `/api/recordings/${a.id}/audio`, headers: bearer(tokens.qa) }) // a play entry to show up in audit.json

t.test('export of a call: streamed zip that verifies offline', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.legal), payload: { callUuid } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/zip')
  t.match(res.headers['content-disposition'], /^attachment; filename="switchboard-export-6f1b2c3d-.*\.zip"$/)
  const file = path.join(dir, 'call.zip')
  await writeFile(file, res.rawPayload)
  const files = await readZip(file)
  t.same([...files.keys()].sort(), [`audio/${a.id}.opus`, `audio/${b.id}.mp3`, 'audit.json', 'manifest.sha256', 'metadata.json'].sort())
  t.ok(files.get(`audio/${a.id}.opus`)!.equals(a.body), 'audio byte for byte')
  t.ok(files.get(`audio/${b.id}.mp3`)!.equals(b.body))
  t.match(files.get('manifest.sha256')!.toString(), new RegExp(`^${a.sha256}  audio/${a.id}\\.opus$`, 'm'))
  const meta = JSON.parse(files.get('metadata.json')!.toString())
  t.equal(meta.recordings.length, 2)
  t.ok(meta.recordings.every((r: { hashMatches: boolean }) => r.hashMatches))
  t.equal(meta.calls[0].uuid, callUuid)
  const auditJson = JSON.parse(files.get('audit.json')!.toString())
  const actions = auditJson.entries.map((e: { action: string; recordingId: string }) => `${e.action}:${e.recordingId === a.id ? 'a' : 'b'}`)
  t.ok(actions.includes('play:a'))
  t.ok(actions.includes('export:a') && actions.includes('export:b'))
  t.match(auditJson.bundleEntry, { action: 'export.bundle', actor: 'u-legal' })

  t.match(await verifyBundle(file), { ok: true, problems: [] })
  const ok = await cli(file)
  t.equal(ok.code, 0, ok.out)
  t.match(ok.out, /verified/)
})

t.test('a tampered bundle fails verify-bundle', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.admin), payload: { callUuid } })
  const file = path.join(dir, 'orig.zip')
  await writeFile(file, res.rawPayload)
  const files = await readZip(file)

  const flipped = new Map(files)
  const audio = Buffer.from(files.get(`audio/${b.id}.mp3`)!)
  audio[1234] ^= 0x01
  flipped.set(`audio/${b.id}.mp3`, audio)
  await writeZip(path.join(dir, 'flipped.zip'), flipped)
  const r1 = await cli(path.join(dir, 'flipped.zip'))
  t.equal(r1.code, 1, 'one flipped bit in audio → exit 1')
  t.match(r1.out, new RegExp(`FAILED\\s+audio/${b.id}\\.mp3`))

  // rewriting the manifest too is caught by the hash Switchboard recorded at storage time (metadata.json)
  const forged = new Map(flipped)
  const { createHash } = await import('node:crypto')
  forged.set('manifest.sha256', Buffer.from(files.get('manifest.sha256')!.toString().replace(b.sha256, createHash('sha256').update(audio).digest('hex'))))
  await writeZip(path.join(dir, 'forged.zip'), forged)
  const r2 = await cli(path.join(dir, 'forged.zip'))
  t.equal(r2.code, 1)
  t.match(r2.out, /does not match the SHA-256 recorded at storage/)

  const editedAudit = new Map(files)
  editedAudit.set('audit.json', Buffer.from(files.get('audit.json')!.toString().replace('"u-qa"', '"u-nobody"')))
  await writeZip(path.join(dir, 'audit.zip'), editedAudit)
  const v3 = await verifyBundle(path.join(dir, 'audit.zip'))
  t.equal(v3.ok, false)
  t.ok(v3.problems.some((p) => /audit\.json: sha256/.test(p)))
  t.ok(v3.problems.some((p) => /audit entry \d+ does not match its hash/.test(p)), 'the entry itself no longer matches its chain hash')

  const dropped = new Map(files)
  dropped.delete(`audio/${a.id}.opus`)
  dropped.set('extra.txt', Buffer.from('smuggled'))
  await writeZip(path.join(dir, 'dropped.zip'), dropped)
  const v4 = await verifyBundle(path.join(dir, 'dropped.zip'))
  t.ok(v4.problems.some((p) => p.includes('listed in the manifest but missing')))
  t.ok(v4.problems.some((p) => p.includes('extra.txt is not listed')))

  await writeFile(path.join(dir, 'garbage.zip'), 'not a zip at all')
  t.equal((await cli(path.join(dir, 'garbage.zip'))).code, 2, 'unreadable → exit 2')
  t.equal((await cli('')).code, 2, 'usage → exit 2')
})

t.test('export of a legal case collects every held recording', async (t) => {
  await app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens.legal), payload: { scope: 'call', id: callUuid, reason: 'r', caseRef: 'CASE-9' } })
  await app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens.legal), payload: { scope: 'recording', id: other.id, reason: 'r', caseRef: 'CASE-9' } })
  await db.pool.query(`UPDATE recordings SET state = 'deleted' WHERE id = $1`, [b.id]) // audio gone: listed in metadata without a file
  const res = await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.legal), payload: { caseRef: 'CASE-9' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-recording-count'], '3')
  const file = path.join(dir, 'case.zip')
  await writeFile(file, res.rawPayload)
  const files = await readZip(file)
  t.ok(files.has(`audio/${a.id}.opus`) && files.has(`audio/${other.id}.opus`) && !files.has(`audio/${b.id}.mp3`))
  const meta = JSON.parse(files.get('metadata.json')!.toString())
  t.match(meta.recordings.find((r: { id: string }) => r.id === b.id), { file: null, note: 'no audio (state deleted)' })
  t.equal(meta.legalHolds.length, 2)
  t.equal((await cli(file)).code, 0)
  t.equal((await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.legal), payload: { caseRef: 'NO-SUCH-CASE' } })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.legal), payload: { callUuid: 'x', caseRef: 'y' } })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/api/exports', headers: bearer(tokens.qa), payload: { caseRef: 'CASE-9' } })).statusCode, 403)
})
