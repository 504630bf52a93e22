import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startTestS3 } from './support/s3rver.ts'
import { addRecording, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { sweep, RetentionSweeperRunner, SWEEPER_ACTOR } from '../src/recordings/access/retention-sweeper.ts'
import { placeHold, liftHold } from '../src/recordings/access/legal-hold.ts'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import { silentLogger } from '../src/log.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool)
const log = silentLogger()
const s3 = await startTestS3()
t.teardown(() => s3.close())
const s3store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, log)
await s3store.init()
const stores: Array<[string, ObjectStore]> = [['filesystem', await tempFsStore()], ['s3rver', s3store]]
const now = new Date('2026-06-01T00:00:00Z')
const expired = new Date('2026-01-01T00:00:00Z')

for (const [name, store] of stores) {
  t.test(`sweep deletes expired audio, keeps metadata, honours holds (${name})`, async (t) => {
    await db.pool.query(`UPDATE recordings SET state = 'failed' WHERE state = 'stored'`) // isolate from the previous store's rows
    const deps = { pool: db.pool, store, log }
    const old1 = await addRecording(db.pool, store, { retentionUntil: expired, clientId: 'c2' })
    const old2 = await addRecording(db.pool, store, { retentionUntil: expired, clientId: 'c3' })
    const heldRec = await addRecording(db.pool, store, { retentionUntil: expired, clientId: 'c1' })
    const heldByCall = await addRecording(db.pool, store, { retentionUntil: expired, clientId: 'c3' })
    const fresh = await addRecording(db.pool, store, { retentionUntil: new Date('2027-01-01T00:00:00Z') })
    const hold = await placeHold(deps, { scope: 'client', id: 'c1', reason: 'litigation', caseRef: `CASE-${name}`, actor: 'u-legal' })
    await placeHold(deps, { scope: 'call', id: heldByCall.callUuid, reason: 'complaint', caseRef: `CASE2-${name}`, actor: 'u-legal' })

    const preview = await sweep(deps, { dryRun: true, now })
    t.same(preview.candidates.map((c) => c.id).sort(), [old1.id, old2.id].sort(), 'dry run lists only expired, unheld, stored')
    t.same(preview.deleted, [])
    t.ok(await store.stat(old1.key), 'dry run deletes nothing')

    const report = await sweep(deps, { now })
    t.same(report.deleted.sort(), [old1.id, old2.id].sort())
    t.equal(report.bytes, old1.body.length + old2.body.length)
    for (const r of [old1, old2]) {
      t.equal(await store.stat(r.key), null, 'audio gone')
      const row = (await db.pool.query('SELECT state, sha256, object_key, duration_ms FROM recordings WHERE id = $1', [r.id])).rows[0]
      t.match(row, { state: 'deleted', sha256: r.sha256, object_key: r.key, duration_ms: 60_000 }, 'metadata kept')
    }
    for (const r of [heldRec, heldByCall, fresh]) t.ok(await store.stat(r.key), 'held / unexpired audio kept')
    const entries = (await db.pool.query(`SELECT recording_id, actor FROM audit_log WHERE action = 'retention.delete' AND recording_id = ANY($1::uuid[])`, [[old1.id, old2.id]])).rows
    t.equal(entries.length, 2, 'one audit entry per deletion')
    t.ok(entries.every((e) => e.actor === SWEEPER_ACTOR))

    t.same((await sweep(deps, { now })).deleted, [], 'idempotent')

    // lifting the client hold releases heldRec; the call hold still protects the other
    await liftHold(deps, { holdId: hold.id, reason: 'settled', actor: 'u-legal' })
    t.same((await sweep(deps, { now })).deleted, [heldRec.id])
    t.ok(await store.stat(heldByCall.key))
    t.match(await verifyAuditChain(db.pool), { ok: true })
  })
}

t.test('a hold placed while the sweeper holds the row wins or waits; limit bounds a run', async (t) => {
  const store = stores[0][1]
  const deps = { pool: db.pool, store, log }
  await db.pool.query(`UPDATE recordings SET state = 'failed' WHERE state = 'stored'`)
  const recs = []
  for (let i = 0; i < 5; i++) recs.push(await addRecording(db.pool, store, { retentionUntil: new Date(expired.getTime() + i * 1000), clientId: null }))
  const first = await sweep(deps, { now, limit: 2 })
  t.same(first.deleted, [recs[0].id, recs[1].id], 'oldest retention first, bounded by limit')
  // a row locked by someone else (a hold being placed) is skipped, not waited on
  const c = await db.pool.connect()
  await c.query('BEGIN')
  await c.query('SELECT 1 FROM recordings WHERE id = $1 FOR UPDATE', [recs[2].id])
  const second = await sweep(deps, { now, limit: 10 })
  t.same(second.skipped, [{ id: recs[2].id, reason: 'locked' }])
  t.same(second.deleted, [recs[3].id, recs[4].id])
  await c.query(`UPDATE recordings SET legal_hold = true WHERE id = $1`, [recs[2].id])
  await c.query('COMMIT')
  c.release()
  t.same((await sweep(deps, { now })).deleted, [], 'held meanwhile: kept')
  t.ok(await store.stat(recs[2].key))
})

t.test('runner: periodic sweeps, start/stop', async (t) => {
  const store = stores[0][1]
  const deps = { pool: db.pool, store, log }
  await db.pool.query(`UPDATE recordings SET state = 'failed' WHERE state = 'stored'`)
  const r = await addRecording(db.pool, store, { retentionUntil: new Date(Date.now() - 1000), clientId: null })
  const runner = new RetentionSweeperRunner(deps, { intervalSec: 0.2 })
  runner.start()
  const until = Date.now() + 10_000
  while (Date.now() < until && (await db.pool.query('SELECT state FROM recordings WHERE id = $1', [r.id])).rows[0].state !== 'deleted') await new Promise((res) => setTimeout(res, 50))
  await runner.stop()
  t.equal((await db.pool.query('SELECT state FROM recordings WHERE id = $1', [r.id])).rows[0].state, 'deleted')
  const r2 = await addRecording(db.pool, store, { retentionUntil: new Date(Date.now() - 1000), clientId: null })
  await new Promise((res) => setTimeout(res, 600))
  t.equal((await db.pool.query('SELECT state FROM recordings WHERE id = $1', [r2.id])).rows[0].state, 'stored', 'stopped runner does nothing')
  t.same((await runner.runOnce()).deleted, [r2.id])
})
