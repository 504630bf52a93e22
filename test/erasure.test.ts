// Issue 14: right to erasure — the dry run reports exactly what the real run deletes;
// recordings under legal hold survive and are listed with the hold's reason; the audit
// chain gets a tombstone without personal data; 404 for an unknown client, 403 for a
// wrong role.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { addRecording, bearer, makeTokens, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { silentLogger } from '../src/log.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { erasureRoutes } from '../src/http/plugins/erasure.ts'
import { recordingsRoutes } from '../src/http/plugins/recordings.ts'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'
import type { ErasureResult } from '../src/privacy/erasure.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool) // c1 Acme Trading (+74951234567, +74957654321), c2, c3
const tokens = await makeTokens(db.pool)
const store = await tempFsStore()
const log = silentLogger()
const app = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [erasureRoutes({ pool: db.pool, store, log }), recordingsRoutes({ pool: db.pool, store, log })] })
t.teardown(() => app.close())

await db.pool.query(`UPDATE clients SET attributes = '{"email": "buyer@acme.example", "contact": "Ivan Petrov"}' WHERE id = 'c1'`)
// c1: two plain recordings, one held by recording, one held through its call, one already swept by retention
const plain1 = await addRecording(db.pool, store, { clientId: 'c1', caller: '+74951234567', size: 5000 })
const plain2 = await addRecording(db.pool, store, { clientId: 'c1', direction: 'outbound', caller: '7101', callee: '+74957654321', size: 7000 })
const heldRec = await addRecording(db.pool, store, { clientId: 'c1', size: 3000 })
const heldCall = await addRecording(db.pool, store, { clientId: 'c1', size: 2000 })
const swept = await addRecording(db.pool, store, { clientId: 'c1', state: 'deleted', withObject: false, size: 1000 })
// other clients' data must not be touched
const other = await addRecording(db.pool, store, { clientId: 'c2', caller: '+78121112233' })
await db.pool.query(`INSERT INTO callbacks (client_id, phone, reason) VALUES ('c1', '+74951234567', 'abandoned'), ('c2', '+78121112233', 'abandoned')`)
// a call from one of c1's numbers before the number was on the card
const unlinked = randomUUID()
await db.pool.query(`INSERT INTO calls (uuid, direction, caller, callee, started_at, outcome) VALUES ($1, 'inbound', '+74957654321', '7101', now(), 'missed')`, [unlinked])

// outbox events: about c1, from one of c1's numbers before it was known, about c2
for (const data of [{ client: { id: 'c1' }, call: { caller: '+74951234567' } }, { client: null, call: { caller: '+74957654321' } }, { client: { id: 'c2' }, call: { caller: '+78121112233' } }]) {
  await db.pool.query(`INSERT INTO webhook_events (id, type, occurred_at, data) VALUES ($1, 'call.started', now(), $2)`, [randomUUID(), JSON.stringify(data)])
}

const hold = async (scope: string, id: string, reason: string, caseRef: string) => {
  const r = await app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens.legal), payload: { scope, id, reason, caseRef } })
  if (r.statusCode !== 201) throw new Error(`hold: ${r.statusCode} ${r.body}`)
  return r.json<{ id: number }>().id
}
const hold1 = await hold('recording', heldRec.id, 'complaint about a promise made on the phone', 'CASE-17')
const hold2 = await hold('call', heldCall.callUuid, 'tax audit', 'TAX-2026-3')

const erase = (id: string, dryRun: boolean | undefined, role: keyof typeof tokens = 'legal') =>
  app.inject({ method: 'POST', url: `/api/clients/${id}/erasure${dryRun === undefined ? '' : `?dryRun=${dryRun}`}`, headers: bearer(tokens[role]) })
const exists = async (key: string) => (await store.stat(key)) !== null

t.test('unknown client → 404, wrong role → 403, no token → 401', async (t) => {
  t.equal((await erase('nobody', true)).statusCode, 404)
  t.equal((await erase('nobody', false, 'admin')).statusCode, 404)
  for (const role of ['agent', 'qa', 'supervisor'] as const) t.equal((await erase('c1', false, role)).statusCode, 403, role)
  t.equal((await app.inject({ method: 'POST', url: '/api/clients/c1/erasure?dryRun=false' })).statusCode, 401)
  t.ok(await exists(plain1.key), 'nothing happened')
})

let preview: ErasureResult
t.test('dry run (the default) reports recordings, objects, bytes, phones, card fields and held items, deletes nothing', async (t) => {
  const res = await erase('c1', undefined)
  t.equal(res.statusCode, 200)
  preview = res.json<ErasureResult>()
  t.equal(preview.dryRun, true)
  const p = preview.plan
  t.same(p.recordings.delete.map((r) => r.id).sort(), [plain1.id, plain2.id, swept.id].sort())
  t.same(p.recordings.delete.filter((r) => r.objectKey).map((r) => r.objectKey).sort(), [plain1.key, plain2.key].sort(), 'object keys (the swept one has none)')
  t.equal(p.totals.bytes, 12_000, 'bytes of the objects to delete')
  t.same(p.phones, ['+74951234567', '+74957654321'])
  t.same(p.client.fields, ['name', 'inn', 'segment', 'region', 'assignedManagerId', 'attributes.contact', 'attributes.email'])
  t.equal(p.client.action, 'anonymise', 'held recordings still point at the client: the row stays as an id')
  const retained = Object.fromEntries(p.recordings.retained.map((r) => [r.id, r]))
  t.same(Object.keys(retained).sort(), [heldRec.id, heldCall.id].sort())
  t.same(retained[heldRec.id].holds, [{ holdId: hold1, scope: 'recording', reason: 'complaint about a promise made on the phone', caseRef: 'CASE-17' }])
  t.same(retained[heldCall.id].holds, [{ holdId: hold2, scope: 'call', reason: 'tax audit', caseRef: 'TAX-2026-3' }])
  t.equal(p.callbacks.deleted, 1)
  t.equal(p.webhookEvents.deleted, 2, 'outbox events about the client or from its numbers')
  t.equal(p.calls.anonymised, 4, "c1's calls without held recordings, plus the unlinked call from c1's number")
  for (const r of [plain1, plain2, heldRec, heldCall]) t.ok(await exists(r.key), 'object still there')
  t.equal((await db.pool.query(`SELECT 1 FROM client_phones WHERE client_id = 'c1'`)).rowCount, 2, 'phones still there')
})

t.test('the real run deletes exactly what the dry run reported; held items survive', async (t) => {
  const res = await erase('c1', false, 'admin')
  t.equal(res.statusCode, 200)
  const done = res.json<ErasureResult>()
  t.equal(done.dryRun, false)
  t.same(done.plan, preview.plan, 'dry run = actual deletion')
  t.notOk(await exists(plain1.key), 'object deleted')
  t.notOk(await exists(plain2.key), 'object deleted')
  t.ok(await exists(heldRec.key), 'held by recording: kept')
  t.ok(await exists(heldCall.key), 'held by call: kept')
  t.ok(await exists(other.key), "another client's recording untouched")
  const rows = (await db.pool.query<{ id: string }>('SELECT id FROM recordings WHERE id = ANY($1::uuid[])', [[plain1.id, plain2.id, swept.id, heldRec.id, heldCall.id, other.id]])).rows.map((r) => r.id)
  t.same(rows.sort(), [heldRec.id, heldCall.id, other.id].sort(), 'deleted recordings have no row any more')
  t.equal((await db.pool.query(`SELECT 1 FROM client_phones WHERE client_id = 'c1'`)).rowCount, 0, 'phone numbers gone')
  const c = (await db.pool.query(`SELECT name, inn, segment, region, assigned_manager_id, attributes, erased_at FROM clients WHERE id = 'c1'`)).rows[0]
  t.same({ ...c, erased_at: undefined }, { name: '[erased]', inn: null, segment: null, region: null, assigned_manager_id: null, attributes: {}, erased_at: undefined }, 'card data erased')
  t.ok(c.erased_at, 'marked erased')
  const nums = (await db.pool.query(`SELECT count(*)::int AS n FROM calls WHERE caller = ANY($1) OR callee = ANY($1)`, [['+74951234567', '+74957654321']])).rows[0].n
  t.equal(nums, 2, 'only the two calls with held recordings keep their numbers (the recordings are evidence)')
  t.equal((await db.pool.query(`SELECT 1 FROM callbacks WHERE client_id = 'c1' OR phone = '+74951234567'`)).rowCount, 0)
  t.equal((await db.pool.query(`SELECT 1 FROM callbacks WHERE client_id = 'c2'`)).rowCount, 1, "another client's callback stays")
  t.same((await db.pool.query(`SELECT data #>> '{client,id}' AS c FROM webhook_events`)).rows, [{ c: 'c2' }], "only another client's outbox event stays")

  const tomb = (await db.pool.query(`SELECT actor, subject, details FROM audit_log WHERE action = 'erasure'`)).rows
  t.equal(tomb.length, 1)
  t.equal(tomb[0].actor, 'u-admin')
  t.equal(tomb[0].subject, 'client:c1')
  t.match(tomb[0].details, { recordingsDeleted: 3, objectsDeleted: 2, bytesDeleted: 12_000, phones: 2, cardFields: 7, recordingsRetained: 2, retainedUnderHold: 2, holdIds: [hold1, hold2].sort((a, b) => a - b) })
  const text = JSON.stringify(tomb[0])
  for (const personal of ['Acme', '7701234567', '+7495', 'buyer@', 'Ivan', plain1.key]) t.notMatch(text, personal, `no ${personal} in the tombstone`)
  t.equal((await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'recording.erased'`)).rowCount, 3, 'one entry per erased recording')
  t.ok((await verifyAuditChain(db.pool)).ok, 'the chain still verifies')

  const again = (await erase('c1', true)).json<ErasureResult>()
  t.equal(again.plan.totals.recordings, 0, 'a second request finds nothing left to delete')
  t.equal(again.plan.totals.retainedRecordings, 2, 'but still lists what is held')
})

t.test('a client with nothing held is deleted outright; its calls stay for statistics without number or client', async (t) => {
  const r = await addRecording(db.pool, store, { clientId: 'c3', caller: '+73831112233' })
  const dry = (await erase('c3', true)).json<ErasureResult>()
  t.equal(dry.plan.client.action, 'delete')
  const done = (await erase('c3', false)).json<ErasureResult>()
  t.same(done.plan, dry.plan)
  t.equal((await db.pool.query(`SELECT 1 FROM clients WHERE id = 'c3'`)).rowCount, 0)
  const call = (await db.pool.query('SELECT caller, client_id, outcome FROM calls WHERE uuid = $1', [r.callUuid])).rows[0]
  t.same(call, { caller: null, client_id: null, outcome: 'answered' })
  t.notOk(await exists(r.key))
  t.equal((await erase('c3', true)).statusCode, 404, 'gone')
})

t.test('a store that fails mid-erasure changes nothing in the database; recordings still being processed are kept and listed', async (t) => {
  // c2: one stored recording (from the setup) and one still transcoding
  const busy = await addRecording(db.pool, store, { clientId: 'c2', state: 'transcoding', withObject: false })
  class FailingStore extends FsObjectStore {
    failures = 1
    override async delete(key: string): Promise<void> {
      if (this.failures-- > 0) throw new Error('store unreachable')
      return super.delete(key)
    }
  }
  const flaky = new FailingStore((store as unknown as { root: string }).root)
  const app2 = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [erasureRoutes({ pool: db.pool, store: flaky, log })] })
  t.teardown(() => app2.close())
  const run = (dryRun: boolean) => app2.inject({ method: 'POST', url: `/api/clients/c2/erasure?dryRun=${dryRun}`, headers: bearer(tokens.admin) })
  const dry = (await run(true)).json<ErasureResult>()
  t.same(dry.plan.recordings.delete.map((r) => r.id), [other.id])
  t.same(dry.plan.recordings.retained.map((r) => ({ id: r.id, reason: r.reason })), [{ id: busy.id, reason: 'in_progress' }], 'still transcoding: kept, run again later')
  t.equal(dry.plan.client.action, 'anonymise')
  const failed = await run(false)
  t.equal(failed.statusCode, 503)
  t.equal(failed.json<{ code: string }>().code, 'erasure_failed')
  t.equal((await db.pool.query(`SELECT 1 FROM client_phones WHERE client_id = 'c2'`)).rowCount, 1, 'rolled back: the phone is still there')
  t.equal((await db.pool.query('SELECT 1 FROM recordings WHERE id = $1', [other.id])).rowCount, 1, 'and the recording row')
  const ok = await run(false)
  t.equal(ok.statusCode, 200, 'run again: done')
  t.same(ok.json<ErasureResult>().plan, dry.plan, 'the same plan as the dry run')
  t.notOk(await exists(other.key))
  t.equal((await db.pool.query('SELECT 1 FROM recordings WHERE id = $1', [busy.id])).rowCount, 1, 'the recording in progress is kept')
})
