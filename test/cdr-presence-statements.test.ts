import t from 'tap'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { startTestDatabase } from './support/db.ts'
import { CdrWriter, type CallStart, type LegRow } from '../src/calls/cdr.ts'
import { PresenceStore, PRESENCE_CHANNEL, type PresenceChange } from '../src/acd/presence.ts'
import { silentLogger } from '../src/log.ts'

// The call path's writes are one statement each (CTEs): these check that each still does
// everything the separate statements and transactions did.

const db = await startTestDatabase()
t.teardown(() => db.close())
await db.pool.query(`INSERT INTO employees (id, name, role) VALUES ('a1', 'Agent 1', 'agent'), ('a2', 'Agent 2', 'agent')`)
await db.pool.query(`INSERT INTO clients (id, name, segment, kind) VALUES ('c1', 'Client 1', 'A', 'client')`)
const log = silentLogger()

const start = (over: Partial<CallStart> = {}): CallStart => ({
  uuid: randomUUID(), direction: 'inbound', caller: '+74950000001', callee: '+74951230000', did: '+74951230000', sourceTag: 'site',
  clientId: 'c1', startedAt: new Date(), node: 'node-t', ...over,
})
const callerLeg = (c: CallStart, over: Partial<LegRow> = {}): LegRow => ({
  uuid: c.uuid, callUuid: c.uuid, party: 'caller', endpoint: 'sofia/external/x', employeeId: null, startedAt: c.startedAt, answeredAt: null, endedAt: null, hangupCause: null, ...over,
})

t.test('call start: the call row, the caller leg and the caller history in one statement', async (t) => {
  const cdr = new CdrWriter(db.pool, log)
  t.teardown(() => cdr.stop())
  const caller = '+74950000002'
  const first = start({ caller })
  t.same(await cdr.startWithLeg(first, callerLeg(first), caller), { callsToday: 0, lastAgent: null }, 'history as it was before this call')
  const row = (await db.pool.query('SELECT direction, caller, source_tag, client_id, node, ended_at FROM calls WHERE uuid = $1', [first.uuid])).rows[0]
  t.same(row, { direction: 'inbound', caller, source_tag: 'site', client_id: 'c1', node: 'node-t', ended_at: null }, 'call row written at the start')
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM legs WHERE call_uuid = $1 AND party = $2 AND ended_at IS NULL', [first.uuid, 'caller'])).rows[0].n, 1, 'caller leg open')

  await cdr.end({ uuid: first.uuid, answeredAt: new Date(), endedAt: new Date(), billsec: 5, hangupCause: 'NORMAL_CLEARING', outcome: 'answered', counted: true, agentId: 'a1', queueId: null, ivrPath: [], routeReasons: [], csat: null })
  const second = start({ caller, clientId: 'unknown-client' })
  t.same(await cdr.startWithLeg(second, callerLeg(second), caller), { callsToday: 1, lastAgent: 'a1' }, 'the earlier call today and its agent')
  t.equal((await db.pool.query('SELECT client_id FROM calls WHERE uuid = $1', [second.uuid])).rows[0].client_id, null, 'an unknown client is not linked (and does not fail the write)')

  const outbound = start({ direction: 'outbound', caller: '1001', sourceTag: null, clientId: null })
  t.equal(await cdr.startWithLeg(outbound, callerLeg(outbound, { employeeId: 'a2' })), null, 'no history asked, none read')
  t.equal((await db.pool.query('SELECT employee_id FROM legs WHERE uuid = $1', [outbound.uuid])).rows[0].employee_id, 'a2')
})

t.test('call end: the legs that ended with the call and the call row in one statement', async (t) => {
  const cdr = new CdrWriter(db.pool, log)
  t.teardown(() => cdr.stop())
  const c = start()
  await cdr.startWithLeg(c, callerLeg(c), c.caller!)
  const agentLeg: LegRow = { uuid: randomUUID(), callUuid: c.uuid, party: 'agent', endpoint: 'user/1001', employeeId: 'a1', startedAt: c.startedAt, answeredAt: new Date(), endedAt: new Date(), hangupCause: 'NORMAL_CLEARING' }
  const ended = new Date()
  await cdr.end({ uuid: c.uuid, answeredAt: c.startedAt, endedAt: ended, billsec: 7, hangupCause: 'NORMAL_CLEARING', outcome: 'answered', counted: true, agentId: 'a1', queueId: 'sales', ivrPath: [{ menuId: 'm', label: 'Sales', digit: '1', at: ended.toISOString() }], routeReasons: ['r1'], csat: 9, talkSec: 6, holdSec: 2 },
    [agentLeg, callerLeg(c, { answeredAt: c.startedAt, endedAt: ended, hangupCause: 'NORMAL_CLEARING', holdSec: 2 }), callerLeg(c, { answeredAt: c.startedAt, endedAt: ended, hangupCause: 'NORMAL_CLEARING', holdSec: 2 })])
  const call = (await db.pool.query('SELECT outcome, counted, billsec, agent_id, queue_id, csat, talk_sec, hold_sec, ended_at, route_reasons, ivr_path FROM calls WHERE uuid = $1', [c.uuid])).rows[0]
  t.match(call, { outcome: 'answered', counted: true, billsec: 7, agent_id: 'a1', queue_id: 'sales', csat: 9, talk_sec: 6, hold_sec: 2, route_reasons: ['r1'] })
  t.equal(call.ended_at.getTime(), ended.getTime())
  t.equal(call.ivr_path[0].label, 'Sales')
  const legs = (await db.pool.query('SELECT party, employee_id, ended_at, hangup_cause, hold_sec, endpoint FROM legs WHERE call_uuid = $1 ORDER BY party', [c.uuid])).rows
  t.match(legs, [
    { party: 'agent', employee_id: 'a1', hangup_cause: 'NORMAL_CLEARING', hold_sec: null, endpoint: 'user/1001' },
    { party: 'caller', employee_id: null, hangup_cause: 'NORMAL_CLEARING', hold_sec: 2, endpoint: 'sofia/external/x' },
  ], 'the caller leg (given twice: written once) closed, the agent leg inserted')
  t.ok(legs.every((l) => l.ended_at), 'every leg ended')
})

t.test('Postgres down: start and end are queued in order and written when it returns', async (t) => {
  const cdr = new CdrWriter(db.pool, log, 1_000, 100)
  t.teardown(() => cdr.stop())
  const c = start({ caller: '+74950000003' })
  await db.stopServer()
  try {
    t.equal(await cdr.startWithLeg(c, callerLeg(c), c.caller!), null, 'no history while Postgres is down; the call goes on')
    await cdr.end({ uuid: c.uuid, answeredAt: null, endedAt: new Date(), billsec: 0, hangupCause: 'ORIGINATOR_CANCEL', outcome: 'missed', counted: true, agentId: null, queueId: null, ivrPath: [], routeReasons: [], csat: null },
      [callerLeg(c, { endedAt: new Date(), hangupCause: 'ORIGINATOR_CANCEL' })])
    t.equal(cdr.pending, 2)
  } finally {
    await db.restart()
  }
  t.ok(await cdr.drain(20_000), 'backlog written')
  const row = (await db.pool.query('SELECT outcome, ended_at IS NOT NULL AS ended FROM calls WHERE uuid = $1', [c.uuid])).rows[0]
  t.same(row, { outcome: 'missed', ended: true })
  t.equal((await db.pool.query('SELECT hangup_cause FROM legs WHERE uuid = $1', [c.uuid])).rows[0].hangup_cause, 'ORIGINATOR_CANCEL')
})

t.test('presence: claim, set and the end of wrap-up keep the state, the history, the offers and the NOTIFYs right', async (t) => {
  const presence = new PresenceStore(db.pool, log, undefined, { node: 'node-t' })
  const listener = new pg.Client({ connectionString: db.url })
  await listener.connect()
  t.teardown(() => listener.end())
  const heard: PresenceChange[] = []
  listener.on('notification', (n) => { if (n.channel === PRESENCE_CHANNEL) heard.push(JSON.parse(n.payload!)) })
  await listener.query(`LISTEN ${PRESENCE_CHANNEL}`)

  t.same(await presence.set('a1', 'ready'), { changed: true }, 'first state: row created')
  t.same(await presence.set('a1', 'ready'), { changed: false }, 'the same state again is a no-op')
  const callUuid = randomUUID()
  const claims = await Promise.all([presence.claim('a1', callUuid), presence.claim('a1', randomUUID())])
  t.same(claims.filter(Boolean).length, 1, 'two claims at once: exactly one wins')
  t.equal(presence.get('a1'), 'on_call')
  t.match((await db.pool.query('SELECT state, call_uuid, claimed_by FROM agent_presence WHERE employee_id = $1', ['a1'])).rows[0], { state: 'on_call', claimed_by: 'node-t' })

  await db.pool.query(`INSERT INTO acd_offers (offer_id, call_uuid, queue_id, employee_id, node, strategy) VALUES (nextval('acd_offer_seq'), $1, 'sales', 'a1', 'node-t', 'longest-idle')`, [callUuid])
  t.same(await presence.startWrapUp('a1', 60, `after call ${callUuid}`).then(() => presence.get('a1')), 'wrap_up')
  const wrap = (await db.pool.query(`SELECT wrap_up_until > now() + interval '50 seconds' AS later, last_call_ended_at IS NOT NULL AS ended, call_uuid FROM agent_presence WHERE employee_id = 'a1'`)).rows[0]
  t.same(wrap.later, true, 'wrap-up end stored with the state')
  t.same(wrap.ended, true, 'leaving on_call stamps the last call end')
  t.equal((await db.pool.query(`SELECT count(*)::int AS n FROM acd_offers WHERE employee_id = 'a1' AND ended_at IS NULL`)).rows[0].n, 0, 'leaving on_call ends the offer in the same statement')
  t.same(await presence.endDueWrapUps('a1'), [], 'not due yet')
  await db.pool.query(`UPDATE agent_presence SET wrap_up_until = now() - interval '1 second' WHERE employee_id = 'a1'`)
  t.same(await presence.endDueWrapUps('a1'), ['a1'], 'due: back to ready')
  t.equal(presence.get('a1'), 'ready')
  t.match((await db.pool.query(`SELECT state, call_uuid, claimed_by, wrap_up_until FROM agent_presence WHERE employee_id = 'a1'`)).rows[0], { state: 'ready', call_uuid: null, claimed_by: null, wrap_up_until: null })

  const history = (await db.pool.query(`SELECT state, started_at, ended_at FROM agent_presence_history WHERE employee_id = 'a1' ORDER BY started_at, id`)).rows
  t.same(history.map((h) => h.state), ['ready', 'on_call', 'wrap_up', 'ready'], 'one history row per change, none for the no-op or the lost claim')
  t.ok(history.slice(0, -1).every((h, i) => h.ended_at && h.ended_at <= history[i + 1].started_at), 'each row closed by the next change')
  t.equal(history.at(-1).ended_at, null, 'only the current state is open')

  await presence.set('a2', 'not_ready', 'r'.repeat(500))
  await new Promise((r) => setTimeout(r, 200))
  t.same(heard.filter((h) => h.employeeId === 'a1').map((h) => h.state), ['ready', 'on_call', 'wrap_up', 'ready'], 'one NOTIFY per change')
  const a2 = heard.find((h) => h.employeeId === 'a2')
  t.match(a2, { state: 'not_ready', node: 'node-t' })
  t.equal(a2?.reason?.length, 200, 'reasons cut in the NOTIFY (8000-byte limit), kept whole in the row')
  t.equal((await db.pool.query(`SELECT length(reason)::int AS n FROM agent_presence WHERE employee_id = 'a2'`)).rows[0].n, 500)
})
