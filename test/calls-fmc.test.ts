// Issue 7: managers' mobile calls anchored through the PBX (FMC) — recorded, attributed to
// the manager, counted by the 15 s rule; unknown mobiles refused (no open relay).
import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { SimCallResult } from './support/fs-simulator.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import { fmcDestination, firstEntry, userPart } from '../src/fmc/destination.ts'
import { endpointOf } from '../src/calls/context.ts'
import { validateSwitchboardFile } from '../src/config/switchboard-file.ts'

const AT = '2026-11-23T09:00:00Z'
const FMC = { switchboard_direction: 'fmc' }
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001', mobile: '+79161234567' },
  // Works from the mobile only: calls for her ring the mobile through the FMC gateway.
  { id: 'mgr-m', name: 'Дина (на выезде)', role: 'manager', groupId: 'sales-1', mobile: '89167654321' },
  { id: 'col-1', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]
const clients: ClientInput[] = [
  { id: 'c-ekb', name: 'ООО Урал', segment: 'A', kind: 'client', region: 'Екатеринбург', assignedManagerId: 'mgr-1', phones: ['+73432223344'] },
  { id: 'c-field', name: 'ООО Поле', segment: 'B', kind: 'client', assignedManagerId: 'mgr-m', phones: ['+74957778899'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())

const callRow = async (uuid: string) => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0]
const apps = (r: SimCallResult, name: string) => r.commands.filter((c) => c.headers['execute-app-name'] === name).map((c) => c.headers['execute-app-arg'] ?? '')
const storedRecording = (uuid: string) => waitFor('recording stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [uuid])).rows[0], 30_000)

t.test('where the FMC trunk puts the destination (pure)', async (t) => {
  const vars = {
    sip_req_user: '74951239999',
    sip_h_Diversion: 'ARRAY::<sip:+73432223344@fmc.operator.example;user=phone>;reason=unconditional|:<sip:+70000000000@x>;reason=no-answer',
    sip_history_info: '<sip:83432223344@pbx.example?Reason=SIP%3Bcause%3D302>;index=1, <sip:74951239999@pbx.example>;index=1.1',
    X_FMC_Called: 'tel:+73432223344',
  }
  t.same(fmcDestination({ destination: '+73432223344', vars }, { destinationFrom: 'request-uri' }), { raw: '+73432223344', from: 'request URI' })
  t.same(fmcDestination({ destination: '', vars }, { destinationFrom: 'request-uri' }), { raw: '74951239999', from: 'request URI' }, 'sip_req_user when the destination is empty')
  t.equal(fmcDestination({ destination: 'pilot', vars }, { destinationFrom: 'diversion' }).raw, '+73432223344', 'first Diversion of an ARRAY')
  t.equal(fmcDestination({ destination: 'pilot', vars }, { destinationFrom: 'history-info' }).raw, '83432223344', 'History-Info index=1: the original target')
  t.equal(fmcDestination({ destination: 'pilot', vars }, { destinationFrom: 'variable', variable: 'X_FMC_Called' }).raw, '+73432223344')
  t.same(fmcDestination({ destination: 'pilot', vars: {} }, { destinationFrom: 'diversion' }), { raw: null, from: 'Diversion header' }, 'no header: null')
  t.equal(firstEntry('"A, B" <sip:1@h>;x=1, <sip:2@h>'), '"A, B" <sip:1@h>;x=1', 'commas inside quotes/<> are not separators')
  t.equal(userPart('<sip:%2B74951234567@h>'), '+74951234567', 'URL-decoded')
})

t.test('endpointOf: desk phone, or the mobile through the FMC gateway for mobile-first employees', async (t) => {
  const cfg = validateSwitchboardFile({
    offices: [{ id: 'msk', name: 'M', tz: 'Europe/Moscow', hours: { mon: 'closed', tue: 'closed', wed: 'closed', thu: 'closed', fri: 'closed' } }],
    queues: [{ id: 'sales', name: 'S' }, { id: 'production', name: 'P' }, { id: 'finance', name: 'F' }],
    gateways: { fmc: 'mts-fmc', numberFormat: 'digits' }, fmc: { mobileFirst: ['e2'] },
  })
  t.equal(endpointOf({ id: 'e1', name: 'x', role: 'manager', extension: '1001', mobile: '+79161234567' }), 'user/1001', 'desk phone first')
  t.equal(endpointOf({ id: 'e3', name: 'x', role: 'manager', mobile: '+79161234567' }), 'sofia/gateway/fmc/+79161234567', 'no desk phone: the mobile')
  t.equal(endpointOf({ id: 'e2', name: 'x', role: 'manager', extension: '1002', mobile: '+79161234567' }, cfg), 'sofia/gateway/mts-fmc/79161234567', 'listed as mobile-first, configured gateway and format')
  t.equal(endpointOf({ id: 'e4', name: 'x', role: 'manager' }), null)
})

t.test('mobile-originated from a known manager: via the trunk with the company caller id, recorded, attributed, counted', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '89161234567', destination: '83432223344', source: 'sofia', context: 'fmc', vars: FMC,
    bridgeTargets: { 'sofia/gateway/trunk/+73432223344': { answerAfterMs: 1500, hangupAfterMs: 20_000 } },
  })
  const result = await call.done
  const bridges = apps(result, 'bridge')
  t.equal(bridges.length, 1)
  t.match(bridges[0], /origination_caller_id_number=\+73432000000\b.*sofia\/gateway\/trunk\/\+73432223344$/, 'out through the trunk, Yekaterinburg company number for a Yekaterinburg client')
  t.notMatch(bridges[0], /79161234567/, "the manager's private mobile is not presented")
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'fmc')
  t.equal(cdr.agent_id, 'mgr-1', "the manager's call, not an anonymous trunk call")
  t.equal(cdr.caller, '+79161234567')
  t.equal(cdr.callee, '+73432223344')
  t.equal(cdr.client_id, 'c-ekb', 'on the client card')
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.counted, true, '20 s: counted')
  const rec = await storedRecording(call.uuid)
  t.equal(rec.agent_id, 'mgr-1')
  t.equal(rec.client_id, 'c-ekb')
  t.equal(rec.channels, 2)
  t.ok(rec.duration_ms > 17_000 && rec.duration_ms < 23_000, `≈ 20 s (${rec.duration_ms} ms)`)
})

t.test('a mobile that is not in the directory is rejected (no open relay)', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '+79990000000', destination: '83432223344', source: 'sofia', context: 'fmc', vars: FMC })
  const result = await call.done
  t.equal(result.hangupCause, 'CALL_REJECTED')
  t.same(apps(result, 'bridge'), [], 'nothing dialled out')
  t.equal(result.recordings.length, 0)
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'fmc')
  t.equal(cdr.outcome, 'rejected')
  t.equal(cdr.counted, false)
  t.equal(cdr.agent_id, null)
  t.match(cdr.route_reasons.join(' '), /not an employee's mobile/)
})

t.test('an FMC conversation under 15 s is stored but not counted', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT, timeScale: 0.1 })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '79161234567', destination: '+73432223344', source: 'sofia', context: 'fmc', vars: FMC,
    bridgeTargets: { 'sofia/gateway/trunk/+73432223344': { answerAfterMs: 1000, hangupAfterMs: 8000 } },
  })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.agent_id, 'mgr-1')
  t.equal(cdr.counted, false, '8 s of talk: not counted (seed 000)')
  const rec = await storedRecording(call.uuid)
  t.ok(rec, 'but the recording is stored')
  t.equal(rec.client_id, 'c-ekb')
})

t.test('destination from the Diversion header when the operator puts the pilot number in the request URI', async (t) => {
  const h = await startCallHarness(db, { employees, clients, at: AT, configure: (c) => { c.fmc.destinationFrom = 'diversion' } })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '89161234567', destination: '74951239999', source: 'sofia', context: 'fmc', vars: FMC,
    sipHeaders: { Diversion: '<sip:+73432223344@fmc.operator.example>;reason=unconditional' },
  })
  const result = await call.done
  t.match(apps(result, 'bridge')[0], /sofia\/gateway\/trunk\/\+73432223344$/, 'the number from the Diversion header is dialled')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.client_id, 'c-ekb')
  t.match(cdr.route_reasons.join(' '), /destination from the Diversion header/)
})

t.test('mobile-terminated: the manager is rung on the mobile for 30 s, then a colleague answers; anchored and recorded', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-m', 'col-1'], at: AT })
  t.teardown(() => h.close())
  // An ordinary inbound call from the client whose manager works from the mobile.
  const call = h.sim.call({
    callerIdNumber: '84957778899', destination: '+74951230000', source: 'sofia',
    bridgeTargets: {
      'sofia/gateway/fmc/+79167654321': { noAnswer: true },
      'user/1002': { answerAfterMs: 500, hangupAfterMs: 5000 },
    },
  })
  const result = await call.done
  const bridges = apps(result, 'bridge')
  t.equal(bridges.length, 2)
  t.match(bridges[0], /originate_timeout=30\b.*sofia\/gateway\/fmc\/\+79167654321$/, "the manager's mobile through the FMC gateway, 30 s")
  t.match(bridges[1], /user\/1002$/, 'then the colleague (seed 000 failover)')
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.direction, 'inbound')
  t.equal(cdr.agent_id, 'col-1')
  t.equal(cdr.client_id, 'c-field')
  const legs = await db.pool.query(`SELECT party, employee_id, endpoint, hangup_cause FROM legs WHERE call_uuid = $1 AND party <> 'caller' ORDER BY started_at`, [call.uuid])
  t.same(legs.rows.map((l) => [l.party, l.employee_id, l.endpoint]), [
    ['manager', 'mgr-m', 'sofia/gateway/fmc/+79167654321'], ['colleague', 'col-1', 'user/1002'],
  ])
  t.ok(result.recordings.some((r) => r.leg === 'a' && r.written), 'the caller leg stays in the PBX and is recorded')
  t.equal(h.presence.get('mgr-m'), 'not_ready', 'a manager who let the mobile ring out is set not ready')
})

t.test('mobile-terminated and answered: the conversation on the mobile is recorded and attributed to the manager', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-m'], at: AT })
  t.teardown(() => h.close())
  const call = h.sim.call({
    callerIdNumber: '84957778899', destination: '+74951230000', source: 'sofia',
    bridgeTargets: { 'sofia/gateway/fmc/+79167654321': { answerAfterMs: 300, hangupAfterMs: 3000 } },
  })
  await call.done
  const cdr = await waitFor('CDR', () => callRow(call.uuid))
  t.equal(cdr.agent_id, 'mgr-m')
  const recs = await waitFor('recordings stored', async () => {
    const r = await db.pool.query(`SELECT agent_id, client_id FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])
    return r.rowCount === 2 && r.rows
  }, 30_000)
  t.same(recs.map((r) => [r.agent_id, r.client_id]), [['mgr-m', 'c-field'], ['mgr-m', 'c-field']], 'call and conversation files on the manager and the client card')
})
