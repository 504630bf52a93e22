// Issue 6 (seed 002): callback tasks written after hours are worked once the office opens
// and an agent of the right group is ready — agent first, then the client, through the
// inbound ESL originate — claimed atomically so two nodes never dial one task twice, and
// retried on schedule until the client is reached or the attempts run out.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { InboundSimulator } from './support/esl-inbound-sim.ts'
import type { BridgeTarget } from './support/fs-simulator.ts'
import { InboundClient } from '../src/esl/inbound-client.ts'
import { OutboundCalls } from '../src/calls/click-to-call.ts'
import { CallbackWorker } from '../src/callbacks/worker.ts'
import { callbackTarget } from '../src/callbacks/target.ts'
import { PresenceStore } from '../src/acd/presence.ts'
import { EventBus } from '../src/events/bus.ts'
import { buildDirectory, type ClientInput, type Employee } from '../src/crm/directory.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { callbacksRoutes } from '../src/http/plugins/callbacks.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { silentLogger } from '../src/log.ts'

// Monday 23 Nov 2026: 08:00 in Moscow (closed), then 09:30 (open).
const CLOSED = new Date('2026-11-23T05:00:00Z')
const OPEN = new Date('2026-11-23T06:30:00Z')
const employees: Employee[] = [
  { id: 'a-1', name: 'Анна', role: 'agent', groupId: 'sales-1', extension: '1001' },
  { id: 'a-2', name: 'Борис', role: 'agent', groupId: 'sales-1', extension: '1002' },
  { id: 'a-3', name: 'Вера', role: 'agent', groupId: 'sales-1', extension: '1003' },
  { id: 'm-nsk', name: 'Менеджер НСК', role: 'manager', groupId: 'sales-2', extension: '2001' },
]
const clients: ClientInput[] = [
  { id: 'c-1', name: 'ООО Ромашка', segment: 'B', kind: 'client', phones: ['+79161234567'] },
  { id: 'c-nsk', name: 'ООО Сибирь', segment: 'A', kind: 'client', region: 'Новосибирск', assignedManagerId: 'm-nsk', phones: ['+73832123456'] },
]
// How each client's phone behaves when the agent's call is bridged out (script ms, 1/100 speed).
const clientPhones: Record<string, BridgeTarget> = {
  '+79161234567': { answerAfterMs: 2000, hangupAfterMs: 30_000 },
  '+79990000001': { answerAfterMs: 1000, hangupAfterMs: 30_000 },
  '+79990000002': { answerAfterMs: 1000, hangupAfterMs: 30_000 },
  '+79990000003': { answerAfterMs: 1000, hangupAfterMs: 30_000 },
  '+79997770000': { noAnswer: true },
}

const db = await startTestDatabase()
t.teardown(() => db.close())
const log = silentLogger()
const h = await startCallHarness(db, {
  employees, clients, log,
  configure: (cfg) => { cfg.callbacks = { ...cfg.callbacks, maxAttempts: 2, retryDelayMin: 1, pollIntervalSec: 1, reachedTalkSec: 10 } },
})
t.teardown(() => h.close())
const directory = buildDirectory({ clients, employees, groups: h.config.groups }, { defaultRegion: h.config.defaultRegion })
for (const c of clients) for (const p of c.phones) await db.pool.query('INSERT INTO client_phones (phone, client_id) VALUES ($1, $2)', [p, c.id])

const fsInbound = new InboundSimulator({
  originate: {
    fs: h.sim,
    targets: { 'user/1003': { noAnswer: true } },
    script: (spec) => ({ bridgeTargets: { [`sofia/gateway/trunk/${spec.vars.switchboard_callee}`]: clientPhones[spec.vars.switchboard_callee] ?? { failCause: 'UNALLOCATED_NUMBER' } } }),
  },
})
const fsPort = await fsInbound.listen()
t.teardown(() => fsInbound.close())

/** One Switchboard node's originating side: its own inbound socket, presence view and worker, sharing Postgres. */
async function node(name: string, clock: { now(): Date }, presence?: PresenceStore, opts: { socketAddress?: string; socketWaitMs?: number } = {}) {
  const inbound = new InboundClient({ port: fsPort, password: 'ClueCon', logger: log })
  await inbound.start()
  t.teardown(() => inbound.stop())
  const events = presence ? h.events : new EventBus()
  const own = presence ?? new PresenceStore(db.pool, log, events)
  await own.load()
  const outbound = new OutboundCalls({
    log, pool: db.pool, events: h.events, presence: own, directory: () => directory, config: () => h.config, inbound,
    socketAddress: () => opts.socketAddress ?? `127.0.0.1:${h.sim.opts.port}`, socketWaitMs: opts.socketWaitMs,
  })
  const worker = new CallbackWorker({ pool: db.pool, log, config: () => h.config, directory: () => directory, presence: own, outbound, canOriginate: () => inbound.connected, clock, node: name })
  t.teardown(() => worker.stop())
  return { worker, presence: own }
}

let now = CLOSED
const clock = { now: () => now }
const a = await node('node-a', clock, h.presence)

async function missedAfterHours(phone: string, clientId: string | null, did = '+74951230000'): Promise<string> {
  const uuid = randomUUID()
  await db.pool.query(`INSERT INTO calls (uuid, direction, caller, did, client_id, started_at, ended_at, outcome) VALUES ($1, 'inbound', $2, $3, $4, $5, $5, 'after_hours')`, [uuid, phone, did, clientId, CLOSED])
  const r = await db.pool.query<{ id: string }>(`INSERT INTO callbacks (call_uuid, client_id, phone, reason, next_attempt_at) VALUES ($1, $2, $3, 'after_hours', $4) RETURNING id::text`, [uuid, clientId, phone, CLOSED])
  return r.rows[0].id
}
const row = async (id: string) => (await db.pool.query('SELECT * FROM callbacks WHERE id = $1', [id])).rows[0]
const originatesFor = (id: string) => fsInbound.originates.filter((o) => o.spec.vars.switchboard_callback_id === id)
const finished = (id: string, n = 1) => waitFor(`callback ${id} attempt ${n} finished`, async () => [...a.worker.finished, ...extraFinished()].filter((f) => f.callbackId === id).length >= n)
let extraFinished: () => Array<{ callbackId: string }> = () => []
/** Presence as Postgres has it (another node's store may have changed it), then this node's view refreshed. */
async function waitState(ids: string[], state: string) {
  await waitFor(`${ids.join(', ')} ${state}`, async () => {
    const r = await db.pool.query<{ state: string }>('SELECT state FROM agent_presence WHERE employee_id = ANY($1::text[])', [ids])
    return r.rows.length === ids.length && r.rows.every((x) => x.state === state)
  })
  await h.presence.load()
}

t.test('target: queue, the client\'s manager, the DID\'s office fallback queue, the default queue', async (t) => {
  const cfg = h.config
  t.match(callbackTarget({ queueId: 'sales-nsk', clientId: null, did: null }, cfg, directory), { groupIds: ['sales-2'], officeId: 'nsk', preferred: [] })
  t.match(callbackTarget({ queueId: null, clientId: 'c-nsk', did: '+74951230000' }, cfg, directory), { preferred: ['m-nsk'], groupIds: ['sales-2'], officeId: 'nsk' })
  t.match(callbackTarget({ queueId: null, clientId: 'c-1', did: '74951230000' }, cfg, directory), { groupIds: ['sales-1'], officeId: 'msk', reason: /fallback|queue sales/ })
  t.equal(callbackTarget({ queueId: null, clientId: null, did: null }, cfg, directory), null, 'nothing to route by')
  const withDefault = { ...cfg, callbacks: { ...cfg.callbacks, defaultQueue: 'callcentre' } }
  t.match(callbackTarget({ queueId: null, clientId: null, did: null }, withDefault, directory), { groupIds: ['callcentre'], officeId: 'ekb-cc' })
})

t.test('an after-hours callback is dialled once the office opens and an agent is ready; done when the client was reached', async (t) => {
  const id = await missedAfterHours('+79161234567', 'c-1')
  t.same(await a.worker.tick(), [], 'office closed (08:00 in Moscow): nothing dialled')
  now = OPEN
  t.same(await a.worker.tick(), [], 'office open but nobody ready: nothing dialled')
  t.equal(fsInbound.originates.length, 0)
  await h.presence.set('a-1', 'ready')
  t.same(await a.worker.tick(), [id], 'dialled as soon as an agent of the group is ready')
  t.equal((await row(id)).state, 'in_progress')
  t.equal(h.presence.get('a-1'), 'on_call', 'the agent is claimed for it')
  await finished(id)
  const cb = await row(id)
  t.match(cb, { state: 'done', outcome: 'completed', attempts: 1, agent_id: 'a-1', claimed_by: null, last_cause: 'NORMAL_CLEARING' })
  t.ok(cb.done_at, 'closed with a time')
  const [o] = originatesFor(id)
  t.equal(o.spec.endpoint, 'user/1001', "the agent's phone first")
  t.match(o.spec.vars, { switchboard_origin: 'callback', switchboard_direction: 'outbound', switchboard_callee: '+79161234567', switchboard_client_id: 'c-1', origination_uuid: cb.last_call_uuid })
  const attempts = (await db.pool.query('SELECT * FROM callback_attempts WHERE callback_id = $1', [id])).rows
  t.match(attempts, [{ call_uuid: cb.last_call_uuid, agent_id: 'a-1', node: 'node-a', outcome: 'completed' }], 'the attempt, linked to its call')
  t.ok(attempts[0].talk_sec >= 25, `talked ${attempts[0].talk_sec} s`)
  const call = await waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [cb.last_call_uuid])).rows[0])
  t.match(call, { direction: 'outbound', agent_id: 'a-1', client_id: 'c-1', callee: '+79161234567', outcome: 'answered', counted: true }, 'a counted outbound call on the client card')
  const rec = await waitFor('recording', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [cb.last_call_uuid])).rows[0], 30_000)
  t.match(rec, { agent_id: 'a-1', client_id: 'c-1' })
  await waitState(['a-1'], 'ready')
  t.same(await a.worker.tick(), [], 'a done task is never dialled again')
})

t.test('two nodes polling together never dial one callback twice', async (t) => {
  const b = await node('node-b', clock)
  extraFinished = () => b.worker.finished
  const ids = [await missedAfterHours('+79990000001', null), await missedAfterHours('+79990000002', null), await missedAfterHours('+79990000003', null)]
  await h.presence.set('a-2', 'ready')
  await b.presence.load()
  // a-1 and a-2 ready, three tasks, both nodes at once: two tasks start, once each.
  const [sa, sb] = await Promise.all([a.worker.tick(), b.worker.tick()])
  const started = [...sa, ...sb]
  t.equal(started.length, 2, `two agents → two tasks started (node-a ${sa.length}, node-b ${sb.length})`)
  t.equal(new Set(started).size, 2, 'no task started by both nodes')
  for (const id of started) await finished(id)
  await waitState(['a-1', 'a-2'], 'ready')
  await b.presence.load()
  const [sa2, sb2] = await Promise.all([a.worker.tick(), b.worker.tick()])
  t.equal([...sa2, ...sb2].length, 1, 'the third task in the next poll')
  for (const id of [...sa2, ...sb2]) await finished(id)
  for (const id of ids) {
    t.equal(originatesFor(id).length, 1, `callback ${id} dialled exactly once`)
    t.match(await row(id), { state: 'done', attempts: 1 })
  }
  const calls = await db.pool.query('SELECT count(*)::int AS n FROM callback_attempts WHERE callback_id = ANY($1::bigint[])', [ids])
  t.equal(calls.rows[0].n, 3, 'three attempts for three tasks')
  await waitState(['a-1', 'a-2'], 'ready')
  await h.presence.set('a-2', 'not_ready', 'lunch')
  extraFinished = () => []
})

t.test('client does not answer: retried after the delay, failed after maxAttempts', async (t) => {
  const id = await missedAfterHours('+79997770000', null)
  t.same(await a.worker.tick(), [id])
  await finished(id)
  let cb = await row(id)
  t.match(cb, { state: 'open', outcome: 'no_answer', attempts: 1, last_cause: 'NO_ANSWER' }, 'reopened with the attempt counted')
  const delaySec = (cb.next_attempt_at.getTime() - cb.last_attempt_at.getTime()) / 1000
  t.ok(delaySec >= 55 && delaySec <= 65, `next attempt in retryDelayMin (${delaySec.toFixed(0)} s)`)
  await waitState(['a-1'], 'ready')
  now = new Date(Date.now() + 10_000)
  const office = h.config.offices.find((o) => o.id === 'msk')!
  office.hours = { ...office.hours, mon: '00:00-24:00', tue: '00:00-24:00', wed: '00:00-24:00', thu: '00:00-24:00', fri: '00:00-24:00', sat: '00:00-24:00', sun: '00:00-24:00' }
  office.calendar = { holidays: [], shortDays: [], workdays: [] }
  h.config.calendar = { holidays: [], shortDays: [], workdays: [] }
  t.same(await a.worker.tick(), [], 'not before the retry delay')
  now = new Date(Date.now() + 120_000)
  t.same(await a.worker.tick(), [id], 'after the delay: the second attempt')
  await finished(id, 2)
  cb = await row(id)
  t.match(cb, { state: 'failed', outcome: 'no_answer', attempts: 2 }, 'maxAttempts (2) reached: failed')
  t.ok(cb.done_at)
  t.equal(originatesFor(id).length, 2)
  await waitState(['a-1'], 'ready')
  t.same(await a.worker.tick(), [], 'never again')
})

t.test("the agent does not pick up: not the client's attempt; the agent goes not_ready", async (t) => {
  await h.presence.set('a-1', 'not_ready', 'meeting')
  await h.presence.set('a-3', 'ready')
  const id = await missedAfterHours('+79161234567', 'c-1')
  t.same(await a.worker.tick(), [id])
  await finished(id)
  t.match(await row(id), { state: 'open', outcome: 'agent_no_answer', attempts: 0 }, 'the attempt does not count against the client')
  t.equal(h.presence.get('a-3'), 'not_ready', 'rang out unanswered → not_ready (no more calls to an empty desk)')
  await db.pool.query(`UPDATE callbacks SET state = 'cancelled' WHERE id = $1`, [id])
})

t.test('tasks nobody can work now do not starve the others', async (t) => {
  // 60 older tasks with nothing to route by (no queue, client or DID), then one for the Moscow office.
  await db.pool.query(`INSERT INTO callbacks (phone, reason, next_attempt_at) SELECT '+7999111' || lpad(g::text, 4, '0'), 'abandoned', now() - interval '1 day' FROM generate_series(1, 60) g`)
  const id = await missedAfterHours('+79990000001', null)
  await db.pool.query(`UPDATE callbacks SET next_attempt_at = now() WHERE id = $1`, [id])
  await h.presence.set('a-2', 'ready')
  t.same(await a.worker.tick(), [id], 'found past the first page of unroutable tasks')
  await finished(id)
  t.match(await row(id), { state: 'done', agent_id: 'a-2' })
  await waitState(['a-2'], 'ready')
})

t.test('the answered agent leg never reaches our socket: hung up, not counted against the client', async (t) => {
  // A node advertising an address nobody listens on (misconfigured ESL_ADVERTISE_ADDR).
  const lost = await node('node-lost', clock, h.presence, { socketAddress: '127.0.0.1:9', socketWaitMs: 300 })
  const id = await missedAfterHours('+79990000002', null)
  await db.pool.query(`UPDATE callbacks SET next_attempt_at = now() WHERE id = $1`, [id])
  t.same(await lost.worker.tick(), [id])
  await waitFor('attempt finished', async () => lost.worker.finished.some((f) => f.callbackId === id))
  t.match(await row(id), { state: 'open', outcome: 'switchboard_error', attempts: 0, last_cause: 'SOCKET_NOT_REACHED' })
  t.ok(fsInbound.commands.some((c) => c.line.startsWith('api uuid_kill ')), 'the orphaned leg is hung up')
  await waitState(['a-2'], 'ready')
  await db.pool.query(`UPDATE callbacks SET state = 'cancelled' WHERE id = $1`, [id])
})

t.test('GET /api/callbacks for supervisors', async (t) => {
  const app = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [callbacksRoutes({ pool: db.pool })] })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const sup = await createApiToken(db.pool, { id: 'sup', name: 'Sup', role: 'supervisor' })
  const agent = await createApiToken(db.pool, { id: 'ag', name: 'Ag', role: 'agent', employeeId: 'a-1' })
  const get = (qs: string, token = sup) => fetch(`${base}/api/callbacks?${qs}`, { headers: { authorization: `Bearer ${token}` } })
  const done = await (await get('state=done')).json() as { items: Array<{ state: string; outcome: string; attempts: number; lastCallUuid: string }> }
  t.equal(done.items.length, 5)
  t.ok(done.items.every((c) => c.state === 'done' && c.outcome === 'completed' && c.lastCallUuid), 'with outcome and the call')
  const failed = await (await get('state=failed')).json() as { items: Array<{ outcome: string; attempts: number }> }
  t.match(failed.items, [{ outcome: 'no_answer', attempts: 2 }])
  const page = await (await get('limit=2')).json() as { items: unknown[]; nextBeforeId: number }
  t.equal(page.items.length, 2)
  const next = await (await get(`limit=2&beforeId=${page.nextBeforeId}`)).json() as { items: unknown[] }
  t.equal(next.items.length, 2, 'paged by id')
  t.equal((await get('state=bogus')).status, 400)
  t.equal((await get('', agent)).status, 403, 'agents may not list callbacks')
})
