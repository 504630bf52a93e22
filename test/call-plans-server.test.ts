// Issue 11: a call plan through the assembled server (src/server.ts) — the upload, the
// dialler it starts (woken by the plan's start), the originate over the inbound event
// socket, the client leg over the outbound socket, the CDR and the per-row report. The
// 24/7 call-centre queue is used because the server runs on the system clock.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { startTestDatabase } from './support/db.ts'
import { waitFor } from './support/pipeline.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { InboundSimulator } from './support/esl-inbound-sim.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
await db.pool.query(`INSERT INTO employees (id, name, role, group_id, extension) VALUES ('cc-1', 'Дина', 'agent', 'callcentre', '3001'), ('cc-2', 'Егор', 'agent', 'callcentre', '3002')`)

const fs = new FsSimulator({ port: 0, timeScale: 0.05 })
const fsInbound = new InboundSimulator({
  originate: {
    fs,
    script: (spec) => ({ bridgeTargets: { [`sofia/gateway/trunk/${spec.vars.switchboard_callee}`]: spec.vars.switchboard_callee === '+79997770000' ? { busy: true, ringMs: 200 } : { answerAfterMs: 500, hangupAfterMs: 20_000 } } }),
  },
})
const fsPort = await fsInbound.listen()
t.teardown(() => fsInbound.close())

const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-call-plans-'))
const sb = await startSwitchboard({
  DATABASE_URL: db.url, DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent',
  FS_ESL_HOST: '127.0.0.1', FS_ESL_PORT: String(fsPort), FS_ESL_PASSWORD: 'ClueCon',
}, silentLogger())
t.teardown(async () => { fs.closeAll(); await sb.stop(); await rm(dataDir, { recursive: true, force: true }) })
await waitFor('inbound ESL connected', async () => sb.inbound?.connected)
const admin = await createApiToken(sb.pool, { id: 'u-admin', name: 'Admin', role: 'admin' })

t.test('upload, start, dialled by the running server, reported per row', async (t) => {
  await sb.presence.set('cc-1', 'ready')
  const res = await fetch(`${sb.httpUrl}/api/call-plans?name=server&queueId=callcentre&maxAttempts=1&start=true`, {
    method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/csv' },
    body: 'phone,note\n+7 999 000-11-22,answers\n+79997770000,busy\nfoo,bad\n',
  })
  t.equal(res.status, 201)
  const up = await res.json() as { plan: { id: string; status: string }; rejected: Array<{ line: number; code: string; message: string }> }
  t.equal(up.plan.status, 'running')
  t.match(up.rejected, [{ line: 4, code: 'bad_phone', field: 'phone', value: 'foo', message: /"foo" is not a phone number/ }])
  t.equal(up.rejected.length, 1)
  const get = async () => (await (await fetch(`${sb.httpUrl}/api/call-plans/${up.plan.id}`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { status: string; progress: Record<string, number> }
  const plan = await waitFor('plan completed', async () => { const p = await get(); return p.status === 'completed' && p }, 45_000)
  t.match(plan.progress, { answered: 1, busy: 1, rejected: 1, remaining: 0 }, 'both rows worked')
  const attempts = (await sb.pool.query(
    `SELECT a.started_at, a.ended_at, a.agent_id FROM call_plan_attempts a JOIN call_plan_rows r ON r.id = a.row_id WHERE r.plan_id = $1 ORDER BY a.started_at`, [up.plan.id])).rows
  t.equal(attempts.length, 2)
  t.ok(attempts.every((a) => a.agent_id === 'cc-1') && attempts[1].started_at >= attempts[0].ended_at, 'one ready agent: one call after the other, never two at once')
  const rows = await (await fetch(`${sb.httpUrl}/api/call-plans/${up.plan.id}/rows`, { headers: { authorization: `Bearer ${admin}` } })).json() as { items: Array<{ line: number; status: string; callId: string | null; dialledAgentId: string | null }> }
  const answered = rows.items.find((r) => r.line === 2)!
  t.match(answered, { status: 'answered', dialledAgentId: 'cc-1' })
  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [answered.callId])).rows[0])
  t.match(cdr, { direction: 'outbound', agent_id: 'cc-1', callee: '+79990001122', outcome: 'answered' })
  t.match(rows.items.find((r) => r.line === 3), { status: 'busy' }, 'busy with maxAttempts 1: done')
  t.notOk(fsInbound.originates.some((o) => o.spec.endpoint === 'user/3002'), 'cc-2 was never ready: never rung')
})
