import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { Employee } from '../src/crm/directory.ts'

// Seed 000: numbers the nightly import does not know go to the slow ERP — with a strict
// timeout, so the caller never waits on it. A real HTTP server plays the ERP.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [{ id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001' }]

const db = await startTestDatabase()
t.teardown(() => db.close())
await db.pool.query(`INSERT INTO clients (id, name, segment, assigned_manager_id) VALUES ('erp-77', 'ООО Из ERP', 'A', NULL)`)

function erp(handler: (phone: string, res: import('node:http').ServerResponse) => void): Promise<{ url: string; server: Server; asked: string[] }> {
  const asked: string[] = []
  const server = createServer((req, res) => {
    const phone = new URL(req.url ?? '/', 'http://x').searchParams.get('phone') ?? ''
    asked.push(phone)
    handler(phone, res)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/lookup`, server, asked })))
}

t.test('an unknown number found in the ERP is routed to the client\'s manager', async (t) => {
  const e = await erp((_phone, res) => res.end(JSON.stringify({ found: true, client: { id: 'erp-77', name: 'ООО Из ERP', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1' } })))
  t.teardown(() => e.server.close())
  const h = await startCallHarness(db, { employees, clients: [], ready: ['mgr-1'], at: AT, configure: (c) => { c.crm.liveLookup = { url: e.url, method: 'GET', timeoutMs: 300, concurrency: 8, cacheTtlSec: 300, failureThreshold: 5, coolDownSec: 30 } } })
  t.teardown(() => h.close())
  const call = h.sim.call({ callerIdNumber: '84957654321', destination: '+74951230000', bridgeTargets: { 'user/1001': { answerAfterMs: 1000, hangupAfterMs: 20_000 } } })
  await call.done
  t.same(e.asked, ['+74957654321'], 'the ERP was asked once, with the E.164 number')
  const cdr = await waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [call.uuid])).rows[0])
  t.equal(cdr.client_id, 'erp-77', 'call linked to the card the ERP named')
  t.equal(cdr.agent_id, 'mgr-1', 'the client\'s own manager took it')
})

t.test('an ERP that hangs: routed by the fallback within the timeout', async (t) => {
  const e = await erp(() => { /* never answers */ })
  t.teardown(() => { e.server.closeAllConnections(); e.server.close() })
  // Half speed: the caller's 3 s of patience are 1.5 s of wall time, well past the 300 ms bound.
  const h = await startCallHarness(db, { employees, clients: [], ready: [], at: AT, timeScale: 0.5, configure: (c) => { c.crm.liveLookup = { url: e.url, method: 'GET', timeoutMs: 300, concurrency: 8, cacheTtlSec: 300, failureThreshold: 5, coolDownSec: 30 } } })
  t.teardown(() => h.close())
  const started = Date.now()
  let answeredAfter = -1
  const call = h.sim.call({ callerIdNumber: '84950000001', destination: '+74951230000', hangupAtMs: 3_000 })
  call.socket.on('data', () => { if (answeredAfter < 0 && call.commands.some((c) => c.headers['execute-app-name'] === 'answer')) answeredAfter = Date.now() - started })
  await call.done
  t.equal(e.asked.length, 1, 'the ERP was asked')
  t.ok(answeredAfter >= 0 && answeredAfter < 1500, `answered ${answeredAfter} ms after the call arrived (lookup bound 300 ms)`)
  const cdr = await waitFor('CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [call.uuid])).rows[0])
  t.equal(cdr.client_id, null, 'unidentified')
  t.equal(cdr.queue_id, 'sales', 'unknown caller → sales (seed 001)')
})
