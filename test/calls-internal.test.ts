// Issue 13: internal calls (extension → extension) go through Switchboard, are recorded
// per recording.recordInternal and never counted (seeds 000, 002).
import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { SimCallResult } from './support/fs-simulator.ts'
import type { Employee } from '../src/crm/directory.ts'

const AT = '2026-11-23T09:00:00Z'
const INTERNAL = { switchboard_direction: 'internal' }
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]

const db = await startTestDatabase()
t.teardown(() => db.close())

const callRow = async (uuid: string) => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0]
const apps = (r: SimCallResult, name: string) => r.commands.filter((c) => c.headers['execute-app-name'] === name).map((c) => c.headers['execute-app-arg'] ?? '')

t.test('1001 calls 1002: bridged to the desk phone, recorded, never counted however long', async (t) => {
  const h = await startCallHarness(db, { employees, clients: [], at: AT, timeScale: 0.05 })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '1001', destination: '1002', vars: INTERNAL,
    bridgeTargets: { 'user/1002': { answerAfterMs: 1000, hangupAfterMs: 40_000 } },
  })
  const result = await call.done
  const bridges = apps(result, 'bridge')
  t.equal(bridges.length, 1)
  t.match(bridges[0], /user\/1002$/, "the colleague's phone")
  t.notMatch(bridges[0], /origination_caller_id_number/, 'the colleague sees the extension, not a company number')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'internal')
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.counted, false, '40 s internal conversation: not counted (seeds 000, 002)')
  t.equal(cdr.agent_id, 'mgr-1', 'attributed to who called')
  t.equal(cdr.client_id, null)
  const legs = await db.pool.query(`SELECT party, employee_id, endpoint FROM legs WHERE call_uuid = $1 AND party <> 'caller'`, [call.uuid])
  t.same(legs.rows, [{ party: 'colleague', employee_id: 'col-1', endpoint: 'user/1002' }])
  const rec = await waitFor('recording stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])).rows[0], 30_000)
  t.equal(rec.agent_id, 'mgr-1')
  t.equal(rec.channels, 2)
  t.ok(rec.duration_ms > 35_000 && rec.duration_ms < 45_000, `recorded from the answer ≈ 40 s (${rec.duration_ms} ms)`)
})

t.test('an extension nobody has: UNALLOCATED_NUMBER', async (t) => {
  const h = await startCallHarness(db, { employees, clients: [], at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1001', destination: '1777', vars: INTERNAL })
  const result = await call.done
  t.equal(result.hangupCause, 'UNALLOCATED_NUMBER')
  t.same(apps(result, 'bridge'), [])
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'rejected')
  t.equal(cdr.counted, false)
})

t.test('recordInternal: false → the call is bridged and written, nothing recorded', async (t) => {
  const h = await startCallHarness(db, { employees, clients: [], at: AT, configure: (c) => { c.recording.recordInternal = false } })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1002', destination: '1001', vars: INTERNAL, bridgeTargets: { 'user/1001': { answerAfterMs: 100, hangupAfterMs: 2000 } } })
  const result = await call.done
  t.equal(result.recordings.length, 0, 'no file written')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.agent_id, 'col-1')
  const recs = await db.pool.query('SELECT count(*)::int AS n FROM recordings WHERE call_uuid = $1', [call.uuid])
  t.equal(recs.rows[0].n, 0)
})

t.test('a phone outside the directory may call a colleague; the call is attributed to nobody', async (t) => {
  const h = await startCallHarness(db, { employees, clients: [], at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1500', destination: '1001', vars: INTERNAL, bridgeTargets: { 'user/1001': { answerAfterMs: 100, hangupAfterMs: 2000 } } })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.agent_id, null)
  const rec = await waitFor('recording stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])).rows[0], 30_000)
  t.equal(rec.agent_id, 'mgr-1', 'the recording carries the colleague who answered')
})
