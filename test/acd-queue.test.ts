import t from 'tap'
import { acdFixture, answers, targets, startTestDatabase, waitFor } from './acd-fixture.ts'

// ACD through the wire: priority order, the four strategies, no-answer, wrap-up, two nodes.
const db = await startTestDatabase()
t.teardown(() => db.close())
const { harness, call, cdr, offers, waiting } = acdFixture(db)

t.test('priority: a segment A client and a VIP jump the queue; equal priorities by wait', async (t) => {
  const h = await harness(t, {})
  const bt = targets({ 'user/2001': answers(20, 400) })
  const u1 = call(h, '79030000001', { bridgeTargets: bt })
  await waiting(1)
  const u2 = call(h, '79030000002', { bridgeTargets: bt })
  await waiting(2)
  const a = call(h, '79160000001', { bridgeTargets: bt })
  await waiting(3)
  const v = call(h, '79160000003', { bridgeTargets: bt })
  await waiting(4)
  const rows = (await db.pool.query('SELECT call_uuid, priority FROM queue_calls ORDER BY priority DESC, entered_at')).rows
  t.same(rows.map((r) => r.call_uuid), [v.uuid, a.uuid, u1.uuid, u2.uuid], 'VIP (B 5 + 100) > A (10) > unknown (0) by wait')
  await h.presence.set('a1', 'ready')
  await Promise.all([u1.done, u2.done, a.done, v.done])
  const o = await offers([u1.uuid, u2.uuid, a.uuid, v.uuid])
  t.same(o.map((r) => r.call_uuid), [v.uuid, a.uuid, u1.uuid, u2.uuid], 'the one agent took them in head order')
  t.ok(o.every((r) => r.employee_id === 'a1' && r.outcome === 'answered'))
  for (const c of [u1, u2, a, v]) t.equal((await cdr(c.uuid)).outcome, 'answered')
})

t.test('longest-idle: the agent whose last call ended first gets the call', async (t) => {
  const h = await harness(t, {}, { ready: ['a1', 'a2', 'a3'] })
  await db.pool.query(`UPDATE agent_presence SET last_call_ended_at = now() - (CASE employee_id WHEN 'a1' THEN 60 WHEN 'a2' THEN 600 ELSE 5 END) * interval '1 second' WHERE employee_id IN ('a1','a2','a3')`)
  const c = call(h, '79030000011', { bridgeTargets: targets({ 'user/2001': answers(), 'user/2002': answers(20, 300), 'user/2003': answers() }) })
  await c.done
  t.equal((await cdr(c.uuid)).agent_id, 'a2')
  t.same((await offers([c.uuid])).map((r) => [r.employee_id, r.strategy]), [['a2', 'longest-idle']])
})

t.test('round-robin: consecutive calls walk the agents in order', async (t) => {
  const h = await harness(t, { strategy: 'round-robin' }, { ready: ['a1', 'a2', 'a3'] })
  const bt = targets({ 'user/2001': answers(20, 200), 'user/2002': answers(20, 200), 'user/2003': answers(20, 200) })
  const got: string[] = []
  for (let i = 0; i < 4; i++) {
    const c = call(h, `7903000002${i}`, { bridgeTargets: bt })
    await c.done
    got.push((await cdr(c.uuid)).agent_id)
    await waitFor('all ready again', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM agent_presence WHERE employee_id IN ('a1','a2','a3') AND state = 'ready'`)).rows[0].n === 3, 5000, 20)
  }
  t.same(got, ['a1', 'a2', 'a3', 'a1'])
})

t.test('ring-all: every ready agent rings, the first to answer talks, the others are ready at once', async (t) => {
  const h = await harness(t, { strategy: 'ring-all' }, { ready: ['a1', 'a2', 'a3'] })
  const c = call(h, '79030000031', { bridgeTargets: targets({ 'user/2001': answers(400), 'user/2002': answers(40, 20_000), 'user/2003': { noAnswer: true } }) })
  await waitFor('a2 talking', async () => h.service.session(c.uuid)?.summary().agentId === 'a2', 10_000, 20)
  const states = async () => (await db.pool.query(`SELECT state FROM agent_presence WHERE employee_id IN ('a1','a2','a3') ORDER BY employee_id`)).rows.map((r) => r.state).join(',')
  await waitFor('the others released', async () => (await states()) === 'ready,on_call,ready', 1000, 10)
  t.ok(h.service.session(c.uuid), 'while a2 is still talking to the caller')
  await c.done
  const o = await offers([c.uuid])
  t.equal(new Set(o.map((r) => r.offer_id)).size, 1, 'one offer')
  t.same(o.map((r) => [r.employee_id, r.outcome]).sort(), [['a1', 'lost_race'], ['a2', 'answered'], ['a3', 'lost_race']])
  const legs = (await db.pool.query(`SELECT employee_id, answered_at IS NOT NULL AS answered, hangup_cause FROM legs WHERE call_uuid = $1 AND party <> 'caller' ORDER BY employee_id`, [c.uuid])).rows
  t.same(legs.map((l) => [l.employee_id, l.answered]), [['a1', false], ['a2', true], ['a3', false]], 'a leg per rung agent')
  t.equal((await cdr(c.uuid)).agent_id, 'a2')
})

t.test('sticky: the last agent of this client if ready, else the fallback strategy', async (t) => {
  const h = await harness(t, { strategy: 'sticky' }, { ready: ['a1', 'a2', 'a3'] })
  await db.pool.query(`INSERT INTO calls (uuid, direction, caller, client_id, agent_id, started_at, ended_at, outcome) VALUES (gen_random_uuid(), 'inbound', '+79160000002', 'cB', 'a3', now() - interval '2 days', now() - interval '2 days', 'answered')`)
  await db.pool.query(`UPDATE agent_presence SET last_call_ended_at = now() - interval '1 hour' WHERE employee_id = 'a1'`)
  const bt = targets({ 'user/2001': answers(20, 200), 'user/2002': answers(20, 200), 'user/2003': answers(20, 200) })
  const c1 = call(h, '79160000002', { bridgeTargets: bt })
  await c1.done
  t.equal((await cdr(c1.uuid)).agent_id, 'a3', 'the client\'s last agent')
  t.equal((await offers([c1.uuid]))[0].strategy, 'sticky')
  await h.presence.set('a3', 'not_ready', 'lunch')
  const c2 = call(h, '79160000002', { bridgeTargets: bt })
  await c2.done
  t.equal((await cdr(c2.uuid)).agent_id, 'a1', 'sticky agent away: longest idle instead')
  t.equal((await offers([c2.uuid]))[0].strategy, 'longest-idle')
})

t.test('no answer: the agent goes not_ready with a reason and the next agent gets the call', async (t) => {
  const h = await harness(t, { agentTimeoutSec: 2 }, { ready: ['a1', 'a2'] })
  await db.pool.query(`UPDATE agent_presence SET last_call_ended_at = now() - interval '1 hour' WHERE employee_id = 'a1'`)
  const c = call(h, '79030000041', { bridgeTargets: targets({ 'user/2001': { noAnswer: true }, 'user/2002': answers(20, 300) }) })
  await c.done
  t.equal((await cdr(c.uuid)).agent_id, 'a2')
  const a1 = (await db.pool.query(`SELECT state, reason FROM agent_presence WHERE employee_id = 'a1'`)).rows[0]
  t.equal(a1.state, 'not_ready')
  t.match(a1.reason, /no answer \(NO_ANSWER\)/)
  t.same((await offers([c.uuid])).map((r) => [r.employee_id, r.outcome]), [['a1', 'no_answer'], ['a2', 'answered']])
})

t.test('wrap-up: after the call the agent is in wrap_up, then ready by itself; a wrap-up nobody times ends by the sweep', async (t) => {
  const h = await harness(t, { wrapUpSec: 1 }, { ready: ['a1'] })
  const c = call(h, '79030000051', { bridgeTargets: targets({ 'user/2001': answers(20, 200) }) })
  await c.done
  const during = (await db.pool.query(`SELECT state, wrap_up_until FROM agent_presence WHERE employee_id = 'a1'`)).rows[0]
  t.equal(during.state, 'wrap_up')
  t.ok(during.wrap_up_until, 'the end of wrap-up is stored with the state')
  await waitFor('a1 ready after wrap-up', async () => (await db.pool.query(`SELECT state FROM agent_presence WHERE employee_id = 'a1'`)).rows[0].state === 'ready', 4000, 50)
  // As if the node that started this wrap-up had died: no timer anywhere, only the stored end.
  await h.presence.startWrapUp('a4', 1, 'after call on a node that died')
  await waitFor('a4 ready by the sweep', async () => (await db.pool.query(`SELECT state FROM agent_presence WHERE employee_id = 'a4'`)).rows[0].state === 'ready', 4000, 50)
  const hist = (await db.pool.query(`SELECT state FROM agent_presence_history WHERE employee_id = 'a4' ORDER BY id DESC LIMIT 2`)).rows
  t.same(hist.map((r) => r.state), ['ready', 'wrap_up'], 'history kept')
})

t.test('two nodes on one Postgres: every caller answered once, no agent offered two calls at once', async (t) => {
  const ha = await harness(t, { agentTimeoutSec: 5 }, { ready: ['a1', 'a2', 'a3', 'a4'], node: 'node-a' })
  const hb = await harness(t, { agentTimeoutSec: 5 }, { node: 'node-b', fresh: false })
  const bt = targets(Object.fromEntries([1, 2, 3, 4].map((n) => [`user/200${n}`, { answerAfterMs: 20 + n * 10, hangupAfterMs: 600 }])))
  const calls = Array.from({ length: 10 }, (_, i) => call(i % 2 ? hb : ha, `7903100${String(i).padStart(4, '0')}`, { bridgeTargets: bt }))
  await Promise.all(calls.map((c) => c.done))
  const uuids = calls.map((c) => c.uuid)
  for (const c of calls) t.equal((await cdr(c.uuid)).outcome, 'answered', `call ${c.uuid.slice(0, 8)} answered`)
  const o = await offers(uuids)
  t.equal(o.length, 10, 'one offer per caller')
  t.same([...new Set(o.map((r) => r.node.split(':')[0]))].sort(), ['node-a', 'node-b'], 'callers of both nodes')
  const overlaps = (rows: Array<{ offered_at: Date; ended_at: Date }>) => {
    const s = [...rows].sort((x, y) => x.offered_at.getTime() - y.offered_at.getTime())
    return s.some((r, i) => i > 0 && r.offered_at < s[i - 1].ended_at)
  }
  for (const id of ['a1', 'a2', 'a3', 'a4']) t.notOk(overlaps(o.filter((r) => r.employee_id === id)), `${id} never had two offers at once`)
})
