/**
 * ESL benchmark: our outbound server + CallChannel against the wire simulator (running
 * in a child process, so RSS and file descriptors of the two sides are separate), all on
 * 127.0.0.1. Measures call setups/s through answer → route → record → bridge → hangup (and
 * without the route step, with an explicit record stop), concurrent held sessions (RSS per session, event-loop lag p99), and a raw
 * modesl baseline (answer + hangup only) in the same run.
 *
 *   node --import tsx bench/esl.ts        (writes bench/results/esl.json)
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { execSync } from 'node:child_process'
import { silentLogger } from '../src/log.ts'
import { OutboundServer } from '../src/esl/outbound-server.ts'
import type { CallChannel } from '../src/esl/call-channel.ts'
import { Session } from 'node:inspector/promises'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { buildDirectory, type ClientInput, type Employee } from '../src/crm/directory.ts'
import { normalizePhone } from '../src/crm/phone.ts'
import { decideWithWebhook } from '../src/routing/decision-webhook.ts'
import { fixedClock, type PresenceState } from '../src/routing/types.ts'
import { endpointOf } from '../src/calls/context.ts'

type Msg = { type: 'flow'; port: number; n: number; concurrency: number; destination: string; callers?: number; talkMs?: number } | { type: 'hold'; port: number; n: number } | { type: 'release' } | { type: 'exit' }

// ---- child: the FreeSWITCH side ------------------------------------------------------
async function simChild(): Promise<void> {
  const { FsSimulator } = await import('../test/support/fs-simulator.ts')
  let holders: InstanceType<typeof FsSimulator> | undefined
  process.on('message', async (m: Msg) => {
    if (m.type === 'flow') {
      const sim = new FsSimulator({ port: m.port, playbackMs: [0, 0], lingerMs: 0, defaultTarget: { answerAfterMs: 0, hangupAfterMs: m.talkMs ?? 20 } })
      let next = 0
      let failed = 0
      const started = performance.now()
      const cpu0 = process.cpuUsage()
      const worker = async () => {
        while (next < m.n) {
          next++
          const i = next
          // With `callers`: a different known client number per call, so that the routed flow looks each one up.
          const callerIdNumber = m.callers ? routedCaller(i % m.callers) : undefined
          const r = await sim.call({ destination: m.destination, callerIdNumber }).done.catch(() => undefined)
          // A call failed if it did not reach its end: the app may close the socket itself
          // once CHANNEL_HANGUP_COMPLETE is in (CallSession does, after its CDR).
          if (!r || (r.closedBy !== 'fs' && !r.sent.includes('CHANNEL_HANGUP_COMPLETE'))) failed++
        }
      }
      await Promise.all(Array.from({ length: m.concurrency }, worker))
      const cpu = process.cpuUsage(cpu0)
      process.send!({ type: 'flowDone', ms: performance.now() - started, failed, simCpuMs: (cpu.user + cpu.system) / 1000 })
    } else if (m.type === 'hold') {
      holders = new FsSimulator({ port: m.port })
      let connected = 0
      let settled = 0
      for (let i = 0; i < m.n; i++) {
        const c = holders.call({ destination: 'hold' })
        // The server's first bytes (`connect`) mean it accepted us; keep < 200 in flight so
        // the listen backlog never overflows (dropped SYNs retry only after 1 s, 3 s, ...).
        c.socket.once('data', () => (connected++, settled++))
        c.socket.once('close', () => settled++)
        c.done.catch(() => {})
        while (i + 1 - settled > 200) await new Promise((r) => setTimeout(r, 2))
      }
      process.send!({ type: 'holdStarted', connected })
    } else if (m.type === 'release') {
      holders?.closeAll()
      process.send!({ type: 'released' })
    } else if (m.type === 'exit') {
      process.exit(0)
    }
  })
  process.send!({ type: 'ready' })
}

/** The caller numbers of the routed flow: national format, as a trunk delivers them (normalised to E.164 by the route step). */
function routedCaller(i: number): string {
  return `8495${String(2000000 + i).padStart(7, '0')}`
}

// ---- parent: Switchboard's side ------------------------------------------------------
function ask<T>(child: ChildProcess, msg: Msg, reply: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }) => {
      if (m.type !== reply) return
      child.off('message', on)
      resolve(m as T)
    }
    child.on('message', on)
    child.send(msg)
  })
}

/**
 * One run of `n` calls by the simulator child. Wall-clock rate is shared with the
 * simulator (same 2 cores); the per-core figure divides the calls by the CPU time this
 * process (Switchboard's side) used while they ran: process.cpuUsage, user + system.
 */
async function measureFlow(child: ChildProcess, o: { port: number; n: number; concurrency: number; destination: string; callers?: number; talkMs?: number }) {
  let gcMs = 0
  let gcCount = 0
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) (gcMs += e.duration), gcCount++
  })
  gcObserver.observe({ entryTypes: ['gc'] })
  const cpu0 = process.cpuUsage()
  const r = await ask<{ ms: number; failed: number; simCpuMs: number }>(child, { type: 'flow', ...o }, 'flowDone')
  const cpu = process.cpuUsage(cpu0)
  gcObserver.disconnect()
  const cpuMs = (cpu.user + cpu.system) / 1000
  return {
    calls: o.n,
    concurrency: o.concurrency,
    seconds: r.ms / 1000,
    setupsPerSec: o.n / (r.ms / 1000),
    switchboardCpuMs: cpuMs,
    switchboardUserMs: cpu.user / 1000,
    switchboardSystemMs: cpu.system / 1000,
    setupsPerCpuSecond: o.n / (cpuMs / 1000),
    cpuUsPerSetup: (cpuMs * 1000) / o.n,
    simulatorCpuMs: r.simCpuMs,
    /** Time in V8's garbage collector during the run (PerformanceObserver 'gc'), and how many collections. */
    gcMs,
    gcCount,
    failed: r.failed,
    eventLoopLagP99Ms: undefined as number | undefined,
  }
}

/** The DID the routed flow dials: the example config's main number (noIvr, office msk). */
const ROUTE_DID = '+74951230000'
const ROUTED_CALLERS = 10_000
const MANAGERS = 200

/**
 * What the route step reads, built the way the server builds it (example config, a
 * directory snapshot, presence) but without Postgres: 10,000 clients with one phone each,
 * spread over 200 managers of group sales-1 (all ready; consecutive callers have different
 * managers, so 100 calls at once never find theirs busy), the clock inside office hours.
 */
async function routingContext() {
  const config = await loadSwitchboardFile(EXAMPLE_CONFIG)
  const employees: Employee[] = [
    { id: 'emp-sup-1', name: 'Supervisor', role: 'supervisor', groupId: 'sales-1', extension: '1900' },
    { id: 'emp-sec-1', name: 'Secretary', role: 'secretary', groupId: 'sales-1', extension: '1901' },
  ]
  for (let i = 0; i < MANAGERS; i++) employees.push({ id: `mgr-${i}`, name: `Manager ${i}`, role: 'manager', groupId: 'sales-1', extension: String(1100 + i), officeId: 'msk' })
  const clients: ClientInput[] = []
  for (let i = 0; i < ROUTED_CALLERS; i++) clients.push({ id: `c${i}`, name: `Client ${i}`, segment: 'B', kind: 'client', assignedManagerId: `mgr-${i % MANAGERS}`, phones: [routedCaller(i)] })
  const directory = buildDirectory({ clients, employees, groups: config.groups }, { defaultRegion: config.defaultRegion })
  const presence = new Map<string, PresenceState>(employees.map((e) => [e.id, 'ready']))
  // Monday 12:00 in Moscow: the msk office is open.
  return { config, directory, presence, clock: fixedClock('2026-11-23T09:00:00Z') }
}

/** ESL_BENCH_PROF=<dir>: a CPU profile of this process (Switchboard's side) for each measured flow. */
async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.ESL_BENCH_PROF
  if (!dir) return fn()
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
  try {
    return await fn()
  } finally {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `parent-${name}.cpuprofile`), JSON.stringify(profile))
    session.disconnect()
  }
}

/** A full garbage collection now, so that no flow pays for the garbage of the one before. */
function fullGc(): void {
  v8.setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return cond()
}

export async function run(opts: { flowCalls?: number; concurrency?: number; holdTarget?: number } = {}) {
  const flowCalls = opts.flowCalls ?? 2000
  const concurrency = opts.concurrency ?? 100
  const holdTarget = opts.holdTarget ?? 10_000
  const spool = mkdtempSync(join(tmpdir(), 'sb-bench-esl-'))
  const child = fork(fileURLToPath(import.meta.url), ['--sim-child'], { execArgv: ['--import', 'tsx', ...(process.env.ESL_BENCH_SIM_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ESL_BENCH_SIM_PROF}`] : [])], stdio: 'inherit' })
  await new Promise<void>((r) => child.once('message', () => r()))
  const results: Record<string, unknown> = { loadAverageAtStart: (await import('node:os')).loadavg(), node: process.version, ulimitN: ulimit(), cpus: (await import('node:os')).cpus().length }
  try {
    if (process.env.ESL_BENCH_ONLY === 'session') {
      results.callSession = await measureCallSession(child, { n: flowCalls, concurrency })
      return results
    }
    // 1. Switchboard: full flow, and answer+hangup for comparison with modesl.
    const server = new OutboundServer({ port: 0, host: '127.0.0.1', logger: silentLogger(), maxSessions: 50_000 })
    const routing = await routingContext()
    let held = 0
    let flowErrors = 0
    const routedKinds: Record<string, number> = {}
    server.on('channel', (ch: CallChannel) => {
      const dest = ch.channelData.destination
      const flow = async () => {
        if (dest === ROUTE_DID) {
          // As CallSession.decide does it (minus Postgres): caller to E.164, directory
          // snapshot lookup, the routing engine's decision; then the call as decided.
          const { config, directory, presence, clock } = routing
          const caller = normalizePhone(ch.channelData.callerIdNumber, config.defaultRegion)
          const identity = directory.identify(caller)
          const { decision } = await decideWithWebhook({ caller, did: dest, identity }, directory, presence, clock, config)
          routedKinds[decision.kind] = (routedKinds[decision.kind] ?? 0) + 1
          if (decision.kind !== 'direct') throw new Error(`routed to ${decision.kind}, expected direct`)
          const target = directory.employees.get(decision.targets[0].employeeId)
          const endpoint = target && endpointOf(target, { gateways: config.gateways, fmc: config.fmc })
          if (!endpoint) throw new Error(`no endpoint for ${decision.targets[0].employeeId}`)
          // The commands CallSession sends for such a call: answer, record (multiset +
          // record_session), bridge, hangup. No stop_record_session: FreeSWITCH closes the
          // file at hangup, and CallSession leaves it to do so.
          await ch.answer()
          await ch.startRecording(join(spool, `${ch.uuid}.wav`))
          await ch.bridge(endpoint, { timeoutSec: decision.targets[0].ringSec })
          await ch.hangup()
          return
        }
        await ch.answer()
        if (dest === 'hold') {
          held++
          await ch.ended
          held--
          return
        }
        if (dest === 'flow') {
          const path = join(spool, `${ch.uuid}.wav`)
          await ch.startRecording(path)
          await ch.bridge('user/1001', { timeoutSec: 5 })
          await ch.stopRecording(path)
        }
        await ch.hangup()
      }
      flow().catch(() => flowErrors++)
    })
    const { port } = await server.listen()
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    // Warm-up (not measured): both servers get the same, so that neither pays the JIT in its figure.
    await measureFlow(child, { port, n: 300, concurrency, destination: ROUTE_DID, callers: ROUTED_CALLERS })
    await measureFlow(child, { port, n: 300, concurrency, destination: 'flow' })
    await measureFlow(child, { port, n: 300, concurrency, destination: 'simple' })
    // Each measured flow right after 300 calls of its own and a full GC (not measured): the
    // first flow measured paid ~250 µs more per setup than the same flow measured again.
    const measured = async (name: string, o: { destination: string; callers?: number }) => {
      await measureFlow(child, { port, n: 300, concurrency, ...o })
      fullGc()
      for (const k in routedKinds) delete routedKinds[k]
      flowErrors = 0
      lag.reset()
      const r = await profiled(name, () => measureFlow(child, { port, n: flowCalls, concurrency, ...o }))
      r.failed += flowErrors
      r.eventLoopLagP99Ms = lag.percentile(99) / 1e6
      return r
    }
    const routed = await measured('routedFlow', { destination: ROUTE_DID, callers: ROUTED_CALLERS })
    const routedKindsSeen = { ...routedKinds }
    const flow = await measured('fullFlow', { destination: 'flow' })
    const simple = await measured('answerHangup', { destination: 'simple' })
    results.switchboard = {
      // answer → route → record → bridge → hangup, the route decided per call (see routingContext):
      // the commands CallSession sends, minus its Postgres and spool work (measured in callSession).
      routedFlow: { ...routed, routedKinds: routedKindsSeen, steps: 'connect+setup, answer, multiset+record_session, bridge, hangup' },
      // No route step, and an explicit stop_record_session before the hangup (the figure earlier runs reported as the full flow).
      fullFlow: { ...flow, steps: 'connect+setup, answer, multiset+record_session, bridge, stop_record_session, hangup' },
      answerHangup: simple,
    }
    // 2. Held sessions.
    if (process.env.ESL_BENCH_ONLY === 'flows') {
      await server.close()
      return results
    }
    await until(() => server.sessionCount === 0, 5000)
    ;(globalThis as { gc?: () => void }).gc?.()
    const rssBefore = process.memoryUsage().rss
    lag.reset()
    const holdStart = Date.now()
    await ask(child, { type: 'hold', port, n: holdTarget }, 'holdStarted')
    await until(() => held >= holdTarget, 60_000)
    const reached = held
    const holdSeconds = (Date.now() - holdStart) / 1000
    lag.reset()
    await new Promise((r) => setTimeout(r, 1000)) // idle lag with all sessions held
    ;(globalThis as { gc?: () => void }).gc?.()
    const rssAfter = process.memoryUsage().rss
    results.held = {
      target: holdTarget,
      reached,
      secondsToEstablish: holdSeconds,
      rssBeforeMB: rssBefore / 2 ** 20,
      rssAfterMB: rssAfter / 2 ** 20,
      rssPerSessionKB: reached ? (rssAfter - rssBefore) / reached / 1024 : null,
      idleEventLoopLagP99Ms: lag.percentile(99) / 1e6,
    }
    await ask(child, { type: 'release' }, 'released')
    await until(() => server.sessionCount === 0, 20_000)
    results.leakedSessionsAfterRelease = server.sessionCount
    await server.close()
    lag.disable()

    // 3. Baseline: raw modesl outbound server, answer + hangup.
    const require = createRequire(import.meta.url)
    const esl = require('modesl') as { Server: new (o: object, cb: () => void) => ModeslServer }
    type ModeslConn = { execute: (app: string, arg: string, cb: () => void) => void; on: (e: string, f: () => void) => void; socket: unknown }
    type ModeslServer = { on: (e: string, f: (c: ModeslConn) => void) => void; server: { address(): { port: number } }; close(cb: () => void): void }
    const base = await new Promise<ModeslServer>((resolve) => {
      const s: ModeslServer = new esl.Server({ port: 0, host: '127.0.0.1', myevents: true }, () => resolve(s))
    })
    base.on('connection::ready', (conn) => {
      conn.on('error', () => {})
      conn.execute('answer', '', () => conn.execute('hangup', 'NORMAL_CLEARING', () => {}))
    })
    await measureFlow(child, { port: base.server.address().port, n: 300, concurrency, destination: 'simple' })
    fullGc()
    const modesl = await measureFlow(child, { port: base.server.address().port, n: flowCalls, concurrency, destination: 'simple' })
    results.modeslBaseline = modesl
    const sb = results.switchboard as { routedFlow: typeof modesl; fullFlow: typeof modesl; answerHangup: typeof modesl }
    results.summary = {
      target: 'full flow (with the route step) ≥ 1000 setups/s per core of the Switchboard process',
      routedFlowSetupsPerCpuSecond: sb.routedFlow.setupsPerCpuSecond,
      routedFlowTargetMet: sb.routedFlow.setupsPerCpuSecond >= 1000,
      routedFlowCpuRatioVsModesl: modesl.cpuUsPerSetup / sb.routedFlow.cpuUsPerSetup,
      fullFlowSetupsPerCpuSecond: sb.fullFlow.setupsPerCpuSecond,
      fullFlowTargetMet: sb.fullFlow.setupsPerCpuSecond >= 1000,
      fullFlowCpuRatioVsModesl: modesl.cpuUsPerSetup / sb.fullFlow.cpuUsPerSetup,
      answerHangupSetupsPerCpuSecond: sb.answerHangup.setupsPerCpuSecond,
      modeslAnswerHangupSetupsPerCpuSecond: modesl.setupsPerCpuSecond,
      answerHangupCpuRatioVsModesl: modesl.cpuUsPerSetup / sb.answerHangup.cpuUsPerSetup,
      loadAverageAtEnd: (await import('node:os')).loadavg(),
    }
    await new Promise<void>((r) => base.close(() => r()))

    // 4. The real call path: OutboundServer → CallService → CallSession against Postgres.
    if (process.env.ESL_BENCH_SESSION !== '0') {
      results.callSession = await measureCallSession(child, { n: flowCalls, concurrency })
      const cs = results.callSession as typeof modesl
      ;(results.summary as Record<string, unknown>).callSessionSetupsPerCpuSecond = cs.setupsPerCpuSecond
      ;(results.summary as Record<string, unknown>).callSessionCpuRatioVsModesl = modesl.cpuUsPerSetup / cs.cpuUsPerSetup
    }
  } finally {
    // A clean exit (not a signal) so that a --cpu-prof of the child gets written.
    if (child.connected) child.send({ type: 'exit' })
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 3000))])
    child.kill()
    rmSync(spool, { recursive: true, force: true })
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL('./results/esl.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
  return results
}

/**
 * The routed flow as the server runs it: CallService → CallSession (decide with the
 * caller-history query, CDR start/leg/end, call and conversation recordings in the
 * spool, presence claim and release, bridge) against a real, migrated embedded Postgres.
 * CSAT is off and wrap-up 0 s, so that every call is answer → route → bridge → record →
 * hangup and its manager is ready for the next one; the recordings are left in the spool
 * (the pipeline's transcoding is bench/recordings' business). Logger silent, as in the
 * other flows. Postgres runs in its own processes: the CPU figure is Switchboard's alone;
 * round trips are counted at pg.Client.query.
 */
async function measureCallSession(child: ChildProcess, o: { n: number; concurrency: number }) {
  const { startTestDatabase } = await import('../test/support/db.ts')
  const { tempSpool } = await import('../test/support/pipeline.ts')
  const { CallService } = await import('../src/calls/call-service.ts')
  const { CdrWriter } = await import('../src/calls/cdr.ts')
  const { EventBus } = await import('../src/events/bus.ts')
  const { PresenceStore } = await import('../src/acd/presence.ts')
  const { Acd } = await import('../src/acd/dispatcher.ts')
  const { Registry } = await import('prom-client')
  const pg = (await import('pg')).default
  const db = await startTestDatabase()
  const log = silentLogger()
  let spoolDir: string | undefined
  try {
    const { config, directory, clock } = await routingContext()
    config.csat.enabled = false
    for (const q of config.queues) q.wrapUpSec = 0
    const employees = [...directory.employees.values()]
    await db.pool.query(
      `INSERT INTO employees (id, name, role, group_id, extension) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])`,
      [employees.map((e) => e.id), employees.map((e) => e.name), employees.map((e) => e.role), employees.map((e) => e.groupId ?? null), employees.map((e) => e.extension ?? null)],
    )
    const clientIds = Array.from({ length: ROUTED_CALLERS }, (_, i) => `c${i}`)
    await db.pool.query(
      `INSERT INTO clients (id, name, segment, kind, assigned_manager_id) SELECT id, 'Client ' || id, 'B', 'client', 'mgr-' || (substr(id, 2)::int % ${MANAGERS}) FROM unnest($1::text[]) AS id`,
      [clientIds],
    )
    const events = new EventBus()
    const presence = new PresenceStore(db.pool, log, events, { node: Acd.nodeIdFor('bench-node') })
    for (const e of employees) await presence.set(e.id, 'ready')
    await presence.load()
    const spool = await tempSpool()
    spoolDir = spool.dir
    const cdr = new CdrWriter(db.pool, log)
    const server = new OutboundServer({ port: 0, host: '127.0.0.1', logger: log, maxSessions: 50_000 })
    const service = new CallService(server, {
      log, pool: db.pool, cdr, spool, recordings: { enqueue: async () => {}, mayStartOptionalRecording: () => true },
      directory: () => directory, presence, config: () => config, clock, node: 'bench-node', events,
    }, new Registry())
    const { port } = await server.listen()
    let statements = 0
    const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown }
    const query = proto.query
    proto.query = function (this: unknown, ...a: unknown[]) {
      statements++
      return query.apply(this, a)
    }
    // Each call's conversation lasts 1 s: longer than starting its conversation recording
    // (a spool file and uuid_record), so every call does the same recording work.
    const talkMs = 1000
    const spoolFiles = () => {
      const names = readdirSync(spool.dir)
      return { wavs: names.filter((n) => n.endsWith('.wav')).length, sidecars: names.filter((n) => n.endsWith('.json')).length }
    }
    try {
      await measureFlow(child, { port, n: 300, concurrency: o.concurrency, destination: ROUTE_DID, callers: ROUTED_CALLERS, talkMs })
      await until(() => service.activeCalls === 0, 10_000)
      const filesBefore = spoolFiles()
      fullGc()
      const since = new Date()
      statements = 0
      const lag = monitorEventLoopDelay({ resolution: 10 })
      lag.enable()
      const r = await profiled('callSession', async () => {
        const m = await measureFlow(child, { port, n: o.n, concurrency: o.concurrency, destination: ROUTE_DID, callers: ROUTED_CALLERS, talkMs })
        // The CDR's last writes happen after FreeSWITCH's side saw the hangup: wait for them, on the clock.
        const cpu0 = process.cpuUsage()
        await until(() => service.activeCalls === 0, 10_000)
        const tail = process.cpuUsage(cpu0)
        const tailMs = (tail.user + tail.system) / 1000
        m.switchboardCpuMs += tailMs
        m.switchboardUserMs += tail.user / 1000
        m.switchboardSystemMs += tail.system / 1000
        m.setupsPerCpuSecond = o.n / (m.switchboardCpuMs / 1000)
        m.cpuUsPerSetup = (m.switchboardCpuMs * 1000) / o.n
        return m
      })
      r.eventLoopLagP99Ms = lag.percentile(99) / 1e6
      lag.disable()
      const pgStatements = statements
      const filesAfter = spoolFiles()
      const outcomes = (await db.pool.query<{ outcome: string; n: number }>(`SELECT coalesce(outcome, 'open') AS outcome, count(*)::int AS n FROM calls WHERE started_at >= $1 GROUP BY 1`, [since])).rows
      const legs = (await db.pool.query<{ party: string; n: number }>(`SELECT l.party, count(*)::int AS n FROM legs l JOIN calls c ON c.uuid = l.call_uuid WHERE c.started_at >= $1 GROUP BY 1`, [since])).rows
      await service.stop(2_000)
      cdr.stop()
      return {
        ...r,
        pgStatements,
        pgStatementsPerCall: pgStatements / o.n,
        cdrOutcomes: Object.fromEntries(outcomes.map((x) => [x.outcome, x.n])),
        legsByParty: Object.fromEntries(legs.map((x) => [x.party, x.n])),
        // Same work in every run: the call recording and the conversation recording of each call (2 WAVs, 2 sidecars).
        spoolPerCall: { wavs: (filesAfter.wavs - filesBefore.wavs) / o.n, sidecars: (filesAfter.sidecars - filesBefore.sidecars) / o.n },
        talkMs,
        note: 'CSAT off, wrap-up 0 s, 1 s conversations, recordings left in the spool (no transcoding), silent logger; Postgres CPU not included',
      }
    } finally {
      proto.query = query
    }
  } finally {
    await db.close()
    if (spoolDir) rmSync(spoolDir, { recursive: true, force: true })
  }
}

function ulimit(): string {
  try {
    return execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim()
  } catch {
    return 'unknown'
  }
}

if (process.argv.includes('--sim-child')) {
  await simChild()
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await run()
  process.stdout.write(JSON.stringify(r, null, 2) + '\n')
}
