/**
 * ACD benchmark: a burst of callers into one queue served by N agents, through the whole
 * call path (wire simulator → outbound ESL → CallService → ACD in Postgres → bridge).
 * Two Switchboard "nodes" (each its own OutboundServer, CallService, ACD, pool and
 * simulator) share one Postgres; the baseline is the same load on one node, in the same
 * run. Figures: offers/s, callers answered/s, wait until offered (p50/p99), and the
 * evidence from the offer log (acd_offers) and the presence history: no agent ever had
 * two offers at once, no caller was offered to two agents, every caller answered once.
 *
 *   node --import tsx bench/acd.ts          (writes bench/results/acd.json)
 *   ACD_CALLS=500 ACD_AGENTS=50 node --import tsx bench/acd.ts
 */
import { fork } from 'node:child_process'
import { mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir, cpus, loadavg } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import { startTestDatabase } from '../test/support/db.ts'
import { FsSimulator } from '../test/support/fs-simulator.ts'
import { createPool } from '../src/db/pool.ts'
import { OutboundServer } from '../src/esl/outbound-server.ts'
import { CallService } from '../src/calls/call-service.ts'
import { CdrWriter } from '../src/calls/cdr.ts'
import { PresenceStore } from '../src/acd/presence.ts'
import { Acd } from '../src/acd/dispatcher.ts'
import { EventBus } from '../src/events/bus.ts'
import { Spool } from '../src/recordings/spool.ts'
import { buildDirectory, type Employee } from '../src/crm/directory.ts'
import { loadSwitchboardFile, type SwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { fixedClock } from '../src/routing/types.ts'
import { endpointOf } from '../src/calls/context.ts'
import { silentLogger, createLogger } from '../src/log.ts'

// ---- child: one node's FreeSWITCH (the simulator), in its own process --------------------
type SimJob = { port: number; callers: string[]; targets: Record<string, { answerAfterMs: number; hangupAfterMs: number }> }
type SimResult = { uuids: string[]; failed: number; multiEndpointBridges: number }
if (process.argv[2] === 'sim-child') {
  process.once('message', async (job: SimJob) => {
    const sim = new FsSimulator({ port: job.port, timeScale: 0.1, lingerMs: 0 })
    const calls = []
    for (let i = 0; i < job.callers.length; i++) {
      calls.push(sim.call({ callerIdNumber: job.callers[i], destination: '+74950000099', bridgeTargets: job.targets }))
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 50)) // a burst of ~200 callers/s, not one SYN flood
    }
    const results = await Promise.all(calls.map((c) => c.done.catch(() => null)))
    const multi = calls.filter((c) => c.commands.some((x) => x.headers['execute-app-name'] === 'bridge' && /user\/\d+,/.test(x.headers['execute-app-arg'] ?? ''))).length
    process.send!({ uuids: calls.map((c) => c.uuid), failed: results.filter((r) => r === null).length, multiEndpointBridges: multi } satisfies SimResult, () => process.exit(0))
  })
  process.send!('ready')
  await new Promise(() => undefined)
}

const CALLS = Number(process.env.ACD_CALLS ?? 200)
const AGENTS = Number(process.env.ACD_AGENTS ?? 20)
const TIME_SCALE = 0.1 // the simulator's script ms × 0.1 = real ms (set in the child)
const DID = '+74950000099'
const HARD_LIMIT_MS = 170_000
const log = process.env.ACD_DEBUG ? createLogger('warn') : silentLogger()
const here = path.dirname(fileURLToPath(import.meta.url))

setTimeout(() => { process.stderr.write(`bench/acd: over ${HARD_LIMIT_MS / 1000} s, giving up\n`); process.exit(2) }, HARD_LIMIT_MS).unref()

const employees: Employee[] = Array.from({ length: AGENTS }, (_, i) => ({ id: `ag${i}`, name: `Agent ${i}`, role: 'agent' as const, groupId: 'bg', extension: String(3000 + i) }))
const config = await loadSwitchboardFile(EXAMPLE_CONFIG)
config.csat.enabled = false
config.routing.repeatCaller.enabled = false
config.acd.pollIntervalMs = 500
config.groups.push({ id: 'bg', name: 'Bench group', officeId: 'msk' })
config.queues.push({
  ...config.queues[0], id: 'bq', name: 'Bench queue', strategy: 'longest-idle', groupIds: ['bg'], agentTimeoutSec: 30, maxWaitSec: 600, maxLength: 100_000,
  overflow: { action: 'callback' }, wrapUpSec: 0, priorityRules: [], announcePosition: false, announceExpectedWait: false, musicOnHold: 'moh.wav',
})
config.dids[DID] = { source: 'bench', noIvr: true, queue: 'bq', officeId: 'msk' }
const directory = buildDirectory({ clients: [], employees, groups: config.groups }, { defaultRegion: 'RU' })

const db = await startTestDatabase()
for (const e of employees) await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5)', [e.id, e.name, e.role, e.groupId, e.extension])

interface Node { name: string; port: number; service: CallService; acd: Acd; close(): Promise<void> }

async function startNode(name: string, cfg: SwitchboardFile): Promise<Node> {
  const pool = createPool(db.url, log, 30)
  if (process.env.ACD_DEBUG) setInterval(() => process.stderr.write(`${name} pool total ${pool.totalCount} idle ${pool.idleCount} waiting ${pool.waitingCount}\n`), 2000).unref()
  const events = new EventBus()
  const presence = new PresenceStore(pool, log, events, { node: Acd.nodeIdFor(name) })
  await presence.load()
  const acd = new Acd({ pool, log, presence, config: () => cfg, directory: () => directory, events, node: name, ringable: (e) => endpointOf(e) !== null })
  await acd.start()
  const spoolDir = await mkdtemp(path.join(tmpdir(), 'sb-bench-acd-'))
  const spool = new Spool(spoolDir)
  await spool.init()
  const cdr = new CdrWriter(pool, log)
  const esl = new OutboundServer({ port: 0, host: '127.0.0.1', logger: log })
  // Recordings are written by the simulator but not transcoded here: this measures the ACD, not ffmpeg.
  const service = new CallService(esl, {
    log, pool, cdr, spool, recordings: { enqueue: async () => undefined, mayStartOptionalRecording: () => true }, directory: () => directory, presence,
    config: () => cfg, clock: fixedClock('2026-11-23T09:00:00Z'), node: name, events, acd,
  }, new Registry())
  const { port } = await esl.listen()
  return {
    name, port, service, acd,
    close: async () => {
      await service.stop(2_000)
      await acd.stop()
      cdr.stop()
      await pool.end()
      rmSync(spoolDir, { recursive: true, force: true })
    },
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

/** Every agent ready, the burst of callers (spread over the nodes), wait until all are done. */
async function run(label: string, nodes: Node[]) {
  await db.pool.query(`DELETE FROM queue_calls; DELETE FROM acd_queue_cursor; DELETE FROM agent_presence_history`)
  await db.pool.query(`INSERT INTO agent_presence (employee_id, state, since) SELECT id, 'ready', now() FROM employees
                       ON CONFLICT (employee_id) DO UPDATE SET state = 'ready', reason = NULL, since = now(), call_uuid = NULL, wrap_up_until = NULL, last_call_ended_at = NULL`)
  for (const n of nodes) await n.acd.settle()
  const targets = Object.fromEntries(employees.map((e) => [`user/${e.extension}`, { answerAfterMs: 100 + Math.floor(Math.random() * 200), hangupAfterMs: 500 + Math.floor(Math.random() * 1000) }]))
  // One simulator process per node; the callers are spread over the nodes.
  const children = nodes.map(() => fork(fileURLToPath(import.meta.url), ['sim-child'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }))
  await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve)))) // loaded: the clock starts now
  const t0 = Date.now()
  const sims = await Promise.all(nodes.map((node, k) => new Promise<SimResult>((resolve, reject) => {
    const callers = Array.from({ length: CALLS }, (_, i) => i).filter((i) => i % nodes.length === k).map((i) => `7904${label === 'one' ? '1' : '2'}${String(i).padStart(6, '0')}`)
    children[k].once('message', (m) => resolve(m as SimResult))
    children[k].once('exit', (code) => { if (code !== 0) reject(new Error(`simulator of ${node.name} exited ${code}`)) })
    children[k].send({ port: node.port, callers, targets } satisfies SimJob)
  })))
  const seconds = (Date.now() - t0) / 1000
  const uuids = sims.flatMap((r) => r.uuids)
  // Give the CDR writes of the last hangups a moment.
  for (let i = 0; i < 50; i++) {
    const n = (await db.pool.query(`SELECT count(*)::int AS n FROM calls WHERE uuid = ANY($1::uuid[]) AND ended_at IS NOT NULL`, [uuids])).rows[0].n
    if (n === CALLS) break
    await new Promise((r) => setTimeout(r, 100))
  }
  const offers = (await db.pool.query(`SELECT * FROM acd_offers WHERE call_uuid = ANY($1::uuid[]) ORDER BY offered_at`, [uuids])).rows as Array<{ offer_id: number; call_uuid: string; employee_id: string; offered_at: Date; ended_at: Date | null; outcome: string | null; node: string }>
  const cdrs = (await db.pool.query(`SELECT uuid, outcome, started_at, agent_id FROM calls WHERE uuid = ANY($1::uuid[])`, [uuids])).rows as Array<{ uuid: string; outcome: string; started_at: Date; agent_id: string | null }>

  // 1. No agent with two offers open at the same time (offer log).
  let agentOverlaps = 0
  const byAgent = new Map<string, typeof offers>()
  for (const o of offers) byAgent.set(o.employee_id, [...(byAgent.get(o.employee_id) ?? []), o])
  for (const list of byAgent.values()) {
    for (let i = 1; i < list.length; i++) if (!list[i - 1].ended_at || list[i].offered_at < list[i - 1].ended_at!) agentOverlaps++
  }
  // 2. No caller offered to two agents (longest-idle: one agent per offer, offers of a call never overlap).
  let callerDouble = 0
  const byCall = new Map<string, typeof offers>()
  for (const o of offers) byCall.set(o.call_uuid, [...(byCall.get(o.call_uuid) ?? []), o])
  for (const list of byCall.values()) {
    const ids = new Set(list.map((o) => o.offer_id))
    if (ids.size !== list.length) callerDouble++ // two agents in one offer
    for (let i = 1; i < list.length; i++) if (!list[i - 1].ended_at || list[i].offered_at < list[i - 1].ended_at!) callerDouble++
  }
  // 3. The presence history agrees: each on_call period names one call, and they never overlap per agent.
  const hist = (await db.pool.query(`SELECT employee_id, reason, started_at, coalesce(ended_at, now()) AS ended_at FROM agent_presence_history WHERE state = 'on_call' ORDER BY employee_id, started_at`)).rows as Array<{ employee_id: string; reason: string; started_at: Date; ended_at: Date }>
  let historyOverlaps = 0
  for (let i = 1; i < hist.length; i++) if (hist[i].employee_id === hist[i - 1].employee_id && hist[i].started_at < hist[i - 1].ended_at) historyOverlaps++
  // 4. Each caller answered exactly once, and on the wire each bridge named one endpoint.
  const answeredOffers = new Map<string, number>()
  for (const o of offers) if (o.outcome === 'answered') answeredOffers.set(o.call_uuid, (answeredOffers.get(o.call_uuid) ?? 0) + 1)
  const answeredTwice = [...answeredOffers.values()].filter((n) => n > 1).length
  const answered = cdrs.filter((c) => c.outcome === 'answered').length
  const multiBridge = sims.reduce((n, r) => n + r.multiEndpointBridges, 0)
  const failedSockets = sims.reduce((n, r) => n + r.failed, 0)

  // Where the time goes: how long an offer holds an agent (ring + talk), and how long an agent waits between offers while callers wait.
  const holds = offers.filter((o) => o.ended_at).map((o) => o.ended_at!.getTime() - o.offered_at.getTime())
  const gaps: number[] = []
  for (const list of byAgent.values()) for (let i = 1; i < list.length; i++) if (list[i - 1].ended_at) gaps.push(list[i].offered_at.getTime() - list[i - 1].ended_at!.getTime())
  const startedAt = new Map(cdrs.map((c) => [c.uuid, c.started_at.getTime()]))
  const waits = [...byCall.entries()].map(([uuid, list]) => list[0].offered_at.getTime() - (startedAt.get(uuid) ?? list[0].offered_at.getTime()))
  const firstOffer = offers[0]?.offered_at.getTime() ?? 0
  const lastOffer = offers.at(-1)?.offered_at.getTime() ?? 0
  const out = {
    nodes: nodes.length, calls: CALLS, agents: AGENTS, seconds,
    offers: offers.length, offersPerSec: offers.length / Math.max(0.001, (lastOffer - firstOffer) / 1000),
    answered, answeredPerSec: answered / seconds,
    waitToOfferMs: { p50: pct(waits, 50), p99: pct(waits, 99), max: Math.max(0, ...waits) },
    offersPerNode: Object.fromEntries(nodes.map((n) => [n.name, offers.filter((o) => o.node.startsWith(`${n.name}:`)).length])),
    doubleOffers: { agentOverlaps, callerOfferedTwice: callerDouble, historyOverlaps, answeredTwice, multiEndpointBridges: multiBridge },
    failedSockets, notAnswered: CALLS - answered,
    outcomes: cdrs.reduce<Record<string, number>>((m, c) => { m[c.outcome ?? 'none'] = (m[c.outcome ?? 'none'] ?? 0) + 1; return m }, {}),
    offerHoldMs: { p50: pct(holds, 50), p99: pct(holds, 99) }, agentGapBetweenOffersMs: { p50: pct(gaps, 50), p99: pct(gaps, 99) },
  }
  process.stdout.write(`${label.padEnd(4)} ${nodes.length} node(s): ${CALLS} callers / ${AGENTS} agents in ${seconds.toFixed(1)} s; ${out.offersPerSec.toFixed(1)} offers/s, `
    + `${out.answeredPerSec.toFixed(1)} answered/s; wait to offer p50 ${out.waitToOfferMs.p50} ms p99 ${out.waitToOfferMs.p99} ms; `
    + `offer holds an agent p50 ${out.offerHoldMs.p50} ms, agent idle between offers p50 ${out.agentGapBetweenOffersMs.p50} ms; `
    + `outcomes ${JSON.stringify(out.outcomes)}; double offers: agent ${agentOverlaps}, caller ${callerDouble}, history ${historyOverlaps}, answered twice ${answeredTwice}; not answered ${out.notAnswered}\n`)
  return out
}

const load0 = loadavg()[0]
const one = await startNode('solo', config)
const baseline = await run('one', [one])
await one.close()
if (process.env.ACD_ONLY === 'one') { await db.close(); process.exit(0) } // diagnosis: the baseline alone, no results file
const a = await startNode('node-a', config)
const b = await startNode('node-b', config)
const two = await run('two', [a, b])
await a.close()
await b.close()
await db.close()

const clean = (r: typeof two) => r.doubleOffers.agentOverlaps + r.doubleOffers.callerOfferedTwice + r.doubleOffers.historyOverlaps + r.doubleOffers.answeredTwice + r.doubleOffers.multiEndpointBridges === 0
const result = {
  node: process.version, cpus: cpus().length, loadAvgAtStart: load0, loadAvgAtEnd: loadavg()[0],
  setup: { calls: CALLS, agents: AGENTS, strategy: 'longest-idle', timeScale: TIME_SCALE, ringMsReal: '10-30', talkMsReal: '50-150', wrapUpSec: 0 },
  baselineOneNode: baseline,
  twoNodes: two,
  ratioTwoToOne: { offersPerSec: two.offersPerSec / baseline.offersPerSec, answeredPerSec: two.answeredPerSec / baseline.answeredPerSec, waitP99: two.waitToOfferMs.p99 / Math.max(1, baseline.waitToOfferMs.p99) },
  zeroDoubleOffers: clean(baseline) && clean(two),
}
mkdirSync(path.join(here, 'results'), { recursive: true })
writeFileSync(path.join(here, 'results', 'acd.json'), JSON.stringify(result, null, 2) + '\n')
process.stdout.write(`two/one: offers/s ×${result.ratioTwoToOne.offersPerSec.toFixed(2)}, answered/s ×${result.ratioTwoToOne.answeredPerSec.toFixed(2)}; zero double offers: ${result.zeroDoubleOffers}\n`)
process.exit(result.zeroDoubleOffers && baseline.notAnswered === 0 && two.notAnswered === 0 ? 0 : 1)
