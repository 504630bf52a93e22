// Issue 13: desk-phone outbound calls go through Switchboard — employee by extension,
// E.164, caller id by the callee's region (seed 001), client card, recording, CDR.
import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { SimCallResult } from './support/fs-simulator.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'

const AT = '2026-11-23T09:00:00Z'
const OUTBOUND = { switchboard_direction: 'outbound' }
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'mgr-2', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]
const clients: ClientInput[] = [
  { id: 'c-nsk', name: 'ООО Сибирь', segment: 'B', kind: 'client', region: 'Новосибирск', assignedManagerId: 'mgr-1', phones: ['+73832123456'] },
  { id: 'c-nsk-mobile', name: 'ИП Новосибирец', segment: 'C', kind: 'client', region: 'Новосибирск', phones: ['+79131234567'] },
  { id: 'c-ekb', name: 'ООО Урал', segment: 'A', kind: 'client', region: 'Екатеринбург', phones: ['+73432223344'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())

const callRow = async (uuid: string) => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0]
const apps = (r: SimCallResult, name: string) => r.commands.filter((c) => c.headers['execute-app-name'] === name).map((c) => c.headers['execute-app-arg'] ?? '')

t.test('outbound to a Novosibirsk client: E.164, Novosibirsk caller id, client card, stereo recording, CDR', async (t) => {
  // 1/10 speed: talk time is measured on the simulator's clock.
  const h = await startCallHarness(db, { employees, clients, at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '1001', destination: '8 (383) 212-34-56', context: 'default', vars: OUTBOUND,
    bridgeTargets: { 'sofia/gateway/trunk/+73832123456': { answerAfterMs: 2000, hangupAfterMs: 20_000 } },
  })
  const result = await call.done
  const bridges = apps(result, 'bridge')
  t.equal(bridges.length, 1, 'one bridge out')
  t.match(bridges[0], /sofia\/gateway\/trunk\/\+73832123456$/, 'dialled in E.164 through the outbound trunk')
  t.match(bridges[0], /origination_caller_id_number=\+73832000000\b/, 'Novosibirsk number presented to a Novosibirsk callee (seed 001)')
  t.match(bridges[0], /switchboard_direction=outbound/)
  t.same(apps(result, 'answer'), [], 'the desk phone is not answered by Switchboard: it hears the far end ring')

  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'outbound')
  t.equal(cdr.agent_id, 'mgr-1', 'the employee who dialled')
  t.equal(cdr.client_id, 'c-nsk', 'linked to the client card')
  t.equal(cdr.caller, '1001')
  t.equal(cdr.callee, '+73832123456')
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.counted, true, '20 s of talk counts')
  t.match(cdr.route_reasons.join(' | '), /caller id callee \+73832123456 matches \+7383/)
  const legs = await db.pool.query('SELECT party, endpoint, answered_at FROM legs WHERE call_uuid = $1 ORDER BY started_at', [call.uuid])
  t.same(legs.rows.map((l) => [l.party, l.answered_at !== null]), [['caller', true], ['callee', true]], 'caller leg and the trunk leg, both answered')
  t.equal(legs.rows[1].endpoint, 'sofia/gateway/trunk/+73832123456')

  const rec = await waitFor('recording stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])).rows[0], 30_000)
  t.equal(rec.agent_id, 'mgr-1', 'recording attributed to the employee')
  t.equal(rec.client_id, 'c-nsk', 'and on the client card')
  t.equal(rec.channels, 2, 'stereo')
  t.ok(rec.duration_ms > 17_000 && rec.duration_ms < 23_000, `recorded from the callee's answer: ≈ 20 s (${rec.duration_ms} ms)`)
  t.ok(await h.store.stat(rec.object_key), 'object in the store')
  t.equal(result.recordings.length, 1, 'one file: the conversation')
  t.equal(result.recordings[0].stereo, true)
})

t.test('caller id choice table through the wire', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  const table: Array<[string, string, string, string | null, string]> = [
    // dialled, dial string number, caller id, client, why
    ['8 343 222-33-44', '+73432223344', '+73432000000', 'c-ekb', 'Yekaterinburg by callee prefix'],
    ['89131234567', '+79131234567', '+73832000000', 'c-nsk-mobile', "a Novosibirsk client's mobile: by the client's region"],
    ['0374951234567', '+74951234567', '+74951230000', null, 'legacy prefix 03 stripped before dialling'],
    ['+7 (423) 200-11-22', '+74232001122', '+74232000000', null, 'Vladivostok by callee prefix, unknown number'],
    ['89990001122', '+79990001122', '+74951230000', null, 'no rule: the default number'],
  ]
  for (const [dialled, number, callerId, client, why] of table) {
    const call = h.sim.call({ callerIdNumber: '1002', destination: dialled, vars: OUTBOUND })
    const result = await call.done
    const [bridge] = apps(result, 'bridge')
    t.match(bridge, new RegExp(`origination_caller_id_number=\\${callerId}\\b.*sofia/gateway/trunk/\\${number}$`), `${dialled}: ${why}`)
    const cdr = await waitFor('CDR', () => callRow(call.uuid))
    t.equal(cdr.client_id, client, `${dialled}: client card ${client ?? 'none'}`)
    t.equal(cdr.agent_id, 'mgr-2')
  }
})

t.test('an extension that is not in the directory is refused', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1999', destination: '84951234567', vars: OUTBOUND })
  const result = await call.done
  t.equal(result.hangupCause, 'CALL_REJECTED')
  t.same(apps(result, 'bridge'), [], 'nothing dialled')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'outbound')
  t.equal(cdr.outcome, 'rejected')
  t.equal(cdr.counted, false)
  t.match(cdr.route_reasons.join(' '), /extension "1999" is not in the employee directory/)
})

t.test('a number that cannot be normalised is refused with INVALID_NUMBER_FORMAT', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1001', destination: '99999', vars: OUTBOUND })
  const result = await call.done
  t.equal(result.hangupCause, 'INVALID_NUMBER_FORMAT')
  t.same(apps(result, 'bridge'), [])
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'rejected')
  t.equal(cdr.agent_id, 'mgr-1', 'still attributed: the employee tried')
  t.match(cdr.route_reasons.join(' '), /"99999" cannot be normalised/)
})

t.test('callee busy: the phone gets USER_BUSY, nothing recorded', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '1001', destination: '83832123456', vars: OUTBOUND, bridgeTargets: { 'sofia/gateway/trunk/+73832123456': { busy: true, ringMs: 500 } } })
  const result = await call.done
  t.equal(result.hangupCause, 'USER_BUSY', 'the cause reaches the phone')
  t.equal(result.recordings.length, 0, 'no conversation, no file')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'busy')
  t.equal(cdr.counted, false, 'an unanswered dial attempt is not a counted call')
  t.equal(cdr.did, null, 'an outbound call has no DID of ours')
  t.equal(cdr.callee, '+73832123456', 'the callee is the normalised number dialled')
  t.equal(cdr.client_id, 'c-nsk')
  const leg = await db.pool.query(`SELECT hangup_cause, answered_at FROM legs WHERE call_uuid = $1 AND party = 'callee'`, [call.uuid])
  t.same(leg.rows, [{ hangup_cause: 'USER_BUSY', answered_at: null }])
})

t.test('the extension the phone authenticated as wins over a caller id it made up', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  // Phone 1002 puts 1001 into From: the dialplan's switchboard_extension=${user_name} says 1002.
  const call = h.sim.call({ callerIdNumber: '1001', destination: '83432223344', vars: { ...OUTBOUND, switchboard_extension: '1002' } })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.agent_id, 'mgr-2', 'attributed to the authenticated extension')
  t.equal(cdr.caller, '1002')
})
