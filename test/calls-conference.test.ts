import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { callsRoutes } from '../src/http/plugins/calls.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { sha256Stream } from '../src/recordings/hash.ts'
import { silentLogger } from '../src/log.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import type { SwitchboardEvents } from '../src/events/bus.ts'

// Three-way conference (seed 004, issue 6), recorded as one file for the room (issue 8),
// through the wire simulator's mod_conference, real Postgres, the real pipeline, ffmpeg.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна (менеджер)', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис (коллега)', role: 'manager', groupId: 'sales-1', extension: '1002' },
  { id: 'absent-1', name: 'Глеб (нет на месте)', role: 'manager', groupId: 'sales-1', extension: '1003' },
]
const clients: ClientInput[] = [
  { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1', phones: ['+74951234511', '+74951234512', '+74951234513'] },
]
const db = await startTestDatabase()
t.teardown(() => db.close())
for (const e of employees) await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5)', [e.id, e.name, e.role, e.groupId, e.extension])
const tokens = {
  mgr: await createApiToken(db.pool, { id: 'u-mgr-1', name: 'Анна', role: 'agent', employeeId: 'mgr-1' }),
  col: await createApiToken(db.pool, { id: 'u-col-1', name: 'Борис', role: 'agent', employeeId: 'col-1' }),
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function setup(t: Test) {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1', 'col-1'], at: AT, timeScale: 0.1, configure: (cfg) => { cfg.transfers.legPollMs = 50 } })
  t.teardown(() => h.close())
  const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [callsRoutes({ calls: h.service })] })
  t.teardown(() => app.close())
  const events: Array<SwitchboardEvents['call.conference']> = []
  h.events.on('call.conference', (e) => events.push(e))
  const post = (uuid: string, token: string, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/api/calls/${uuid}/conference`, headers: { authorization: `Bearer ${token}` }, payload })
  return { h, post, events }
}

const callRow = (uuid: string) => waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0])
const legsOf = async (uuid: string) => (await db.pool.query('SELECT uuid, party, employee_id, answered_at, ended_at FROM legs WHERE call_uuid = $1 ORDER BY started_at', [uuid])).rows
const storedRecordings = (uuid: string, n: number) => waitFor(`${n} recordings stored`, async () => {
  const r = await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored' ORDER BY created_at`, [uuid])
  return r.rowCount === n && r.rows
}, 60_000, 200)

t.test('caller, agent and colleague in one room, recorded as one file; the colleague leaves, then the caller hangs up', async (t) => {
  const { h, post, events } = await setup(t)
  const call = h.sim.call({ callerIdNumber: '74951234511', destination: '+74951230000', bridgeTargets: { 'user/1001': { answerAfterMs: 1000 }, 'user/1002': { answerAfterMs: 1500 } } })
  await waitFor('mgr-1 talking', async () => h.service.session(call.uuid)?.summary().agentId === 'mgr-1', 10_000, 20)
  await sleep(300)
  t.equal((await post(call.uuid, tokens.col, { employeeId: 'col-1' })).statusCode, 403, "not the colleague's call yet")
  t.equal((await post(call.uuid, tokens.mgr, { employeeId: 'absent-1' })).statusCode, 409, 'a colleague who is not ready is refused')
  t.equal((await post(call.uuid, tokens.mgr, { employeeId: 'nobody' })).statusCode, 404)
  t.equal((await post('6c1c7a4e-0000-4000-8000-000000000000', tokens.mgr, { employeeId: 'col-1' })).statusCode, 404, 'no such call')
  t.equal((await post(call.uuid, tokens.mgr, { employee: 'col-1' })).statusCode, 400, 'bad body')
  const res = await post(call.uuid, tokens.mgr, { employeeId: 'col-1' })
  t.equal(res.statusCode, 202, res.body)
  const room = `sb-${call.uuid}`
  await waitFor('three in the room', async () => h.sim.conferences.get(room)?.size === 3, 10_000, 20)
  t.equal((await post(call.uuid, tokens.mgr, { employeeId: 'col-1' })).statusCode, 409, 'one conference at a time')
  t.ok(h.sim.apiLog.some((e) => e.command.startsWith(`conference ${room} record `) && e.response.startsWith('+OK')), 'the room is recorded')
  await sleep(400) // ~4 s three-way
  const colleagueLeg = [...h.sim.legs.values()].find((l) => l.endpoint === 'user/1002')!
  h.sim.api(`uuid_kill ${colleagueLeg.uuid}`) // the colleague hangs up
  await waitFor('colleague left', async () => events.some((e) => e.action === 'left' && e.employeeId === 'col-1'), 5_000, 20)
  t.equal(h.presence.get('col-1'), 'wrap_up', 'the colleague who left goes to wrap-up')
  await sleep(300)
  call.hangup()
  const result = await call.done

  t.ok(result.sent.includes('CUSTOM'), 'conference::maintenance reached the caller socket')
  t.ok(result.commands.some((c) => c.headers['execute-app-name'] === 'conference' && c.headers['execute-app-arg'] === `${room}@default`), 'the caller joined the room')
  t.ok(h.sim.apiLog.some((e) => /^originate \{[^}]*switchboard_role=conference[^}]*\}user\/1002 &conference\(sb-/.test(e.command)), 'the colleague was rung into the room')
  const cdr = await callRow(call.uuid)
  t.equal(cdr.outcome, 'answered')
  t.match(cdr.route_reasons.join(' | '), /three-way conference: mgr-1 \+ col-1/)
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.employee_id, l.answered_at !== null, l.ended_at !== null]), [
    ['caller', null, true, true], ['manager', 'mgr-1', true, true], ['conference', 'col-1', true, true],
  ], 'a leg row per participant')
  t.same(events.map((e) => [e.action, e.employeeId]), [['started', 'mgr-1'], ['joined', 'col-1'], ['left', 'col-1'], ['ended', null]])
  await waitFor('room and legs gone', async () => h.sim.conferences.size === 0 && h.sim.legs.size === 0, 5_000, 20)
  t.equal(h.presence.get('mgr-1'), 'wrap_up', 'the agent is released into wrap-up')
  t.equal(h.sim.conferenceRecordings.length, 1, 'FreeSWITCH wrote one conference file')
  t.ok(h.sim.conferenceRecordings[0].ms > 4000, 'covering the conference')

  const recs = await storedRecordings(call.uuid, 3)
  const conference = recs.find((r) => r.channels === 1)
  t.ok(conference, 'the conference file (the mix, mono) is stored')
  t.equal(conference.agent_id, 'mgr-1', 'attributed to the agent who opened it')
  t.ok(conference.leg_uuid && !legs.some((l) => l.uuid === conference.leg_uuid) && conference.leg_uuid !== call.uuid, "linked to the room's own id")
  t.ok(recs.some((r) => r.leg_uuid === call.uuid), 'the caller leg')
  t.ok(recs.some((r) => r.leg_uuid === legs[1].uuid && r.agent_id === 'mgr-1'), 'the conversation before the conference')
  for (const rec of recs) {
    t.equal(rec.client_id, 'c-romashka', 'linked to the client card')
    t.equal(await sha256Stream(await h.store.get(rec.object_key)), rec.sha256, 'verifies')
  }
})

t.test('both employees leave: the caller leaves the room and the call ends normally', async (t) => {
  const { h, post, events } = await setup(t)
  const call = h.sim.call({ callerIdNumber: '74951234512', destination: '+74951230000', bridgeTargets: { 'user/1001': { answerAfterMs: 1000 }, 'user/1002': { answerAfterMs: 1000 } } })
  await waitFor('mgr-1 talking', async () => h.service.session(call.uuid)?.summary().agentId === 'mgr-1', 10_000, 20)
  t.equal((await post(call.uuid, tokens.mgr, { employeeId: 'col-1' })).statusCode, 202)
  const room = `sb-${call.uuid}`
  await waitFor('three in the room', async () => h.sim.conferences.get(room)?.size === 3, 10_000, 20)
  await sleep(300)
  const legOf = (endpoint: string) => [...h.sim.legs.values()].find((l) => l.endpoint === endpoint)!
  h.sim.api(`uuid_kill ${legOf('user/1001').uuid}`) // the agent leaves first
  await waitFor('agent left', async () => events.some((e) => e.action === 'left' && e.employeeId === 'mgr-1'), 5_000, 20)
  t.equal(h.service.session(call.uuid)?.summary().agentId, 'col-1', 'the colleague who stays is the agent now')
  h.sim.api(`uuid_kill ${legOf('user/1002').uuid}`)
  const result = await call.done // kicked out of the room, then the survey times out and Switchboard hangs up
  t.ok(h.sim.apiLog.some((e) => /^conference sb-\S+ kick \d+$/.test(e.command)), 'the caller was taken out of the empty room')
  t.ok(result.commands.some((c) => c.headers['execute-app-arg']?.includes('csat.wav')), 'the call went on to the survey')
  const cdr = await callRow(call.uuid)
  t.equal(cdr.agent_id, 'col-1')
  t.equal(cdr.outcome, 'answered')
  t.equal(events.at(-1)!.action, 'ended')
  t.equal((await legsOf(call.uuid)).length, 3)
  await storedRecordings(call.uuid, 3)
})

t.test('a consultation merged into a conference: all three in one room, every part recorded', async (t) => {
  const { h, post, events } = await setup(t)
  const consultEvents: Array<SwitchboardEvents['call.consult']> = []
  h.events.on('call.consult', (e) => consultEvents.push(e))
  const call = h.sim.call({ callerIdNumber: '74951234513', destination: '+74951230000', bridgeTargets: { 'user/1001': { answerAfterMs: 1000 }, 'user/1002': { answerAfterMs: 1000 } } })
  await waitFor('mgr-1 talking', async () => h.service.session(call.uuid)?.summary().agentId === 'mgr-1', 10_000, 20)
  await h.service.session(call.uuid)!.requestConsult('col-1', 'u-mgr-1') // as POST …/consult does
  await waitFor('consultation connected', async () => h.service.session(call.uuid)?.summary().consult?.phase === 'talking', 10_000, 20)
  await sleep(300)
  const res = await post(call.uuid, tokens.mgr, { employeeId: 'col-1' })
  t.equal(res.statusCode, 202, res.body)
  const room = `sb-${call.uuid}`
  await waitFor('three in the room', async () => h.sim.conferences.get(room)?.size === 3, 10_000, 20)
  t.same(call.holds.map((x) => x.endMs !== null), [true], 'the caller is off hold')
  await sleep(300)
  call.hangup()
  await call.done
  const cdr = await callRow(call.uuid)
  t.match(cdr.route_reasons.join(' | '), /three-way conference: mgr-1 \+ col-1/)
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.employee_id, l.ended_at !== null]), [['caller', null, true], ['manager', 'mgr-1', true], ['consultation', 'col-1', true]])
  t.same(consultEvents.map((e) => e.phase), ['ringing', 'talking', 'completed'])
  t.equal(consultEvents.at(-1)!.reason, 'merged into a three-way conference')
  t.same(events.map((e) => e.action), ['started', 'joined', 'ended'])
  await waitFor('room and legs gone', async () => h.sim.conferences.size === 0 && h.sim.legs.size === 0, 5_000, 20)
  const recs = await storedRecordings(call.uuid, 4)
  t.equal(recs.filter((r) => r.channels === 1).length, 1, 'caller leg, conversation, consultation and the conference file')
  t.ok(recs.some((r) => r.leg_uuid === legs[2].uuid && r.agent_id === 'mgr-1'), 'the consultation file')
})
