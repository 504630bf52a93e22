/**
 * Webhooks bench (issue 14): what the outbox costs the call path, and how fast the outbox
 * drains into a local receiver compared with plain signed POSTs at the same concurrency.
 *
 *   node --import tsx bench/webhooks.ts        (writes bench/results/webhooks.json)
 *
 * 1. emit() cost: the synchronous time a call spends in events.emit('call.ended') with the
 *    outbox listening, vs a bus with no listener (baseline). The insert itself runs after.
 * 2. drain: N call.ended events emitted in a burst → enriched insert → claimed with SKIP
 *    LOCKED → signed POST → marked delivered. Deliveries/s and emit→receipt latency, vs
 *    the same N signed POSTs sent directly (postWebhook, same concurrency): the ratio is
 *    the price of durability (Postgres round trips per delivery).
 */
import http from 'node:http'
import { randomUUID } from 'node:crypto'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'
import { migrate } from '../src/db/migrate.ts'
import { createPool } from '../src/db/pool.ts'
import { silentLogger } from '../src/log.ts'
import { EventBus, type SwitchboardEvents } from '../src/events/bus.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { startWebhooks } from '../src/webhooks/index.ts'
import { postWebhook } from '../src/webhooks/http-post.ts'
import { signatureHeader } from '../src/webhooks/signature.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const N = Number(process.env.BENCH_WEBHOOKS_N ?? 2000)
const EMITS = 20_000
const CONCURRENCY = 4
const out = (s: string) => process.stdout.write(`${s}\n`)
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }

const log = silentLogger()
const dir = await mkdtemp(path.join(tmpdir(), 'sb-bench-webhooks-'))
const pg = await startEmbeddedPostgres(dir, log)
await migrate(pg.url, log)
const pool = createPool(pg.url, log)
await pool.query(`INSERT INTO employees (id, name, role) VALUES ('m1', 'Maria', 'manager')`)
await pool.query(`INSERT INTO clients (id, name) VALUES ('c1', 'Acme')`)

const arrivals = new Map<string, number>()
const receiver = http.createServer((req, res) => {
  req.resume()
  req.on('end', () => { arrivals.set(String(req.headers['x-switchboard-delivery']), performance.now()); res.writeHead(200).end('ok') })
})
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()))
const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`

const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
cfg.webhooks = { ...cfg.webhooks, concurrency: CONCURRENCY, allowList: ['127.0.0.1'], endpoints: [{ id: 'bench', url, events: ['call.ended'], secret: 'bench-secret-0123456789', enabled: true, format: 'switchboard', countedOnly: false }] }

const ended = (): SwitchboardEvents['call.ended'] => ({
  callUuid: randomUUID(), direction: 'inbound', caller: '+74951234567', did: '+74951112233', clientId: 'c1', at: new Date().toISOString(),
  outcome: 'answered', counted: true, agentId: 'm1', queueId: null, billsec: 40, talkSec: 35, answeredAt: null, connectedAt: null,
  hangupCause: 'NORMAL_CLEARING', csat: null, ivrPath: [], startedAt: new Date().toISOString(), recordingIds: [],
})

// ---- 1. emit cost on the call path
function emitCost(bus: EventBus, n: number): number[] {
  const us: number[] = []
  for (let i = 0; i < n; i++) {
    const e = ended()
    const t0 = process.hrtime.bigint()
    bus.emit('call.ended', e)
    us.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  return us
}
const bare = emitCost(new EventBus(), EMITS)
const costBus = new EventBus()
const noEndpoints = structuredClone(cfg)
noEndpoints.webhooks.endpoints = []
// the listener with no endpoint wanting the event: only the filter runs
const idle = startWebhooks({ pool, events: costBus, log, config: () => noEndpoints, node: 'bench' })
const filtered = emitCost(costBus, EMITS)
await idle.stop()
// with an endpoint: the insert is started (not awaited) — measured in a smaller burst so Postgres is not the subject here
const liveBus = new EventBus()
const paused = structuredClone(cfg)
paused.webhooks.endpoints[0].enabled = true
const costHooks = startWebhooks({ pool, events: liveBus, log, config: () => paused, node: 'bench-cost' })
await costHooks.worker.stop() // nothing is delivered in this part
const queued = emitCost(liveBus, 2000)
await costHooks.outbox.flush()
await costHooks.stop()
await pool.query('DELETE FROM webhook_events')
const emit = {
  baselineNoListener: { p50Us: round(pct(bare, 0.5), 3), p99Us: round(pct(bare, 0.99), 3) },
  outboxNoEndpoint: { p50Us: round(pct(filtered, 0.5), 3), p99Us: round(pct(filtered, 0.99), 3) },
  outboxQueueing: { p50Us: round(pct(queued, 0.5), 3), p99Us: round(pct(queued, 0.99), 3) },
}
out(`emit('call.ended') on the call path: no listener p50 ${emit.baselineNoListener.p50Us} µs p99 ${emit.baselineNoListener.p99Us} µs | outbox, no endpoint p50 ${emit.outboxNoEndpoint.p50Us} µs | outbox queueing an insert p50 ${emit.outboxQueueing.p50Us} µs p99 ${emit.outboxQueueing.p99Us} µs`)

// ---- 2a. baseline: the same signed POSTs, directly
arrivals.clear()
const body = JSON.stringify({ id: randomUUID(), type: 'call.ended', occurredAt: new Date().toISOString(), data: { call: ended() } })
let t0 = performance.now()
let next = 0
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < N) {
    const i = next++
    const o = await postWebhook(url, { 'x-switchboard-delivery': `raw-${i}`, 'x-switchboard-signature': signatureHeader('bench-secret-0123456789', Math.floor(Date.now() / 1000), body) }, body, { timeoutMs: 5000, policy: cfg.webhooks })
    if (!o.ok) throw new Error(`baseline POST failed: ${o.error}`)
  }
}))
const rawMs = performance.now() - t0
const rawRate = N / (rawMs / 1000)
out(`baseline: ${N} signed POSTs at concurrency ${CONCURRENCY}: ${round(rawMs)} ms → ${round(rawRate)} /s`)

// ---- 2b. through the outbox
arrivals.clear()
const bus = new EventBus()
const hooks = startWebhooks({ pool, events: bus, log, config: () => cfg, node: 'bench' })
const emittedAt = new Map<string, number>()
t0 = performance.now()
for (let i = 0; i < N; i++) { const e = ended(); emittedAt.set(e.callUuid, performance.now()); bus.emit('call.ended', e) }
await hooks.outbox.flush()
const insertedMs = performance.now() - t0
for (;;) {
  const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE state = 'delivered'`)
  if (r.rows[0].n >= N) break
  await new Promise((res) => setTimeout(res, 50))
}
const drainMs = performance.now() - t0
await hooks.stop()
const byDelivery = (await pool.query<{ id: string; call: string }>(`SELECT d.id, e.data #>> '{call,uuid}' AS call FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`)).rows
const lat = byDelivery.map((r) => (arrivals.get(r.id) ?? Number.NaN) - (emittedAt.get(r.call) ?? Number.NaN)).filter(Number.isFinite)
const rate = N / (drainMs / 1000)
const result = {
  bench: 'webhooks', at: new Date().toISOString(), node: process.version, n: N, concurrency: CONCURRENCY, emit,
  baselineDirectPosts: { ms: round(rawMs), perSec: round(rawRate) },
  outbox: { allInsertedMs: round(insertedMs), drainMs: round(drainMs), perSec: round(rate), emitToReceiptP50Ms: round(pct(lat, 0.5)), emitToReceiptP99Ms: round(pct(lat, 0.99)), received: lat.length },
  ratioDirectOverOutbox: round(rawRate / rate),
}
out(`outbox: ${N} events inserted in ${round(insertedMs)} ms, all delivered in ${round(drainMs)} ms → ${round(rate)} /s; emit→receipt p50 ${result.outbox.emitToReceiptP50Ms} ms p99 ${result.outbox.emitToReceiptP99Ms} ms (burst of ${N})`)
out(`ratio direct/outbox throughput: ${result.ratioDirectOverOutbox}×`)

await mkdir(path.join(here, 'results'), { recursive: true })
await writeFile(path.join(here, 'results', 'webhooks.json'), `${JSON.stringify(result, null, 2)}\n`)
receiver.close()
await pool.end()
await pg.stop()
await rm(dir, { recursive: true, force: true })
