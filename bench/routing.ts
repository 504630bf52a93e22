/**
 * Routing bench: 1 M phones in the compact PhoneIndex vs a raw Map<string, string>.get
 * baseline in the same run, then full decideRoute p99 over a directory of that size.
 *
 *   node --import tsx bench/routing.ts        (writes bench/results/routing.json)
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { PhoneIndex } from '../src/crm/phone-index.ts'
import { buildDirectory, type ClientInput, type Employee } from '../src/crm/directory.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { decideRoute } from '../src/routing/decide.ts'
import { fixedClock, type PresenceState } from '../src/routing/types.ts'

const here = dirname(fileURLToPath(import.meta.url))

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d

/** Time each call separately (ns → µs) so p99 means per-lookup latency; returns sorted µs. */
function timeEach(n: number, fn: (i: number) => unknown): { sorted: Float64Array; sink: number } {
  const out = new Float64Array(n)
  let sink = 0
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    const r = fn(i)
    const t1 = process.hrtime.bigint()
    if (r !== undefined) sink++
    out[i] = Number(t1 - t0) / 1000
  }
  out.sort()
  return { sorted: out, sink }
}

function summary(s: Float64Array) {
  return { p50Us: round(pct(s, 0.5)), p99Us: round(pct(s, 0.99)), p999Us: round(pct(s, 0.999)), maxUs: round(s[s.length - 1]) }
}

export async function run(opts: { phones?: number; lookups?: number; decisions?: number; write?: boolean } = {}) {
  const N = opts.phones ?? 1_000_000
  const LOOKUPS = opts.lookups ?? 300_000
  const DECISIONS = opts.decisions ?? 20_000
  const CLIENTS = Math.ceil(N / 3)
  const phoneOf = (i: number) => `+79${String((i * 997 + 12345) % 1_000_000_000).padStart(9, '0')}`
  const log = (s: string) => process.stdout.write(`${s}\n`)

  // ---- build
  global.gc?.()
  const heap0 = process.memoryUsage().heapUsed
  let t = performance.now()
  const entries = new Array(N)
  for (let i = 0; i < N; i++) entries[i] = { e164: phoneOf(i), clientId: `c${i % CLIENTS}` }
  const genMs = performance.now() - t
  t = performance.now()
  const index = PhoneIndex.build(entries)
  const buildMs = performance.now() - t
  t = performance.now()
  const map = new Map<string, string>()
  for (const e of entries) map.set(e.e164, e.clientId)
  const mapBuildMs = performance.now() - t
  log(`generated ${N} phones in ${genMs.toFixed(0)} ms; PhoneIndex.build ${buildMs.toFixed(0)} ms (${(index.stats().bytes / 1e6).toFixed(1)} MB typed arrays); Map build ${mapBuildMs.toFixed(0)} ms`)

  // ---- lookups: 90 % hits, 10 % misses, random order
  const probes: string[] = new Array(LOOKUPS)
  let seed = 7
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  for (let i = 0; i < LOOKUPS; i++) probes[i] = i % 10 === 9 ? `+78${String(rnd() % 1_000_000_000).padStart(9, '0')}` : phoneOf(rnd() % N)
  for (let i = 0; i < 50_000; i++) { index.lookup(probes[i]); map.get(probes[i]) } // warm-up
  const overhead = timeEach(LOOKUPS, () => undefined)
  const idx = timeEach(LOOKUPS, i => index.lookup(probes[i]))
  const base = timeEach(LOOKUPS, i => map.get(probes[i]))
  let mismatches = 0
  for (let i = 0; i < 20_000; i++) if (index.lookup(probes[i]) !== map.get(probes[i])) mismatches++
  // Throughput without the per-call timer.
  t = performance.now(); let hits = 0
  for (let i = 0; i < LOOKUPS; i++) if (index.lookup(probes[i]) !== undefined) hits++
  const idxBatchNs = ((performance.now() - t) * 1e6) / LOOKUPS
  t = performance.now()
  for (let i = 0; i < LOOKUPS; i++) if (map.get(probes[i]) !== undefined) hits++
  const mapBatchNs = ((performance.now() - t) * 1e6) / LOOKUPS
  log(`timer overhead            p50 ${summary(overhead.sorted).p50Us} µs p99 ${summary(overhead.sorted).p99Us} µs`)
  log(`PhoneIndex.lookup         ${JSON.stringify(summary(idx.sorted))}  batch ${idxBatchNs.toFixed(0)} ns/op`)
  log(`Map.get baseline          ${JSON.stringify(summary(base.sorted))}  batch ${mapBatchNs.toFixed(0)} ns/op  (mismatches ${mismatches})`)

  // ---- decideRoute over a directory of the same size
  const config = await loadSwitchboardFile(join(here, '..', 'config', 'switchboard.example.yaml'))
  const employees: Employee[] = []
  const groups = ['sales-1', 'sales-2', 'callcentre']
  for (let i = 0; i < 300; i++) employees.push({ id: `e${i}`, name: `Employee ${i}`, role: i % 50 === 0 ? 'supervisor' : 'manager', groupId: groups[i % 3] })
  employees.push({ id: 'emp-sup-1', name: 'Sup', role: 'supervisor', groupId: 'sales-1' }, { id: 'emp-sec-1', name: 'Sec', role: 'secretary', groupId: 'sales-1' })
  const kinds = ['client', 'client', 'client', 'client', 'supplier', 'partner', 'other'] as const
  const segs = ['A', 'B', 'B', 'C'] as const
  const clients: ClientInput[] = new Array(CLIENTS)
  for (let i = 0; i < CLIENTS; i++) clients[i] = { id: `c${i}`, name: `Client ${i}`, segment: segs[i % 4], kind: kinds[i % 7], assignedManagerId: `e${i % 300}`, phones: [] }
  for (let i = 0; i < N; i++) clients[i % CLIENTS].phones.push(entries[i].e164)
  t = performance.now()
  const directory = buildDirectory({ clients, employees, groups: config.groups }, { defaultRegion: 'RU' })
  const dirMs = performance.now() - t
  const states: PresenceState[] = ['ready', 'ready', 'on_call', 'not_ready', 'offline', 'wrap_up']
  const presence = new Map<string, PresenceState>(employees.map((e, i) => [e.id, states[i % states.length]]))
  const dids = Object.keys(config.dids)
  const times = ['2025-03-03T07:00:00Z', '2025-03-03T16:00:00Z', '2025-01-08T07:00:00Z', '2025-03-02T23:30:00Z'].map(s => new Date(s))
  const clock = fixedClock(times[0])
  const facts = Array.from({ length: DECISIONS }, (_, i) => ({
    caller: probes[i], did: dids[i % dids.length], time: times[i % times.length],
    callsTodayByCaller: i % 5, lastAgentToday: i % 5 ? `e${i % 300}` : null, blacklistFlagsToday: i % 97 === 0 ? 9 : 0,
  }))
  for (let i = 0; i < 2000; i++) decideRoute(facts[i], directory, presence, clock, config)
  const kindsSeen: Record<string, number> = {}
  const dec = timeEach(DECISIONS, i => {
    const d = decideRoute(facts[i], directory, presence, clock, config)
    kindsSeen[d.kind] = (kindsSeen[d.kind] ?? 0) + 1
    return d
  })
  log(`buildDirectory ${CLIENTS} clients / ${N} phones: ${dirMs.toFixed(0)} ms`)
  log(`decideRoute               ${JSON.stringify(summary(dec.sorted))}  kinds ${JSON.stringify(kindsSeen)}`)
  const heapMB = (process.memoryUsage().heapUsed - heap0) / 1e6

  const result = {
    bench: 'routing',
    at: new Date().toISOString(),
    node: process.version,
    phones: N,
    lookups: LOOKUPS,
    build: { phoneIndexMs: round(buildMs, 1), mapMs: round(mapBuildMs, 1), directoryMs: round(dirMs, 1), phoneIndexBytes: index.stats().bytes, heapGrowthMB: round(heapMB, 1) },
    timerOverhead: summary(overhead.sorted),
    phoneIndexLookup: { ...summary(idx.sorted), batchNsPerOp: round(idxBatchNs, 1) },
    mapGetBaseline: { ...summary(base.sorted), batchNsPerOp: round(mapBatchNs, 1) },
    mismatches,
    decideRoute: { decisions: DECISIONS, ...summary(dec.sorted), kinds: kindsSeen },
    targets: { lookupP99Us: 50, decideP99Us: 2000 },
    pass: { lookup: pct(idx.sorted, 0.99) <= 50, decide: pct(dec.sorted, 0.99) <= 2000 },
    sink: idx.sink + base.sink + dec.sink + hits,
  }
  if (opts.write !== false) {
    await mkdir(join(here, 'results'), { recursive: true })
    await writeFile(join(here, 'results', 'routing.json'), `${JSON.stringify(result, null, 2)}\n`)
    log('wrote bench/results/routing.json')
  }
  return result
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now()
  await run()
  process.stdout.write(`done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}
