// Issue 11 (seeds 000, 004): outbound call plans. An admin uploads a list; bad rows are
// rejected with their line and reason; the dialler works the rest progressively — one call
// per ready agent, the agent's phone first (inbound-socket originate), then the client over
// the trunk (outbound socket: recorded, CDR) — inside windows and office hours, with
// retries, pause/cancel, and rows of a dead node taken back. FreeSWITCH is the wire
// simulator on both sockets; Postgres and the HTTP server are real.
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
import { CallPlanDialler } from '../src/call-plans/dialler.ts'
import { PresenceStore } from '../src/acd/presence.ts'
import { buildDirectory, type ClientInput, type Employee } from '../src/crm/directory.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { callPlansRoutes } from '../src/http/plugins/call-plans.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { silentLogger } from '../src/log.ts'

// Monday 23 Nov 2026, 09:30 in Moscow: the sales office (msk, 09:00-18:00) is open.
const OPEN = new Date('2026-11-23T06:30:00Z')
const employees: Employee[] = [
  { id: 'a-1', name: 'Анна', role: 'agent', groupId: 'sales-1', extension: '1001' },
  { id: 'a-2', name: 'Борис', role: 'agent', groupId: 'sales-1', extension: '1002' },
  { id: 'a-3', name: 'Вера', role: 'agent', groupId: 'sales-1', extension: '1003' },
  { id: 'no-phone', name: 'Без телефона', role: 'agent', groupId: 'sales-1' },
]
const clients: ClientInput[] = [
  { id: 'c-1', name: 'ООО Ромашка', segment: 'B', kind: 'client', phones: ['+79161234567'] },
  { id: 'c-2', name: 'ООО Лютик', segment: 'C', kind: 'client', phones: ['+79161112233'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())
const log = silentLogger()
const h = await startCallHarness(db, { employees, clients, log })
t.teardown(() => h.close())
const directory = buildDirectory({ clients, employees, groups: h.config.groups }, { defaultRegion: h.config.defaultRegion })
for (const c of clients) for (const p of c.phones) await db.pool.query('INSERT INTO client_phones (phone, client_id) VALUES ($1, $2)', [p, c.id])

// The clients' phones (script ms at the harness's 1/100 speed). A "busy once" number is busy
// on its first call and answers the next one.
const attemptsTo = new Map<string, number>()
const clientPhone = (callee: string): BridgeTarget => {
  const n = (attemptsTo.get(callee) ?? 0) + 1
  attemptsTo.set(callee, n)
  if (callee === '+79990000002') return n === 1 ? { busy: true, ringMs: 500 } : { answerAfterMs: 1000, hangupAfterMs: 30_000 }
  if (callee.startsWith('+7999777')) return { noAnswer: true }
  if (callee === '+79995550000') return { failCause: 'UNALLOCATED_NUMBER', ringMs: 200 }
  return { answerAfterMs: 1000, hangupAfterMs: 30_000 }
}
const fsInbound = new InboundSimulator({
  originate: {
    fs: h.sim,
    script: (spec) => ({ bridgeTargets: { [`sofia/gateway/trunk/${spec.vars.switchboard_callee}`]: clientPhone(spec.vars.switchboard_callee) } }),
  },
})
const fsPort = await fsInbound.listen()
t.teardown(() => fsInbound.close())

let now = OPEN
const clock = { now: () => now }

/** One node's originating side and dialler; the harness's presence store is the first node's. */
async function node(presence: PresenceStore) {
  const inbound = new InboundClient({ port: fsPort, password: 'ClueCon', logger: log })
  await inbound.start()
  t.teardown(() => inbound.stop())
  const outbound = new OutboundCalls({
    log, pool: db.pool, events: h.events, presence, directory: () => directory, config: () => h.config, inbound,
    socketAddress: () => `127.0.0.1:${h.sim.opts.port}`,
  })
  const dialler = new CallPlanDialler({
    pool: db.pool, log, config: () => h.config, directory: () => directory, presence, outbound,
    canOriginate: () => inbound.connected, clock, node: presence.node,
  })
  t.teardown(() => dialler.stop())
  return dialler
}
const dialler = await node(h.presence)

const app = await buildHttpApp({
  log, pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [callPlansRoutes({ pool: db.pool, log, config: () => h.config, directory: () => directory, now: clock.now })],
})
const base = await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
const admin = await createApiToken(db.pool, { id: 'adm', name: 'Admin', role: 'admin' })
const supervisor = await createApiToken(db.pool, { id: 'sup', name: 'Sup', role: 'supervisor' })
const agent = await createApiToken(db.pool, { id: 'ag', name: 'Ag', role: 'agent', employeeId: 'a-1' })

interface Upload { plan: { id: string; status: string; rowsTotal: number; rowsRejected: number; progress: Record<string, number> }; accepted: number; rejected: Array<{ line: number; code: string; field?: string; message: string }>; rejectedCount: number; format: string }
async function upload(query: Record<string, string>, body: string, type = 'text/csv', token = admin): Promise<Response> {
  return fetch(`${base}/api/call-plans?${new URLSearchParams(query)}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body })
}
async function created(query: Record<string, string>, body: string, type = 'text/csv'): Promise<Upload> {
  const res = await upload(query, body, type)
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`)
  return await res.json() as Upload
}
const api = async (method: string, path: string, token = admin) => fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}` } })
const rowsOf = async (planId: string) => (await db.pool.query('SELECT * FROM call_plan_rows WHERE plan_id = $1 ORDER BY line', [planId])).rows
const finishedFor = (rowId: string, n = 1) => waitFor(`row ${rowId} attempt ${n} finished`, async () => dialler.finished.filter((f) => f.rowId === rowId).length >= n)
const originatesFor = (rowId: string) => fsInbound.originates.filter((o) => o.spec.vars.switchboard_call_plan_row === rowId)
/** Presence as Postgres has it, then the view refreshed (the call's end restores it). */
async function waitState(ids: string[], state: string) {
  await waitFor(`${ids.join(', ')} ${state}`, async () => {
    const r = await db.pool.query<{ state: string }>('SELECT state FROM agent_presence WHERE employee_id = ANY($1::text[])', [ids])
    return r.rows.length === ids.length && r.rows.every((x) => x.state === state)
  })
  await h.presence.load()
}
const later = (min: number) => new Date(now.getTime() + min * 60_000).toISOString()

t.test('upload: bad rows are rejected with their line and reason; good rows become the plan', async (t) => {
  const csv = [
    'phone;client_id;agent_id;queue_id;window_start;window_end;note',
    '+7 916 123-45-67;c-1;;;;;known client',            // 2 ok (queue default)
    'not a phone;;;;;;',                                  // 3 bad_phone
    '+79990001111;;ghost;;;;',                            // 4 unknown_agent
    '+79990001112;;;nope;;;',                             // 5 unknown_queue
    '+79990001113;c-ghost;;;;;',                          // 6 unknown_client
    '+79990001114;;a-1;sales;;;',                         // 7 ambiguous_target
    `+79990001115;;;;${later(60)};${later(30)};`,         // 8 bad_window (ends before it starts)
    `+79990001116;;;;;2026-11-23T05:00:00Z;`,             // 9 window_past
    '8 (916) 123-45-67;;;;;;',                            // 10 duplicate_phone (line 2)
    ';;;;;;',                                             // 11 missing_phone
    ';c-2;a-2;;;;by client id',                           // 12 ok: the client's number, agent a-2
    '+79990001117;;no-phone;;;;',                         // 13 agent_unreachable
    '+79990001118;;;;tomorrow;;',                         // 14 bad_window (unreadable)
  ].join('\n')
  const res = await created({ name: 'Ноябрь, должники', queueId: 'sales' }, csv)
  t.equal(res.accepted, 2)
  t.equal(res.rejectedCount, 11)
  t.same(res.rejected.map((r) => [r.line, r.code]), [
    [3, 'bad_phone'], [4, 'unknown_agent'], [5, 'unknown_queue'], [6, 'unknown_client'], [7, 'ambiguous_target'], [8, 'bad_window'],
    [9, 'window_past'], [10, 'duplicate_phone'], [11, 'missing_phone'], [13, 'agent_unreachable'], [14, 'bad_window'],
  ], 'every bad row, by line, with its reason')
  t.match(res.rejected.find((r) => r.line === 10)!.message, /already on line 2/)
  t.match(res.rejected.find((r) => r.line === 4)!, { field: 'agent_id', message: /ghost/ })
  t.match(res.plan, { status: 'draft', rowsTotal: 13, rowsRejected: 11, progress: { pending: 2, rejected: 11 } })
  const rows = await rowsOf(res.plan.id)
  t.match(rows.find((r) => r.line === 2), { phone: '+79161234567', client_id: 'c-1', queue_id: 'sales', agent_id: null, status: 'pending', note: 'known client' })
  t.match(rows.find((r) => r.line === 12), { phone: '+79161112233', client_id: 'c-2', agent_id: 'a-2', queue_id: null })
  t.match(rows.find((r) => r.line === 3), { status: 'rejected', outcome: 'bad_phone', phone: null, phone_raw: 'not a phone' })

  const report = await api('GET', `/api/call-plans/${res.plan.id}/rows?status=rejected&limit=5`, supervisor)
  const page = await report.json() as { items: Array<{ line: number; outcome: string }>; nextAfterLine: number }
  t.same(page.items.map((r) => r.line), [3, 4, 5, 6, 7], 'rejected rows are in the report, in upload order')
  t.equal(page.nextAfterLine, 7)
  await api('POST', `/api/call-plans/${res.plan.id}/cancel`)
})

t.test('upload: JSON array (item numbers), plan-level errors, size and role limits', async (t) => {
  const json = JSON.stringify([{ phone: '+79990002001', agent: 'a-1' }, { phone: '12' }, { client_id: 'c-1', queue: 'sales' }])
  const res = await created({ name: 'json', queueId: 'sales' }, json, 'application/json')
  t.equal(res.format, 'json')
  t.same(res.rejected.map((r) => [r.line, r.code]), [[2, 'bad_phone']], 'JSON items are numbered from 1')
  await api('POST', `/api/call-plans/${res.plan.id}/cancel`)

  const noTarget = await created({ name: 'no target' }, 'phone;note\n+79990002002;x\n')
  t.same(noTarget.rejected.map((r) => r.code), ['no_target'], 'a row needs an agent or queue when the plan has none')
  await api('POST', `/api/call-plans/${noTarget.plan.id}/cancel`)

  t.equal((await upload({ name: 'x', queueId: 'nope' }, 'phone;a\n+79990002003;1\n')).status, 404, 'unknown default queue')
  t.equal((await upload({ name: 'x', agentId: 'a-1', queueId: 'sales' }, 'phone;a\n1;1\n')).status, 400, 'both defaults')
  const past = await upload({ name: 'x', queueId: 'sales', windowEnd: '2026-11-23T00:00:00Z' }, 'phone;a\n+79990002003;1\n')
  t.equal(past.status, 400)
  t.match(await past.json(), { detail: /windowEnd .* is in the past/ })
  t.equal((await upload({ name: 'x', queueId: 'sales', callerId: 'abc' }, 'phone;a\n1;1\n')).status, 400, 'caller id must be E.164')
  t.equal((await upload({ name: 'x', queueId: 'sales' }, '{"phone": "+7999000')).status, 400, 'broken JSON')

  const limit = h.config.callPlans.maxUploadBytes
  h.config.callPlans.maxUploadBytes = 200
  try {
    const big = await upload({ name: 'big', queueId: 'sales' }, 'phone;note\n' + '+79990000000;xxxxxxxxxxxxxxxxxxxx\n'.repeat(20))
    t.equal(big.status, 413, 'larger than callPlans.maxUploadBytes')
  } finally { h.config.callPlans.maxUploadBytes = limit }
  const rowsLimit = h.config.callPlans.maxRows
  h.config.callPlans.maxRows = 3
  try {
    const many = await upload({ name: 'many', queueId: 'sales' }, 'phone;note\n' + Array.from({ length: 4 }, (_, i) => `+7999000300${i};x`).join('\n'))
    t.equal(many.status, 413, 'more rows than callPlans.maxRows')
    t.match(await many.json(), { code: 'too_many_rows' })
  } finally { h.config.callPlans.maxRows = rowsLimit }

  t.equal((await upload({ name: 'x', queueId: 'sales' }, 'phone;a\n+79990002004;1\n', 'text/csv', agent)).status, 403, 'agents may not upload plans')
  t.equal((await api('GET', '/api/call-plans', agent)).status, 403, 'nor read them')
  const sup = await upload({ name: 'by supervisor', queueId: 'sales' }, 'phone;a\n+79990002005;1\n', 'text/csv', supervisor)
  t.equal(sup.status, 201, 'supervisors may')
  await api('POST', `/api/call-plans/${((await sup.json()) as Upload).plan.id}/cancel`)
})

t.test('3 rows, 2 ready agents: 2 calls at a time, agent then client, recorded; answered / busy→retried→answered / no answer after max attempts', async (t) => {
  await h.presence.set('a-1', 'ready')
  await h.presence.set('a-2', 'ready')
  await h.presence.set('a-3', 'not_ready', 'training')
  const res = await created({ name: 'три клиента', queueId: 'sales', maxAttempts: '2', retryDelayMin: '1', callerId: '+74950000099' },
    'phone;client_id;note\n+79161234567;c-1;answers\n+79990000002;;busy once\n+79997770001;;never answers\n')
  t.equal(res.accepted, 3)
  const [rowA, rowB, rowC] = (await rowsOf(res.plan.id)).map((r) => String(r.id))
  t.same(await dialler.tick(), [], 'a draft plan is not dialled')
  const started = await api('POST', `/api/call-plans/${res.plan.id}/start`)
  t.match(await started.json(), { status: 'running' })

  const first = await dialler.tick()
  t.same(first, [rowA, rowB], 'two ready agents → two rows started, in upload order')
  t.equal(dialler.active, 2)
  t.same(await dialler.tick(), [], 'nobody else is ready: the third row waits (progressive: one call per ready agent)')
  const agentsUsed = (await waitFor('two originates', async () => {
    const o = fsInbound.originates.filter((x) => [rowA, rowB].includes(x.spec.vars.switchboard_call_plan_row))
    return o.length === 2 && o
  })).map((o) => o.spec.endpoint).sort()
  t.same(agentsUsed, ['user/1001', 'user/1002'], "each call rings an agent's phone first")
  t.notOk(fsInbound.originates.some((o) => o.spec.endpoint === 'user/1003'), 'the agent who is not ready is never dialled')

  await finishedFor(rowA)
  await finishedFor(rowB)
  let rows = await rowsOf(res.plan.id)
  const a = rows.find((r) => String(r.id) === rowA)
  t.match(a, { status: 'answered', outcome: 'answered', attempts: 1, client_id: 'c-1', claimed_by: null })
  t.ok(a.talk_sec >= 20, `talked ${a.talk_sec} s`)
  t.match(rows.find((r) => String(r.id) === rowB), { status: 'pending', outcome: 'busy', attempts: 1, last_cause: 'USER_BUSY' }, 'busy: back to pending')
  const [oa] = originatesFor(rowA)
  t.match(oa.spec.vars, { switchboard_origin: 'call-plan', switchboard_callee: '+79161234567', switchboard_client_id: 'c-1', origination_uuid: a.call_id, switchboard_forced_caller_id: '+74950000099' })
  const leg = await oa.call!.done
  const bridge = leg.commands.find((c) => c.headers['execute-app-name'] === 'bridge')!.headers['execute-app-arg'] ?? ''
  t.match(bridge, /origination_caller_id_number=\+74950000099\b/, "the plan's caller id is presented to the client")
  t.match(bridge, /sofia\/gateway\/trunk\/\+79161234567$/, 'then the client, through the trunk')
  const cdr = await waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [a.call_id])).rows[0])
  t.match(cdr, { direction: 'outbound', client_id: 'c-1', callee: '+79161234567', outcome: 'answered' }, 'the row links to its CDR')
  const rec = await waitFor('recording', async () => (await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [a.call_id])).rows[0], 30_000)
  t.match(rec, { client_id: 'c-1', agent_id: cdr.agent_id }, 'recorded, on the client card')

  await waitState(['a-1', 'a-2'], 'ready')
  t.same(await dialler.tick(), [rowC], 'the busy row waits for its retry delay; the third row goes now')
  await finishedFor(rowC)
  t.match((await rowsOf(res.plan.id)).find((r) => String(r.id) === rowC), { status: 'pending', outcome: 'no_answer', attempts: 1, last_cause: 'NO_ANSWER' })
  await waitState(['a-1', 'a-2'], 'ready')
  t.same(await dialler.tick(), [], 'nothing due before the retry delay')

  now = new Date(now.getTime() + 2 * 60_000)
  const retries = await dialler.tick()
  t.same(retries, [rowB, rowC], 'after the delay both are tried again')
  await finishedFor(rowB, 2)
  await finishedFor(rowC, 2)
  rows = await rowsOf(res.plan.id)
  t.match(rows.find((r) => String(r.id) === rowB), { status: 'answered', attempts: 2 }, 'busy, retried, answered')
  t.match(rows.find((r) => String(r.id) === rowC), { status: 'no_answer', attempts: 2, outcome: 'no_answer' }, 'no answer after max attempts (2)')
  t.equal(originatesFor(rowC).length, 2)
  const attempts = (await db.pool.query('SELECT outcome FROM call_plan_attempts WHERE row_id = $1 ORDER BY id', [rowB])).rows.map((r) => r.outcome)
  t.same(attempts, ['busy', 'answered'], 'every attempt kept with its outcome')

  const plan = await (await api('GET', `/api/call-plans/${res.plan.id}`, supervisor)).json() as Upload['plan'] & { completedAt: string }
  t.match(plan, { status: 'completed', progress: { answered: 2, no_answer: 1, pending: 0, dialling: 0, attempts: 5, done: 3, remaining: 0 } })
  t.ok(plan.completedAt)
  const csv = await api('GET', `/api/call-plans/${res.plan.id}/report.csv`, supervisor)
  t.equal(csv.status, 200)
  t.match(csv.headers.get('content-type'), /text\/csv/)
  const lines = (await csv.text()).trim().split('\r\n')
  t.equal(lines.length, 4, 'header + one line per row')
  t.match(lines[0], /^line,status,outcome,attempts,phone/)
  t.match(lines[1], /^2,answered,answered,1,\+79161234567,/)
  t.match(lines[3], /^4,no_answer,no_answer,2,\+79997770001,/)
  await waitState(['a-1', 'a-2'], 'ready')
})

t.test('pause stops new dials; resume goes on; cancel closes the rest', async (t) => {
  const res = await created({ name: 'pause', queueId: 'sales', start: 'true' }, 'phone;n\n+79990000011;1\n+79990000012;2\n+79990000013;3\n')
  t.equal(res.plan.status, 'running', 'start=true starts at once')
  await h.presence.set('a-2', 'not_ready', 'lunch')
  const [first] = await dialler.tick()
  t.ok(first, 'one agent ready → one call')
  const paused = await api('POST', `/api/call-plans/${res.plan.id}/pause`)
  t.match(await paused.json(), { status: 'paused' })
  await finishedFor(first)
  await waitState(['a-1'], 'ready')
  t.same(await dialler.tick(), [], 'paused: no new calls though an agent is ready')
  t.equal(fsInbound.originates.filter((o) => ['+79990000012', '+79990000013'].includes(o.spec.vars.switchboard_callee)).length, 0)
  t.match(await (await api('POST', `/api/call-plans/${res.plan.id}/start`)).json(), { status: 'running' }, 'resumed')
  const [second] = await dialler.tick()
  t.ok(second, 'dialling again')
  await finishedFor(second)
  t.match(await (await api('POST', `/api/call-plans/${res.plan.id}/cancel`)).json(), { status: 'cancelled', progress: { answered: 2, cancelled: 1, pending: 0 } })
  t.equal((await api('POST', `/api/call-plans/${res.plan.id}/start`)).status, 409, 'a cancelled plan cannot be started again')
  await waitState(['a-1'], 'ready')
  t.same(await dialler.tick(), [])
})

t.test('an agent who is not ready is never dialled; maxConcurrent caps a plan', async (t) => {
  const res = await created({ name: 'Вера', agentId: 'a-3', start: 'true' }, 'phone;n\n+79990000021;1\n')
  const [row] = await rowsOf(res.plan.id)
  t.equal(h.presence.get('a-3'), 'not_ready')
  t.same(await dialler.tick(), [], 'a-1 is ready, but the row is for a-3')
  t.equal(originatesFor(String(row.id)).length, 0)
  await h.presence.set('a-3', 'ready')
  t.same(await dialler.tick(), [String(row.id)], 'dialled once a-3 is ready')
  t.equal((await waitFor('originate', async () => originatesFor(String(row.id))[0])).spec.endpoint, 'user/1003')
  await finishedFor(String(row.id))
  await h.presence.set('a-3', 'not_ready', 'done for today')

  await h.presence.set('a-2', 'ready')
  const capped = await created({ name: 'one at a time', queueId: 'sales', maxConcurrent: '1', start: 'true' }, 'phone;n\n+79990000031;1\n+79990000032;2\n')
  t.equal((await dialler.tick()).length, 1, 'two agents ready, but maxConcurrent 1')
  await dialler.settle()
  await waitState(['a-1', 'a-2'], 'ready')
  t.equal((await dialler.tick()).length, 1, 'the next one after the first finished')
  await dialler.settle()
  t.match(await (await api('GET', `/api/call-plans/${capped.plan.id}`)).json(), { status: 'completed', progress: { answered: 2 } })
  await waitState(['a-1', 'a-2'], 'ready')
})

t.test('windows and office hours: outside them nothing is dialled; a window that closes expires the row', async (t) => {
  const res = await created({ name: 'окна', queueId: 'sales', start: 'true' },
    `phone;window_start;window_end\n+79990000041;${later(60)};${later(120)}\n+79990000042;;${later(10)}\n`)
  const [future, soon] = (await rowsOf(res.plan.id)).map((r) => String(r.id))
  await db.pool.query(`UPDATE call_plan_rows SET next_attempt_at = $2 WHERE id = $1`, [soon, later(30)]) // not due before its window closes
  t.same(await dialler.tick(), [], 'the window has not opened yet')
  now = new Date(now.getTime() + 15 * 60_000)
  t.same(await dialler.tick(), [])
  t.match((await rowsOf(res.plan.id)).find((r) => String(r.id) === soon), { status: 'expired', attempts: 0 }, 'its window closed before it was reached')
  const saved = now
  now = new Date('2026-11-23T16:30:00Z') // 19:30 in Moscow: office closed, though the window (if any) is open
  // Its window open now (and due): only the office hours stand in the way.
  await db.pool.query(`UPDATE call_plan_rows SET window_start = $2, window_end = NULL, next_attempt_at = $2 WHERE id = $1`, [future, saved])
  t.same(await dialler.tick(), [], 'office closed: nothing dialled')
  now = saved
  t.same(await dialler.tick(), [future], 'inside the window and the office hours: dialled')
  await finishedFor(future)
  await waitState(['a-1', 'a-2'], 'ready')
  t.match(await (await api('GET', `/api/call-plans/${res.plan.id}`)).json(), { status: 'completed', progress: { answered: 1, expired: 1 } })
})

t.test('waiting inbound callers keep their agents; a wrong number fails at once', async (t) => {
  const res = await created({ name: 'inbound first', queueId: 'sales', start: 'true', maxAttempts: '3' }, 'phone;n\n+79995550000;wrong number\n')
  const [row] = (await rowsOf(res.plan.id)).map((r) => String(r.id))
  const caller = randomUUID()
  await db.pool.query(`INSERT INTO queue_calls (call_uuid, queue_id, priority, entered_at, queue_entered_at, node, state) VALUES ($1, 'sales', 0, now(), now(), $2, 'waiting')`, [caller, h.acd.nodeId])
  t.same(await dialler.tick(), [], 'a caller waits in the sales queue: its agents are left to the ACD')
  await db.pool.query('DELETE FROM queue_calls WHERE call_uuid = $1', [caller])
  t.same(await dialler.tick(), [row])
  await finishedFor(row)
  t.match((await rowsOf(res.plan.id))[0], { status: 'failed', outcome: 'failed', attempts: 1, last_cause: 'UNALLOCATED_NUMBER' }, 'not retried: the number does not exist')
  await waitState(['a-1', 'a-2'], 'ready')
})

t.test('rows a dead node was dialling are taken back (answered if its CDR says so)', async (t) => {
  const res = await created({ name: 'crash', queueId: 'sales' }, 'phone;n\n+79990000051;1\n+79990000052;2\n')
  const [r1, r2] = (await rowsOf(res.plan.id)).map((r) => String(r.id))
  const answeredCall = randomUUID()
  await db.pool.query(`INSERT INTO calls (uuid, direction, callee, started_at, ended_at, outcome) VALUES ($1, 'outbound', '+79990000052', now(), now(), 'answered')`, [answeredCall])
  await db.pool.query(`UPDATE call_plans SET status = 'paused' WHERE id = $1`, [res.plan.id])
  await db.pool.query(`UPDATE call_plan_rows SET status = 'dialling', attempts = 1, claimed_by = 'dead-node:0001', claimed_at = now(), call_id = $2 WHERE id = $1`, [r1, randomUUID()])
  await db.pool.query(`UPDATE call_plan_rows SET status = 'dialling', attempts = 1, claimed_by = 'dead-node:0001', claimed_at = now(), call_id = $2 WHERE id = $1`, [r2, answeredCall])
  // A live node's row is left alone.
  await db.pool.query(`INSERT INTO acd_nodes (node_id) VALUES ('live-node:0002')`)
  const live = await created({ name: 'live', queueId: 'sales' }, 'phone;n\n+79990000053;1\n')
  const [r3] = (await rowsOf(live.plan.id)).map((r) => String(r.id))
  await db.pool.query(`UPDATE call_plan_rows SET status = 'dialling', attempts = 1, claimed_by = 'live-node:0002' WHERE id = $1`, [r3])
  await dialler.tick()
  const rows = await rowsOf(res.plan.id)
  t.match(rows[0], { status: 'pending', outcome: 'interrupted', attempts: 1, claimed_by: null }, 'no answered CDR: due again (the attempt counts)')
  t.match(rows[1], { status: 'answered', outcome: 'answered' }, 'the CDR shows the conversation took place')
  t.match((await rowsOf(live.plan.id))[0], { status: 'dialling', claimed_by: 'live-node:0002' }, "a live node's call is not touched")
  await db.pool.query(`DELETE FROM acd_nodes WHERE node_id = 'live-node:0002'`)
  await api('POST', `/api/call-plans/${res.plan.id}/cancel`)
  await api('POST', `/api/call-plans/${live.plan.id}/cancel`)
})

t.test('two nodes polling together never dial one row twice nor one agent twice', async (t) => {
  const other = new PresenceStore(db.pool, log, undefined, { node: 'node-b:0001' })
  await db.pool.query(`INSERT INTO acd_nodes (node_id) VALUES ('node-b:0001')`)
  t.teardown(() => db.pool.query(`DELETE FROM acd_nodes WHERE node_id = 'node-b:0001'`))
  await other.load()
  const b = await node(other)
  const res = await created({ name: 'two nodes', queueId: 'sales', start: 'true' }, 'phone;n\n+79990000061;1\n+79990000062;2\n+79990000063;3\n')
  await waitState(['a-1', 'a-2'], 'ready')
  await other.load()
  const [sa, sb] = await Promise.all([dialler.tick(), b.tick()])
  const started = [...sa, ...sb]
  t.equal(started.length, 2, `two agents → two rows (node a ${sa.length}, node b ${sb.length})`)
  t.equal(new Set(started).size, 2, 'no row started by both nodes')
  const agents = (await waitFor('two originates', async () => {
    const o = fsInbound.originates.filter((x) => started.includes(x.spec.vars.switchboard_call_plan_row))
    return o.length === 2 && o
  })).map((o) => o.spec.endpoint)
  t.equal(new Set(agents).size, 2, 'no agent rung twice')
  await dialler.settle()
  await b.settle()
  await waitState(['a-1', 'a-2'], 'ready')
  await other.load()
  const [sa2, sb2] = await Promise.all([dialler.tick(), b.tick()])
  t.equal(sa2.length + sb2.length, 1, 'the third row in the next poll')
  await dialler.settle()
  await b.settle()
  t.match(await (await api('GET', `/api/call-plans/${res.plan.id}`)).json(), { status: 'completed', progress: { answered: 3, attempts: 3 } })
})

t.test("rows waiting for a busy agent do not hide the rows others could take", async (t) => {
  await waitState(['a-1', 'a-2'], 'ready')
  t.equal(h.presence.get('a-3'), 'not_ready')
  // 1,100 older rows for a-3 (not ready), then one for the sales queue: the scan must not stop at them.
  const vera = await created({ name: 'для Веры', agentId: 'a-3', start: 'true' }, 'phone;n\n' + Array.from({ length: 1100 }, (_, i) => `+7999100${String(i).padStart(4, '0')};x`).join('\n'))
  t.equal(vera.accepted, 1100)
  now = new Date(now.getTime() + 60_000)
  const sales = await created({ name: 'продажи', queueId: 'sales', start: 'true' }, 'phone;n\n+79990000071;1\n')
  const [row] = (await rowsOf(sales.plan.id)).map((r) => String(r.id))
  t.same(await dialler.tick(), [row], 'the queue row is found behind 1,100 rows nobody can take now')
  await dialler.settle()
  await api('POST', `/api/call-plans/${vera.plan.id}/cancel`)
  t.match(await (await api('GET', `/api/call-plans/${vera.plan.id}`)).json(), { status: 'cancelled', progress: { cancelled: 1100 } })
  await waitState(['a-1', 'a-2'], 'ready')
})

t.test('config: callPlans defaults and errors naming the field', async (t) => {
  const { loadSwitchboardFile, validateSwitchboardFile } = await import('../src/config/switchboard-file.ts')
  const { EXAMPLE_CONFIG } = await import('../src/server.ts')
  const { parse } = await import('yaml')
  const { readFile } = await import('node:fs/promises')
  const example = await loadSwitchboardFile(EXAMPLE_CONFIG)
  t.match(example.callPlans, { enabled: true, pollIntervalSec: 5, defaultMaxAttempts: 3, defaultRetryDelayMin: 30, maxConcurrentPerPlan: 10, yieldToInbound: true })
  const doc = parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>
  delete doc.callPlans
  t.match(validateSwitchboardFile(doc).callPlans, { enabled: true, maxRows: 50_000 }, 'the section may be left out')
  t.throws(() => validateSwitchboardFile({ ...doc, callPlans: { timeZone: 'Mars/Olympus' } }), { message: /callPlans\.timeZone/ })
  t.throws(() => validateSwitchboardFile({ ...doc, callPlans: { maxConcurrentPerPlan: 0 } }), { message: /callPlans\.maxConcurrentPerPlan/ })
  t.throws(() => validateSwitchboardFile({ ...doc, callPlans: { dialRatio: 3 } }), { message: /callPlans/ }, 'unknown fields refused')
})

t.test('plan list and unknown plans', async (t) => {
  const list = await (await api('GET', '/api/call-plans?limit=3', supervisor)).json() as { items: Array<{ id: string }>; nextBeforeId: number }
  t.equal(list.items.length, 3)
  t.ok(list.nextBeforeId)
  t.equal((await api('GET', '/api/call-plans?status=completed', supervisor)).status, 200)
  t.equal((await api('GET', '/api/call-plans/999999')).status, 404)
  t.equal((await api('GET', '/api/call-plans/999999/report.csv')).status, 404)
  t.equal((await api('POST', '/api/call-plans/999999/pause')).status, 404)
  t.equal((await api('GET', '/api/call-plans/abc')).status, 400)
})
