import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { waitFor } from './support/pipeline.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { agentsRoutes } from '../src/http/plugins/agents.ts'
import { queuesRoutes } from '../src/http/plugins/queues.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { PresenceStore } from '../src/acd/presence.ts'
import { Acd } from '../src/acd/dispatcher.ts'
import { EventBus } from '../src/events/bus.ts'
import { buildDirectory, type Employee } from '../src/crm/directory.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'

// The agent-state and queue API on a real server (fastify, auth, Postgres).
const db = await startTestDatabase()
t.teardown(() => db.close())
const log = silentLogger()
const employees: Employee[] = [
  { id: 'a1', name: 'Агент 1', role: 'agent', groupId: 'tg', extension: '2001' },
  { id: 'a2', name: 'Агент 2', role: 'agent', groupId: 'tg', extension: '2002' },
  { id: 'a3', name: 'Агент 3', role: 'agent', groupId: 'other', extension: '2003' },
]
for (const e of employees) await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5)', [e.id, e.name, e.role, e.groupId, e.extension])
const config = await loadSwitchboardFile(EXAMPLE_CONFIG)
config.groups.push({ id: 'tg', name: 'Test', officeId: 'msk' }, { id: 'other', name: 'Other', officeId: 'msk' })
config.queues.push(
  { ...config.queues[0], id: 'tq', name: 'Test queue', groupIds: ['tg'], priorityRules: [] },
  { ...config.queues[0], id: 'oq', name: 'Other queue', groupIds: ['other'], priorityRules: [] },
)
const directory = buildDirectory({ clients: [], employees, groups: config.groups }, { defaultRegion: 'RU' })
const events = new EventBus()
const presence = new PresenceStore(db.pool, log, events, { node: Acd.nodeIdFor('api-test') })
const acd = new Acd({ pool: db.pool, log, presence, config: () => config, directory: () => directory, events, node: 'api-test' })
await acd.start()
t.teardown(() => acd.stop())
const app = await buildHttpApp({
  log, pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [agentsRoutes({ pool: db.pool, presence, acd, directory: () => directory, config: () => config }), queuesRoutes({ acd, directory: () => directory, config: () => config })],
})
t.teardown(() => app.close())
const token = {
  a1: await createApiToken(db.pool, { id: 'u-a1', name: 'A1', role: 'agent', employeeId: 'a1' }),
  a3: await createApiToken(db.pool, { id: 'u-a3', name: 'A3', role: 'agent', employeeId: 'a3' }),
  sup: await createApiToken(db.pool, { id: 'u-sup', name: 'Sup', role: 'supervisor' }),
  qa: await createApiToken(db.pool, { id: 'u-qa', name: 'QA', role: 'qa' }),
}
const as = (who: keyof typeof token) => ({ authorization: `Bearer ${token[who]}` })
const put = (who: keyof typeof token, id: string, body: object) => app.inject({ method: 'PUT', url: `/api/agents/${id}/state`, headers: as(who), payload: body })

t.test('PUT state: agents for themselves, supervisors for anyone; ready twice is no change', async (t) => {
  const seen: string[] = []
  const off = events.on('agent.state', (e) => seen.push(`${e.employeeId}:${e.state}`))
  t.teardown(off)
  let r = await put('a1', 'a1', { state: 'ready' })
  t.equal(r.statusCode, 200, r.body)
  t.match(r.json(), { id: 'a1', state: 'ready', changed: true })
  r = await put('a1', 'a1', { state: 'ready' })
  t.match(r.json(), { changed: false }, 'an agent set ready twice: no new history row')
  t.same(seen, ['a1:ready'], 'one agent.state event')
  r = await put('a1', 'a2', { state: 'ready' })
  t.equal(r.statusCode, 403, 'an agent cannot change a colleague')
  t.match(r.json().detail, /own state/)
  r = await put('sup', 'a2', { state: 'not_ready', reason: 'coaching' })
  t.equal(r.statusCode, 200)
  t.match(r.json(), { state: 'not_ready', reason: 'coaching' })
  t.equal((await put('qa', 'a2', { state: 'ready' })).statusCode, 403, 'qa may not')
  t.equal((await put('sup', 'nobody', { state: 'ready' })).statusCode, 404)
  t.equal((await put('sup', 'a2', { state: 'dancing' })).statusCode, 400)
  t.equal((await put('sup', 'a2', { state: 'ready', reason: 'x' })).statusCode, 400, 'a reason only with not_ready')
  t.equal((await put('sup', 'a2', { state: 'ready', extra: 1 })).statusCode, 400, 'unknown fields refused')
})

t.test('invalid transitions are 409 with a message that says why', async (t) => {
  let r = await put('sup', 'a1', { state: 'on_call' })
  t.equal(r.statusCode, 409)
  t.match(r.json(), { code: 'invalid_transition', detail: /set by calls only/ })
  t.equal((await put('sup', 'a1', { state: 'wrap_up' })).statusCode, 409)
  const callUuid = randomUUID()
  t.ok(await presence.claim('a1', callUuid), 'a1 takes a call')
  r = await put('a1', 'a1', { state: 'not_ready', reason: 'break' })
  t.equal(r.statusCode, 409)
  t.match(r.json().detail, /on a call; the state changes when the call ends/)
  const list = (await app.inject({ method: 'GET', url: '/api/agents', headers: as('sup') })).json()
  t.match(list.find((a: { id: string }) => a.id === 'a1'), { state: 'on_call', currentCall: callUuid, queues: ['tq'] }, 'the list shows the current call')
  const own = (await app.inject({ method: 'GET', url: '/api/agents', headers: as('a3') })).json()
  t.equal(own.find((a: { id: string }) => a.id === 'a1').currentCall, null, 'an agent does not see a colleague\'s call')
  await presence.set('a1', 'ready')
})

t.test('history: entries and seconds per state in a window; agents only their own', async (t) => {
  const r = await app.inject({ method: 'GET', url: '/api/agents/a1/history', headers: as('a1') })
  t.equal(r.statusCode, 200, r.body)
  const h = r.json()
  t.same(h.entries.map((e: { state: string }) => e.state), ['ready', 'on_call', 'ready'])
  t.ok(h.totalsSec.ready >= 0 && h.totalsSec.on_call >= 0)
  t.equal((await app.inject({ method: 'GET', url: '/api/agents/a2/history', headers: as('a1') })).statusCode, 403)
  const future = new Date(Date.now() + 3_600_000).toISOString()
  const empty = (await app.inject({ method: 'GET', url: `/api/agents/a1/history?from=${future}&to=${new Date(Date.now() + 7_200_000).toISOString()}`, headers: as('sup') })).json()
  t.same(empty.entries, [], 'nothing in a future window')
  t.equal((await app.inject({ method: 'GET', url: `/api/agents/a1/history?from=${future}&to=${new Date().toISOString()}`, headers: as('sup') })).statusCode, 400, 'from after to')
  t.equal((await app.inject({ method: 'GET', url: '/api/agents/a1/history?from=yesterday', headers: as('sup') })).statusCode, 400)
})

t.test('GET /api/queues: live figures from Postgres; agents see their own queues only', async (t) => {
  await presence.set('a2', 'ready')
  const c1 = randomUUID()
  t.equal(await acd.enqueue({ callUuid: c1, queueId: 'tq', priority: 0, enteredAt: new Date(), clientId: null, caller: '+79030000001', stickyAgentId: null }, 50), 'queued')
  await db.pool.query(`UPDATE queue_calls SET queue_entered_at = now() - interval '42 seconds' WHERE call_uuid = $1`, [c1])
  const all = (await app.inject({ method: 'GET', url: '/api/queues', headers: as('sup') })).json()
  const tq = all.find((q: { id: string }) => q.id === 'tq')
  t.ok(tq.longestWaitSec >= 42, `longest wait ${tq.longestWaitSec}`)
  t.equal(tq.members, 2)
  t.ok(tq.waiting + tq.ringing === 1, 'one caller (waiting, or already offered: agents are ready)')
  t.ok(all.length > 2, 'every configured queue')
  const mine = (await app.inject({ method: 'GET', url: '/api/queues', headers: as('a3') })).json()
  t.same(mine.map((q: { id: string }) => q.id), ['oq'], 'a3 serves oq only')
  t.equal((await app.inject({ method: 'GET', url: '/api/queues', headers: as('qa') })).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/api/queues' })).statusCode, 401)
  await acd.leave(c1)
})

t.test('a node that stops heartbeating loses its callers and its agents; an offer nobody takes goes back', async (t) => {
  const dead = 'crashed-node:0000'
  await db.pool.query(`INSERT INTO acd_nodes (node_id, heartbeat_at) VALUES ($1, now() - interval '10 minutes')`, [dead])
  const lost = randomUUID()
  await db.pool.query(`INSERT INTO queue_calls (call_uuid, queue_id, priority, node) VALUES ($1, 'tq', 0, $2)`, [lost, dead])
  await presence.set('a2', 'ready')
  const talking = randomUUID()
  await db.pool.query(`UPDATE agent_presence SET state = 'on_call', call_uuid = $1, claimed_by = $2 WHERE employee_id = 'a2'`, [talking, dead])
  // An offer made for one of our callers that this node never took (as if its NOTIFY and polls were lost).
  const untaken = randomUUID()
  await presence.set('a1', 'ready')
  t.equal(await acd.enqueue({ callUuid: untaken, queueId: 'tq', priority: 0, enteredAt: new Date(), clientId: null, caller: null, stickyAgentId: null }, 50), 'queued')
  await waitFor('offered to a1', async () => (await db.pool.query(`SELECT state FROM queue_calls WHERE call_uuid = $1`, [untaken])).rows[0]?.state === 'offered', 5000, 20)
  await db.pool.query(`UPDATE queue_calls SET offered_at = now() - interval '1 hour' WHERE call_uuid = $1`, [untaken])
  await acd.reap()
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM queue_calls WHERE call_uuid = $1', [lost])).rows[0].n, 0, 'the dead node\'s caller is off the list')
  t.match((await presence.row('a2')), { state: 'not_ready', reason: /node crashed-node:0000 lost during a call/ })
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM acd_nodes WHERE node_id = $1', [dead])).rows[0].n, 0)
  const back = (await db.pool.query(`SELECT state FROM queue_calls WHERE call_uuid = $1`, [untaken])).rows[0]
  t.ok(back.state === 'waiting' || back.state === 'offered', 'the untaken offer went back to the list (and may be offered again)')
  t.match(await db.pool.query(`SELECT outcome FROM acd_offers WHERE call_uuid = $1 ORDER BY id LIMIT 1`, [untaken]).then((r) => r.rows[0]), { outcome: 'released' })
  await acd.leave(untaken)
})
