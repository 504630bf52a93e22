// Issue 13: click-to-call through the assembled server. FreeSWITCH is played by the
// inbound-socket simulator (answers `bgapi originate`, rings the employee's phone) and the
// outbound-socket simulator (the answered leg dials our ESL port like `&socket(…)` does,
// then the outbound step bridges it to the client through the trunk).
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSwitchboard, type Switchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { parseOriginateArgs } from '../src/esl/originate.ts'
import { startTestDatabase } from './support/db.ts'
import { waitFor } from './support/pipeline.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { InboundSimulator } from './support/esl-inbound-sim.ts'

const TRUNK_NSK = 'sofia/gateway/trunk/+73832123456'
const db = await startTestDatabase()
t.teardown(() => db.close())
for (const [id, name, role, ext] of [
  ['mgr-1', 'Анна Петрова', 'manager', '1001'], ['agent-2', 'Борис Смирнов', 'agent', '1002'],
  ['agent-3', 'Вера Офлайн', 'agent', '1003'], ['agent-4', 'Глеб Занятой', 'agent', '1004'],
]) await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5)', [id, name, role, 'sales-1', ext])
await db.pool.query(`INSERT INTO employees (id, name, role, group_id, extension) VALUES ('cc-1', 'Дина Колл-центр', 'agent', 'callcentre', '3001')`)
await db.pool.query(`INSERT INTO clients (id, name, segment, kind, region, assigned_manager_id) VALUES ('c-nsk', 'ООО Сибирь', 'B', 'client', 'Новосибирск', 'mgr-1'), ('c-card', 'ИП Карточка', 'C', 'client', NULL, NULL)`)
await db.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+73832123456', 'c-nsk')`)

// Script ms at 1/10 speed: the employee picks up after 0.5 s, the client after 1 s and talks 20 s.
const fs = new FsSimulator({ port: 0, timeScale: 0.1 })
const fsOptions = {
  originate: {
    fs,
    targets: { 'user/1001': { answerAfterMs: 500 }, 'user/1002': { noAnswer: true } },
    script: () => ({ bridgeTargets: { [TRUNK_NSK]: { answerAfterMs: 1000, hangupAfterMs: 20_000 }, 'sofia/gateway/trunk/+73832999999': { busy: true, ringMs: 300 } } }),
  },
}
let fsInbound = new InboundSimulator(fsOptions)
const fsPort = await fsInbound.listen()
t.teardown(() => fsInbound.close())

async function start(env: Record<string, string>): Promise<Switchboard> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-c2c-'))
  const sb = await startSwitchboard({ DATABASE_URL: db.url, DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent', ...env }, silentLogger())
  t.teardown(async () => { await sb.stop(); await rm(dataDir, { recursive: true, force: true }) })
  return sb
}

const sb = await start({ FS_ESL_HOST: '127.0.0.1', FS_ESL_PORT: String(fsPort), FS_ESL_PASSWORD: 'ClueCon' })
await waitFor('inbound ESL connected', async () => sb.inbound?.connected)
t.teardown(() => fs.closeAll())
const tokens = {
  anna: await createApiToken(sb.pool, { id: 'u-anna', name: 'Анна', role: 'agent', employeeId: 'mgr-1' }),
  boris: await createApiToken(sb.pool, { id: 'u-boris', name: 'Борис', role: 'agent', employeeId: 'agent-2' }),
  admin: await createApiToken(sb.pool, { id: 'u-admin', name: 'Admin', role: 'admin' }),
}
for (const id of ['mgr-1', 'agent-2']) await sb.presence.set(id, 'ready')
await sb.presence.set('agent-4', 'on_call', 'inbound call')

const post = (token: string, body: unknown) => fetch(`${sb.httpUrl}/api/calls/click-to-call`, {
  method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
})

/** Read an SSE stream to its end (the server closes it after ended/failed). */
async function progress(token: string, uuid: string): Promise<Array<{ stage: string; cause?: string | null; talkSec?: number }>> {
  const res = await fetch(`${sb.httpUrl}/api/calls/${uuid}/events`, { headers: { authorization: `Bearer ${token}` } })
  if (res.status !== 200) throw new Error(`events: ${res.status} ${await res.text()}`)
  const text = await res.text()
  return text.split('\n\n').filter((b) => b.includes('event: call.progress')).map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)))
}

t.test('happy path: employee first, then the client; recorded, linked, CDR counted, progress over SSE', async (t) => {
  const res = await post(tokens.anna, { to: '8 (383) 212-34-56' })
  t.equal(res.status, 202, 'accepted at once')
  const body = await res.json() as { callUuid: string; to: string; clientId: string; callerId: string; employeeId: string; events: string }
  t.equal(body.employeeId, 'mgr-1', "the caller's own employee by default")
  t.equal(body.to, '+73832123456', 'E.164')
  t.equal(body.clientId, 'c-nsk', 'the client card of that number')
  t.equal(body.callerId, '+73832000000', 'caller id by the callee region (seed 001)')
  t.equal(body.events, `/api/calls/${body.callUuid}/events`)
  t.equal(sb.presence.get('mgr-1'), 'on_call', 'the employee is busy while the call runs: the ACD offers them nothing')

  const stages = await progress(tokens.anna, body.callUuid)
  t.same(stages.map((s) => s.stage), ['originating', 'employee_answered', 'client_ringing', 'answered', 'ended'], 'progress in order')
  t.equal(stages.at(-1)?.cause, 'NORMAL_CLEARING')
  t.ok((stages.at(-1)?.talkSec ?? 0) >= 15, 'talk time reported at the end')

  const originate = fsInbound.originates.find((o) => o.uuid === body.callUuid)
  t.ok(originate, 'FreeSWITCH was asked to originate with our call id as the leg uuid')
  const sent = fsInbound.commands.find((c) => c.line.startsWith('bgapi originate') && c.line.includes(body.callUuid))!
  const spec = parseOriginateArgs(sent.line.slice('bgapi originate '.length))!
  t.equal(spec.endpoint, 'user/1001', "the employee's desk phone first")
  t.same(spec.app, { name: 'socket', arg: `127.0.0.1:${sb.eslPort} async full` }, 'parked into our outbound ESL socket')
  t.match(spec.vars, {
    origination_uuid: body.callUuid, switchboard_call_uuid: body.callUuid, switchboard_direction: 'outbound',
    switchboard_callee: '+73832123456', switchboard_employee_id: 'mgr-1', switchboard_client_id: 'c-nsk',
    switchboard_outbound_caller_id: '+73832000000', origination_caller_id_number: '+73832123456', origination_caller_id_name: 'ООО Сибирь',
  })
  const leg = await originate!.call!.done
  const bridges = leg.commands.filter((c) => c.headers['execute-app-name'] === 'bridge').map((c) => c.headers['execute-app-arg'] ?? '')
  t.equal(bridges.length, 1, 'one bridge to the client')
  t.match(bridges[0], /origination_caller_id_number=\+73832000000\b/, 'presented the Novosibirsk number')
  t.match(bridges[0], /sofia\/gateway\/trunk\/\+73832123456$/, 'through the trunk')

  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [body.callUuid])).rows[0])
  t.match(cdr, { direction: 'outbound', agent_id: 'mgr-1', client_id: 'c-nsk', caller: '1001', callee: '+73832123456', outcome: 'answered', counted: true })
  const rec = await waitFor('recording stored', async () => (await sb.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [body.callUuid])).rows[0], 30_000)
  t.match(rec, { agent_id: 'mgr-1', client_id: 'c-nsk', channels: 2 }, 'recording on the client card, stereo, attributed to the employee')
  t.ok(await sb.store.stat(rec.object_key), 'in the object store')
  await waitFor('presence back to ready', async () => sb.presence.get('mgr-1') === 'ready')
})

t.test('a client card given explicitly links a number the directory does not know', async (t) => {
  const res = await post(tokens.admin, { employeeId: 'mgr-1', to: '+7 999 000-11-22', clientId: 'c-card' })
  t.equal(res.status, 202)
  const { callUuid } = await res.json() as { callUuid: string }
  const stages = await progress(tokens.admin, callUuid)
  // The trunk target for this number is the simulator default: answers, hangs up after 200 ms (script) → not counted.
  t.same(stages.map((s) => s.stage), ['originating', 'employee_answered', 'client_ringing', 'answered', 'ended'])
  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [callUuid])).rows[0])
  t.match(cdr, { direction: 'outbound', client_id: 'c-card', callee: '+79990001122', counted: false }, 'linked to the card; a 0.2 s talk is not counted')
})

t.test("the employee's phone does not answer: failed with the cause, state restored, no CDR", async (t) => {
  const res = await post(tokens.boris, { to: '+73832123456' })
  t.equal(res.status, 202)
  const { callUuid } = await res.json() as { callUuid: string }
  const stages = await progress(tokens.boris, callUuid)
  t.same(stages.map((s) => [s.stage, s.cause ?? null]), [['originating', null], ['failed', 'NO_ANSWER']])
  await waitFor('agent-2 ready again', async () => sb.presence.get('agent-2') === 'ready')
  t.equal((await sb.pool.query('SELECT 1 FROM calls WHERE uuid = $1', [callUuid])).rowCount, 0, 'no call took place')
})

t.test('refusals as problem details', async (t) => {
  const problem = async (r: Response) => ({ status: r.status, type: r.headers.get('content-type'), body: await r.json() as { code?: string; detail?: string } })
  const offline = await problem(await post(tokens.admin, { employeeId: 'agent-3', to: '+73832123456' }))
  t.equal(offline.status, 409, 'offline → 409')
  t.match(offline.type, /application\/problem\+json/)
  t.match(offline.body.detail, /offline/)
  const busy = await problem(await post(tokens.admin, { employeeId: 'agent-4', to: '+73832123456' }))
  t.equal(busy.status, 409, 'on a call → 409')
  t.match(busy.body.detail, /on a call/)
  const bad = await problem(await post(tokens.anna, { to: '12-34' }))
  t.equal(bad.status, 400, 'a number that cannot be normalised → 400')
  t.match(bad.body.detail, /"12-34" cannot be normalised to E\.164/)
  const other = await problem(await post(tokens.anna, { employeeId: 'agent-2', to: '+73832123456' }))
  t.equal(other.status, 403, 'an agent calls only as themselves')
  const unknown = await problem(await post(tokens.admin, { employeeId: 'nobody', to: '+73832123456' }))
  t.equal(unknown.status, 404, 'unknown employee → 404')
  const noEmployee = await problem(await post(tokens.admin, { to: '+73832123456' }))
  t.equal(noEmployee.status, 400, 'an admin without an employee must say who calls')
  const extra = await problem(await post(tokens.admin, { employeeId: 'mgr-1', to: '+73832123456', foo: 1 }))
  t.equal(extra.status, 400, 'unknown fields refused')
  t.equal(sb.presence.get('agent-3'), undefined, 'refusals change no state')
  t.equal(sb.presence.get('agent-4'), 'on_call')
  const events = await fetch(`${sb.httpUrl}/api/calls/00000000-0000-4000-8000-000000000000/events`, { headers: { authorization: `Bearer ${tokens.admin}` } })
  t.equal(events.status, 404, 'events of an unknown call → 404')
})

t.test('a double click places one call', async (t) => {
  const both = await Promise.all([post(tokens.anna, { to: '+73832123456' }), post(tokens.anna, { to: '+73832123456' })])
  t.same(both.map((r) => r.status).sort(), [202, 409], 'one accepted, the other refused as on a call')
  const ok = both.find((r) => r.status === 202)!
  const { callUuid } = await ok.json() as { callUuid: string }
  t.equal((await progress(tokens.anna, callUuid)).at(-1)?.stage, 'ended')
  await waitFor('presence back to ready', async () => sb.presence.get('mgr-1') === 'ready')
})

t.test('another agent may not follow my call', async (t) => {
  const res = await post(tokens.anna, { to: '+73832123456' })
  const { callUuid } = await res.json() as { callUuid: string }
  const peek = await fetch(`${sb.httpUrl}/api/calls/${callUuid}/events`, { headers: { authorization: `Bearer ${tokens.boris}` } })
  t.equal(peek.status, 403)
  await progress(tokens.anna, callUuid)
  await waitFor('presence back to ready', async () => sb.presence.get('mgr-1') === 'ready')
})

t.test('the client is busy: failed with USER_BUSY, an outbound attempt that is not counted', async (t) => {
  const res = await post(tokens.anna, { to: '+7 383 299-99-99' })
  const { callUuid } = await res.json() as { callUuid: string }
  const stages = await progress(tokens.anna, callUuid)
  t.same(stages.map((s) => [s.stage, s.cause ?? null]), [['originating', null], ['employee_answered', null], ['client_ringing', null], ['failed', 'USER_BUSY']])
  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [callUuid])).rows[0])
  t.match(cdr, { direction: 'outbound', agent_id: 'mgr-1', outcome: 'busy', counted: false })
  await waitFor('presence back to ready', async () => sb.presence.get('mgr-1') === 'ready')
})

t.test('FreeSWITCH restarts: 503 while the inbound socket is down, working again once it reconnects', async (t) => {
  await fsInbound.close()
  await waitFor('disconnected', async () => sb.inbound?.connected === false)
  const down = await post(tokens.anna, { to: '+73832123456' })
  t.equal(down.status, 503)
  t.match(((await down.json()) as { detail: string }).detail, /not connected/)
  const ready = await fetch(`${sb.httpUrl}/ready`)
  t.equal(ready.status, 503, '/ready fails while a configured inbound socket is down')
  t.equal(sb.presence.get('mgr-1'), 'ready', 'a refused request leaves the state alone')
  fsInbound = new InboundSimulator(fsOptions)
  await fsInbound.listen(fsPort)
  await waitFor('reconnected', async () => sb.inbound?.connected, 20_000)
  const res = await post(tokens.anna, { to: '+73832123456' })
  t.equal(res.status, 202)
  const { callUuid } = await res.json() as { callUuid: string }
  t.equal((await progress(tokens.anna, callUuid)).at(-1)?.stage, 'ended')
  await waitFor('presence back to ready', async () => sb.presence.get('mgr-1') === 'ready')
})

t.test("the server's callback worker uses the same path", async (t) => {
  // The 24/7 call centre's queue: open whatever the wall clock says.
  const { rows } = await sb.pool.query<{ id: string }>(`INSERT INTO callbacks (phone, client_id, reason, queue_id) VALUES ('+73832123456', 'c-nsk', 'abandoned', 'callcentre') RETURNING id::text`)
  await sb.presence.set('cc-1', 'ready')
  await sb.callbackWorker.tick()
  const done = await waitFor('callback done', async () => (await sb.pool.query(`SELECT * FROM callbacks WHERE id = $1 AND state = 'done'`, [rows[0].id])).rows[0], 30_000)
  t.match(done, { outcome: 'completed', attempts: 1, agent_id: 'cc-1' })
  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [done.last_call_uuid])).rows[0])
  t.match(cdr, { direction: 'outbound', agent_id: 'cc-1', client_id: 'c-nsk', caller: '3001', counted: true })
  await waitFor('cc-1 ready again', async () => sb.presence.get('cc-1') === 'ready')
  const list = await fetch(`${sb.httpUrl}/api/callbacks?state=done`, { headers: { authorization: `Bearer ${tokens.admin}` } })
  t.match(await list.json(), { items: [{ id: rows[0].id, outcome: 'completed', lastCallUuid: done.last_call_uuid }] })
})

t.test('/ready reports the inbound socket', async (t) => {
  const ready = await (await fetch(`${sb.httpUrl}/ready`)).json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }
  t.match(ready.checks.find((c) => c.name === 'freeswitch_inbound'), { ok: true, detail: /connected/ })
})

t.test('without FS_ESL_HOST: 503 with a clear message, /ready still ready', async (t) => {
  const plain = await start({})
  const token = await createApiToken(plain.pool, { id: 'u-anna-2', name: 'Анна', role: 'agent', employeeId: 'mgr-1' })
  const res = await fetch(`${plain.httpUrl}/api/calls/click-to-call`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ to: '+73832123456' }),
  })
  t.equal(res.status, 503)
  t.match(((await res.json()) as { detail: string }).detail, /FS_ESL_HOST/)
  const ready = await fetch(`${plain.httpUrl}/ready`)
  const body = await ready.json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }
  t.match(body.checks.find((c) => c.name === 'freeswitch_inbound'), { ok: true, detail: /not configured/ })
})
