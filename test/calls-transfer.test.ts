import t from 'tap'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { callsRoutes } from '../src/http/plugins/calls.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { sha256Stream } from '../src/recordings/hash.ts'
import { silentLogger } from '../src/log.ts'
import type { Employee } from '../src/crm/directory.ts'

// Issue 8's three-leg call: IVR → agent → (blind) transfer to a colleague. Every leg is
// recorded: the caller's leg from answer (IVR included) and each conversation on its own.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'a1', name: 'Агент 1', role: 'agent', groupId: 'sales-1', extension: '1001' },
  { id: 'a2', name: 'Агент 2', role: 'agent', groupId: 'finance', extension: '1002' },
]
const db = await startTestDatabase()
t.teardown(() => db.close())

t.test('IVR → agent → transfer: three stored, linked, verifiable recordings, transfer over HTTP', async (t) => {
  const h = await startCallHarness(db, { employees, clients: [], ready: ['a1', 'a2'], at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [callsRoutes({ calls: h.service })] })
  t.teardown(() => app.close())
  const agentToken = await createApiToken(db.pool, { id: 'u-a1', name: 'Агент 1', role: 'agent', employeeId: 'a1' })
  const otherAgent = await createApiToken(db.pool, { id: 'u-a2', name: 'Агент 2', role: 'agent', employeeId: 'a2' })

  // An unknown caller on the billboard DID gets the main menu and presses 1 (sales).
  const call = h.sim.call({
    callerIdNumber: '79031112233', destination: '+74951230002', dtmf: [{ atMs: 300, digits: '1' }],
    bridgeTargets: { 'user/1001': { answerAfterMs: 1000 }, 'user/1002': { answerAfterMs: 1000, hangupAfterMs: 20_000 } },
  })
  await waitFor('a1 talking', async () => h.service.session(call.uuid)?.summary().connectedAt && h.service.session(call.uuid)?.summary().agentId === 'a1', 10_000, 20)
  await new Promise((r) => setTimeout(r, 500)) // ~5 s of conversation with a1

  const denied = await app.inject({ method: 'POST', url: `/api/calls/${call.uuid}/transfer`, headers: { authorization: `Bearer ${otherAgent}` }, payload: { employeeId: 'a2' } })
  t.equal(denied.statusCode, 403, 'an agent cannot transfer someone else\'s call')
  const toSelf = await app.inject({ method: 'POST', url: `/api/calls/${call.uuid}/transfer`, headers: { authorization: `Bearer ${agentToken}` }, payload: { employeeId: 'a1' } })
  t.equal(toSelf.statusCode, 409, 'transfer to oneself refused')
  const res = await app.inject({ method: 'POST', url: `/api/calls/${call.uuid}/transfer`, headers: { authorization: `Bearer ${agentToken}` }, payload: { employeeId: 'a2' } })
  t.equal(res.statusCode, 202, res.body)
  await call.done

  const cdr = await waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [call.uuid])).rows[0])
  t.same(cdr.ivr_path.map((s: { digit: string | null; label: string }) => [s.digit, s.label]), [['1', 'Новый заказ']], 'IVR path kept')
  t.equal(cdr.agent_id, 'a2', 'the colleague finally handled the call')
  const legs = await db.pool.query('SELECT uuid, party, employee_id FROM legs WHERE call_uuid = $1 ORDER BY started_at', [call.uuid])
  t.same(legs.rows.map((l) => [l.party, l.employee_id]), [['caller', null], ['colleague', 'a1'], ['transfer', 'a2']], 'a leg row per party')

  const recs = await waitFor('three recordings stored', async () => {
    const r = await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored' ORDER BY created_at`, [call.uuid])
    return r.rowCount === 3 && r.rows
  }, 60_000)
  const [whole, first, second] = recs
  t.equal(whole.leg_uuid, call.uuid, 'the caller leg from answer, IVR included')
  t.equal(first.agent_id, 'a1', 'first conversation: agent 1')
  t.equal(second.agent_id, 'a2', 'second conversation: the colleague')
  t.equal(first.leg_uuid, legs.rows[1].uuid, 'linked to agent 1\'s leg')
  t.equal(second.leg_uuid, legs.rows[2].uuid, 'linked to the colleague\'s leg')
  t.ok(whole.duration_ms > first.duration_ms + second.duration_ms - 1000, 'the caller leg spans both conversations')
  for (const rec of recs) {
    const actual = await sha256Stream(await h.store.get(rec.object_key))
    t.equal(actual, rec.sha256, `recording ${rec.id} verifies against its SHA-256`)
    t.equal(rec.channels, 2, 'stereo')
  }
})
