import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness, type CallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { callsRoutes } from '../src/http/plugins/calls.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { sha256Stream } from '../src/recordings/hash.ts'
import { createLogger, silentLogger } from '../src/log.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import type { SwitchboardEvents } from '../src/events/bus.ts'
import type { SimCall } from './support/fs-simulator.ts'

// Attended transfer (seed 004, issue 6) with every part recorded (issue 8): the caller's
// leg, each conversation, and the consultation between the two employees, through the
// wire simulator, real Postgres, the real pipeline and ffmpeg.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна (менеджер)', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис (коллега)', role: 'manager', groupId: 'sales-1', extension: '1002' },
  { id: 'absent-1', name: 'Глеб (нет на месте)', role: 'manager', groupId: 'sales-1', extension: '1003' },
]
const clients: ClientInput[] = [
  { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1', phones: ['+74951234567', '+74951234501', '+74951234502', '+74951234503', '+74951234504', '+74951234505', '+74951234506'] },
]
const db = await startTestDatabase()
t.teardown(() => db.close())
for (const e of employees) await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5)', [e.id, e.name, e.role, e.groupId, e.extension])
const tokens = {
  mgr: await createApiToken(db.pool, { id: 'u-mgr-1', name: 'Анна', role: 'agent', employeeId: 'mgr-1' }),
  col: await createApiToken(db.pool, { id: 'u-col-1', name: 'Борис', role: 'agent', employeeId: 'col-1' }),
  sup: await createApiToken(db.pool, { id: 'u-sup', name: 'Вера', role: 'supervisor' }),
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function setup(t: Test, opts: { ringSec?: number } = {}) {
  const h = await startCallHarness(db, {
    employees, clients, ready: ['mgr-1', 'col-1'], at: AT, timeScale: 0.1, log: process.env.CONSULT_DEBUG ? createLogger('debug') : undefined,
    configure: (cfg) => {
      cfg.transfers.legPollMs = 50
      if (opts.ringSec) cfg.transfers.consultRingSec = opts.ringSec
    },
  })
  t.teardown(() => h.close())
  if (process.env.CONSULT_DEBUG) t.teardown(() => { console.error(h.sim.apiLog); for (const c of h.sim.calls) console.error(c.sent.join(' ')) })
  const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [callsRoutes({ calls: h.service })] })
  t.teardown(() => app.close())
  const consultEvents: Array<SwitchboardEvents['call.consult']> = []
  h.events.on('call.consult', (e) => consultEvents.push(e))
  const post = (uuid: string, path: string, token: string, payload?: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/api/calls/${uuid}/${path}`, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload }) })
  return { h, app, post, consultEvents }
}

/** A known client calls; their own manager (mgr-1) answers after 1 s and stays until the caller hangs up. */
// Each test calls from its own number of the client: a repeat caller would be routed to whoever took their last call.
let phone = 0
async function callTalkingToManager(h: CallHarness, colleague: Record<string, unknown> = { answerAfterMs: 1500 }): Promise<SimCall> {
  const call = h.sim.call({ callerIdNumber: `749512345${String(++phone).padStart(2, '0')}`, destination: '+74951230000', bridgeTargets: { 'user/1001': { answerAfterMs: 1000 }, 'user/1002': colleague } })
  await waitFor('mgr-1 talking', async () => h.service.session(call.uuid)?.summary().agentId === 'mgr-1', 10_000, 20)
  await sleep(300) // ~3 s of conversation
  return call
}

async function storedRecordings(uuid: string, n: number) {
  return waitFor(`${n} recordings stored`, async () => {
    const r = await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored' ORDER BY created_at`, [uuid])
    return r.rowCount === n && r.rows
  }, 60_000, 200)
}

async function legsOf(uuid: string) {
  return (await db.pool.query('SELECT uuid, party, employee_id, answered_at, ended_at, hangup_cause FROM legs WHERE call_uuid = $1 ORDER BY started_at', [uuid])).rows
}

const callRow = (uuid: string) => waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0])

t.test('consult, then complete: the colleague takes the caller; four recordings, all linked', async (t) => {
  const { h, post, consultEvents } = await setup(t)
  const call = await callTalkingToManager(h)
  const session = () => h.service.session(call.uuid)!

  t.equal((await post(call.uuid, 'consult/complete', tokens.mgr)).statusCode, 409, 'nothing to complete before a consultation')
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'absent-1' })).statusCode, 409, 'a colleague who is not ready is refused')
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'mgr-1' })).statusCode, 409, 'consulting oneself is refused')
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'nobody' })).statusCode, 404, 'unknown colleague')
  t.equal((await post(call.uuid, 'consult', tokens.mgr, {})).statusCode, 400, 'employeeId is required')
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1', extra: 1 })).statusCode, 400, 'unknown fields are refused')
  t.equal((await post('6c1c7a4e-0000-4000-8000-000000000000', 'consult', tokens.sup, { employeeId: 'col-1' })).statusCode, 404, 'no such call')
  t.equal((await post(call.uuid, 'consult', tokens.col, { employeeId: 'col-1' })).statusCode, 403, "an agent cannot consult on someone else's call")

  const res = await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1' })
  t.equal(res.statusCode, 202, res.body)
  t.equal(h.presence.get('col-1'), 'on_call', 'the colleague was claimed atomically')
  await waitFor('consultation connected', async () => session().summary().consult?.phase === 'talking', 10_000, 20)
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1' })).statusCode, 409, 'already in a consultation')
  t.equal((await post(call.uuid, 'transfer', tokens.mgr, { employeeId: 'col-1' })).statusCode, 409, 'no blind transfer while the caller is on hold')
  await sleep(400) // ~4 s of consultation
  const done = await post(call.uuid, 'consult/complete', tokens.mgr)
  t.equal(done.statusCode, 202, done.body)
  await waitFor('caller talking to the colleague', async () => session().summary().agentId === 'col-1' && !session().summary().consult, 10_000, 20)
  await waitFor('first agent released', async () => h.presence.get('mgr-1') === 'wrap_up', 5_000, 20)
  await sleep(400) // ~4 s with the colleague
  call.hangup()
  const result = await call.done

  // What FreeSWITCH was told and what it said.
  const api = h.sim.apiLog.map((e) => e.command)
  t.ok(api.some((c) => /^uuid_transfer \S+ park inline$/.test(c)), 'the agent leg left the bridge into park')
  t.ok(api.includes(`uuid_hold ${call.uuid}`) && api.includes(`uuid_hold off ${call.uuid}`), 'caller held and unheld')
  t.ok(api.some((c) => /^originate \{origination_uuid=[^}]*originate_timeout=20[^}]*\}user\/1002 &park\(\)$/.test(c)), 'colleague originated into park with our uuid')
  t.ok(api.some((c) => c.startsWith('uuid_bridge ')), 'agent and colleague bridged')
  t.ok(result.sent.includes('CHANNEL_HOLD') && result.sent.includes('CHANNEL_UNHOLD') && result.sent.includes('BACKGROUND_JOB'), 'hold events and the job result reached the socket')
  t.ok(result.commands.some((c) => c.headers['execute-app-name'] === 'endless_playback' && c.headers['execute-app-arg'] === 'local_stream://moh'), 'hold music played')
  t.equal(call.holds.length, 1, 'one hold span on the caller channel')
  t.equal(h.sim.legs.size, 0, 'no channel left behind in FreeSWITCH')

  const cdr = await callRow(call.uuid)
  t.equal(cdr.agent_id, 'col-1', 'the colleague is the call\'s agent for statistics')
  t.match(cdr.route_reasons.join(' | '), /attended transfer: mgr-1 → col-1/, 'the transfer is in the route reasons')
  t.equal(cdr.outcome, 'answered')
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.employee_id, l.answered_at !== null, l.ended_at !== null]), [
    ['caller', null, true, true], ['manager', 'mgr-1', true, true], ['consultation', 'col-1', true, true],
  ], 'a leg row per party')
  const [, managerLeg, consultLeg] = legs
  t.equal(h.presence.get('mgr-1'), 'wrap_up', 'the first agent is in wrap-up')
  t.same(consultEvents.map((e) => e.phase), ['ringing', 'talking', 'completed'], 'live events')

  const recs = await storedRecordings(call.uuid, 4)
  const byLeg = (leg: string, agent: string) => recs.filter((r) => r.leg_uuid === leg && r.agent_id === agent)
  const whole = recs.find((r) => r.leg_uuid === call.uuid)
  t.ok(whole, 'the caller leg, from answer to hangup')
  t.equal(whole.metrics.holdSpans?.length, 1, 'the hold is marked in the caller recording')
  const hold = whole.metrics.holdSpans[0]
  // Offsets are wall-clock ms (the simulator's audio runs 10× faster than the wall clock): ≥ the 400 ms the test consulted.
  t.ok(hold.endMs - hold.startMs >= 400, `hold span covers the consultation (${hold.endMs - hold.startMs} ms)`)
  t.equal(byLeg(managerLeg.uuid, 'mgr-1').length, 1, 'the conversation with the first agent')
  const consult = byLeg(consultLeg.uuid, 'mgr-1')
  t.equal(consult.length, 1, 'the consultation, its own file, linked to the consultation leg and the consulting agent')
  t.equal(byLeg(consultLeg.uuid, 'col-1').length, 1, 'the conversation with the colleague')
  t.ok(consult[0].duration_ms > 2500, `consultation lasted (${consult[0].duration_ms} ms)`)
  for (const rec of recs) {
    t.equal(rec.client_id, 'c-romashka', 'linked to the client card')
    t.equal(rec.channels, 2, 'stereo')
    t.equal(await sha256Stream(await h.store.get(rec.object_key)), rec.sha256, 'verifies against its SHA-256')
  }
  // The consultation file: the agent (left) and the colleague (right) both audible.
  const cons = result.recordings.find((r) => r.uuid === managerLeg.uuid && r.via === 'uuid_record')
  t.ok(cons && cons.ms > 2500, 'FreeSWITCH recorded the consultation on the agent leg')
})

t.test('consult, then cancel: the caller goes back to the agent', async (t) => {
  const { h, post, consultEvents } = await setup(t)
  const call = await callTalkingToManager(h)
  t.equal((await post(call.uuid, 'consult', tokens.sup, { employeeId: 'col-1' })).statusCode, 202, 'a supervisor may start it')
  await waitFor('consultation connected', async () => h.service.session(call.uuid)?.summary().consult?.phase === 'talking', 10_000, 20)
  await sleep(300)
  t.equal((await post(call.uuid, 'consult/cancel', tokens.mgr)).statusCode, 202)
  await waitFor('back with the agent', async () => {
    const s = h.service.session(call.uuid)?.summary()
    return s && !s.consult && s.agentId === 'mgr-1' && h.presence.get('col-1') === 'ready'
  }, 10_000, 20)
  t.equal((await post(call.uuid, 'consult/cancel', tokens.mgr)).statusCode, 409, 'nothing left to cancel')
  await sleep(300)
  call.hangup()
  await call.done
  const cdr = await callRow(call.uuid)
  t.equal(cdr.agent_id, 'mgr-1', 'the agent kept the call')
  t.notMatch(cdr.route_reasons.join(' '), /attended transfer/, 'no transfer happened')
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.employee_id, l.answered_at !== null]), [['caller', null, true], ['manager', 'mgr-1', true], ['consultation', 'col-1', true]])
  t.same(consultEvents.map((e) => [e.phase, e.reason]), [['ringing', null], ['talking', null], ['cancelled', 'cancelled']])
  t.equal(h.presence.get('col-1'), 'ready', 'the colleague is free again')
  const recs = await storedRecordings(call.uuid, 4)
  t.equal(recs.filter((r) => r.leg_uuid === legs[1].uuid && r.agent_id === 'mgr-1').length, 2, 'two conversations with the agent, before and after the hold')
  t.equal(recs.filter((r) => r.leg_uuid === legs[2].uuid).length, 1, 'and the consultation')
  t.equal(h.sim.legs.size, 0, 'nothing left parked')
})

t.test('the colleague does not answer: the consultation cancels itself with a clear event', async (t) => {
  const { h, post, consultEvents } = await setup(t, { ringSec: 3 })
  const call = await callTalkingToManager(h, { noAnswer: true })
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1' })).statusCode, 202)
  t.equal((await post(call.uuid, 'consult/complete', tokens.mgr)).statusCode, 409, 'cannot complete while the colleague rings')
  await waitFor('consultation given up', async () => consultEvents.some((e) => e.phase === 'cancelled'), 10_000, 20)
  t.match(consultEvents.at(-1)!.reason, /did not answer \(NO_ANSWER\)/, 'the event says why')
  await waitFor('back with the agent', async () => h.service.session(call.uuid)?.summary().agentId === 'mgr-1' && !h.service.session(call.uuid)?.summary().consult, 10_000, 20)
  await sleep(300)
  call.hangup()
  await call.done
  const cdr = await callRow(call.uuid) // written last: every leg row is in by now
  t.equal(cdr.agent_id, 'mgr-1')
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.employee_id, l.answered_at !== null, l.hangup_cause]).slice(2), [['consultation', 'col-1', false, 'NO_ANSWER']], 'the unanswered consultation leg')
  t.equal(h.presence.get('col-1'), 'not_ready', 'a colleague who let it ring out is not offered calls')
  await storedRecordings(call.uuid, 3) // caller leg + the conversation before and after the hold
})

t.test('the caller hangs up during the consultation: everything ends cleanly', async (t) => {
  const { h, post, consultEvents } = await setup(t)
  const call = await callTalkingToManager(h)
  t.equal((await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1' })).statusCode, 202)
  await waitFor('consultation connected', async () => h.service.session(call.uuid)?.summary().consult?.phase === 'talking', 10_000, 20)
  await sleep(300)
  call.hangup()
  await call.done
  const cdr = await callRow(call.uuid)
  t.equal(cdr.outcome, 'answered')
  t.equal(cdr.agent_id, 'mgr-1')
  await waitFor('legs closed', async () => (await legsOf(call.uuid)).every((l) => l.ended_at !== null) && (await legsOf(call.uuid)).length === 3, 5_000)
  t.equal(consultEvents.at(-1)!.phase, 'ended')
  await waitFor('no leg left in FreeSWITCH', async () => h.sim.legs.size === 0, 5_000, 20)
  t.equal(h.presence.get('mgr-1'), 'wrap_up', 'the agent goes to wrap-up')
  t.equal(h.presence.get('col-1'), 'ready', 'the colleague is released')
  const recs = await storedRecordings(call.uuid, 3)
  t.ok(recs.every((r) => r.client_id === 'c-romashka'), 'caller leg, conversation and consultation stored and linked')
})

t.test('cancel while the colleague still rings: the originate is stopped, the colleague stays ready', async (t) => {
  const { h, post, consultEvents } = await setup(t)
  const call = await callTalkingToManager(h, { noAnswer: true })
  const res = await post(call.uuid, 'consult', tokens.mgr, { employeeId: 'col-1' })
  t.equal(res.statusCode, 202, res.body)
  await waitFor('ringing', async () => h.service.session(call.uuid)?.summary().consult?.phase === 'ringing', 10_000, 20)
  t.equal((await post(call.uuid, 'consult/cancel', tokens.mgr)).statusCode, 202)
  await waitFor('back with the agent', async () => consultEvents.some((e) => e.phase === 'cancelled') && !h.service.session(call.uuid)?.summary().consult, 10_000, 20)
  t.equal(consultEvents.at(-1)!.reason, 'cancelled')
  call.hangup()
  await call.done
  await callRow(call.uuid)
  const legs = await legsOf(call.uuid)
  t.same(legs.map((l) => [l.party, l.answered_at !== null, l.hangup_cause]).slice(2), [['consultation', false, 'ORIGINATOR_CANCEL']], 'the cancelled ring has its leg row')
  t.equal(h.presence.get('col-1'), 'ready', 'not the colleague\'s fault: still ready')
  t.ok(h.sim.apiLog.some((e) => /^uuid_kill \S+ ORIGINATOR_CANCEL$/.test(e.command)), 'the ringing leg was killed')
})
