import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'

// Seed 000: client → own manager (30 s) → free colleague of the group → supervisor.
// Monday 2026-11-23 12:00 Moscow time: the Moscow office is open.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна (менеджер)', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис (коллега)', role: 'manager', groupId: 'sales-1', extension: '1002' },
  { id: 'emp-sup-1', name: 'Вера (руководитель)', role: 'supervisor', groupId: 'sales-1', extension: '1090' },
  { id: 'absent-1', name: 'Глеб (нет на месте)', role: 'manager', groupId: 'sales-1', extension: '1003' },
]
const clients: ClientInput[] = [
  { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1', phones: ['+74951234567'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())

async function callRow(uuid: string) {
  const r = await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])
  return r.rows[0]
}

t.test('known client: manager and colleague do not answer, the supervisor does; recorded, linked, CDR written', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1', 'col-1', 'emp-sup-1'], at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '84951234567', destination: '+74951230000', source: 'sofia',
    bridgeTargets: {
      'user/1001': { noAnswer: true },
      'user/1002': { noAnswer: true },
      'user/1090': { answerAfterMs: 2000, hangupAfterMs: 20_000 },
    },
  })
  const result = await call.done
  const bridges = result.commands.filter((c) => c.headers['execute-app-name'] === 'bridge').map((c) => c.headers['execute-app-arg'])
  t.equal(bridges.length, 3, 'three targets rung in turn')
  t.match(bridges[0], /originate_timeout=30\b.*user\/1001$/, 'own manager first, for 30 s')
  t.match(bridges[1], /user\/1002$/, 'then a colleague of the same group')
  t.match(bridges[2], /user\/1090$/, 'then the supervisor')
  t.notOk(bridges.some((b) => b.includes('user/1003')), 'the absent colleague is never rung (seed 003)')

  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.client_id, 'c-romashka', 'call linked to the client card')
  t.equal(cdr.agent_id, 'emp-sup-1', 'handled by the supervisor')
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.direction, 'inbound')
  t.equal(cdr.source_tag, 'site-main', 'DID → call-tracking source')
  t.equal(cdr.caller, '+74951234567', 'caller normalised to E.164')
  t.equal(cdr.counted, true, 'a 20 s conversation counts')
  t.ok(cdr.hangup_cause, 'hangup cause recorded')
  t.match(cdr.route_reasons.join(' '), /manager/i, 'route reasons kept')
  const legs = await db.pool.query('SELECT party, employee_id, answered_at, hangup_cause FROM legs WHERE call_uuid = $1 ORDER BY started_at', [call.uuid])
  t.same(legs.rows.map((l) => [l.party, l.employee_id, l.answered_at !== null]), [
    ['caller', null, true], ['manager', 'mgr-1', false], ['colleague', 'col-1', false], ['supervisor', 'emp-sup-1', true],
  ], 'one leg row per party, with who answered')

  // Two files: the caller's leg from answer (ringing included), and the conversation with the supervisor.
  const recs = await waitFor('recordings stored', async () => {
    const r = await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored' ORDER BY duration_ms DESC`, [call.uuid])
    return r.rowCount === 2 && r.rows
  }, 30_000)
  const [whole, conversation] = recs
  t.equal(whole.leg_uuid, call.uuid, 'the call recording is the caller leg')
  t.not(conversation.leg_uuid, call.uuid, 'the conversation recording is the supervisor leg')
  const supervisorLeg = legs.rows.find((l) => l.employee_id === 'emp-sup-1')
  t.ok(supervisorLeg, 'supervisor leg exists')
  for (const rec of recs) {
    t.equal(rec.client_id, 'c-romashka', 'recording on the client card')
    t.equal(rec.agent_id, 'emp-sup-1', 'and on the agent who talked')
    t.equal(rec.channels, 2, 'stereo')
    t.ok(await h.store.stat(rec.object_key), 'object in the store')
  }
  t.ok(conversation.duration_ms < whole.duration_ms, 'the conversation is part of the call')
  t.ok(conversation.duration_ms > 15_000 && conversation.duration_ms < 25_000, `conversation ≈ 20 s of virtual time (${conversation.duration_ms} ms)`)

  t.equal(h.presence.get('mgr-1'), 'not_ready', 'a manager who let it ring out is set not ready')
  t.equal(h.presence.get('emp-sup-1'), 'wrap_up', 'the supervisor is in after-call work')
})

t.test('caller hangs up while the manager rings: abandoned, callback task, CDR still written', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1'], at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '74951234567', destination: '+74951230000', hangupAtMs: 5_000, bridgeTargets: { 'user/1001': { noAnswer: true } } })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.counted, true)
  t.not(cdr.outcome, 'answered')
  t.equal(cdr.agent_id, null)
})

t.test('after hours: message, missed call, callback task', async (t) => {
  // Sunday 23:00 Moscow: every office in the example except the 24/7 one is closed; the DID's office is Moscow.
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1'], at: '2026-11-22T20:00:00Z', configure: (c) => { c.routing.afterHours.openOfficeFallback = false; delete c.routing.afterHours.holidayQueue } })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '79161112233', destination: '+74951230000' })
  const result = await call.done
  t.ok(result.commands.some((c) => c.headers['execute-app-name'] === 'playback'), 'after-hours message played')
  t.notOk(result.commands.some((c) => c.headers['execute-app-name'] === 'bridge'), 'nobody rung')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'after_hours')
  const cb = await db.pool.query(`SELECT * FROM callbacks WHERE phone = '+79161112233'`)
  t.equal(cb.rowCount, 1, 'callback task created')
  t.equal(cb.rows[0].reason, 'after_hours')
})

t.test('a conversation under 15 s is stored but not counted (seed 000)', async (t) => {
  // Talk time is measured on the simulator's clock; at 1/10 speed scheduling jitter stays well under a second.
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1'], at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  // The manager hangs up after 8 s; the caller stays for the survey and presses 9 (seed 002).
  const call = h.sim.call({
    callerIdNumber: '74951234567', destination: '+74951230000',
    bridgeTargets: { 'user/1001': { answerAfterMs: 3000, hangupAfterMs: 8000 } }, dtmf: [{ atMs: 14_000, digits: '9#' }],
  })
  const result = await call.done
  t.ok(result.commands.some((c) => c.headers['execute-app-arg']?.includes('csat.wav')), 'CSAT prompt played after the agent hung up')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.csat, 9, 'CSAT score stored on the call')
  t.equal(cdr.agent_id, 'mgr-1', 'the own manager answered')
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.counted, false, '8 s of talk: not counted')
  const rec = await waitFor('recording stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])).rows[0], 30_000)
  t.ok(rec, 'but the recording is stored')
})

t.test('the caller hangs up during the conversation: answered, attributed, agent released', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1'], at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '74951234567', destination: '+74951230000', hangupAtMs: 25_000, bridgeTargets: { 'user/1001': { answerAfterMs: 2000 } } })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'answered', 'a conversation the caller ended is still an answered call')
  t.equal(cdr.agent_id, 'mgr-1', 'attributed to the manager')
  t.equal(cdr.counted, true, '~23 s of talk counts')
  t.equal(h.presence.get('mgr-1'), 'wrap_up', 'the manager is not left claimed on_call')
  const rec = await waitFor('conversation recording', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored' AND leg_uuid <> $1`, [call.uuid])).rows[0], 30_000)
  t.equal(rec.agent_id, 'mgr-1', 'the conversation recording is stored and attributed')
})
