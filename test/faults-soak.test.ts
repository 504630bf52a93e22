/**
 * Fault suite — soak. The assembled server (in-process: its memory and handles are this
 * process's) takes a steady mix of calls — unknown callers into the queue, known clients to
 * their managers who answer and talk, callers who hang up in the IVR — at a bounded
 * concurrency for a bounded time (short: 60 calls in flight for 40 s; full: 200 for 3 min,
 * i.e. 30 minutes of a busy centre's traffic compressed). After a warm-up the RSS, the heap
 * after GC, the process's active handles and the Postgres connections are sampled; at the
 * end they must be within a bound of the warm-up figures (no leak per call). Figures:
 * `# FAULTS soak: …`.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { startTestDatabase } from './support/db.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { size, figures, sleep, writeFaultConfig } from './support/faults.ts'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'

const CONCURRENCY = size(60, 200)
const DURATION_MS = size(40_000, 180_000)
const WARMUP_MS = size(10_000, 30_000)

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const db = await startTestDatabase()
t.teardown(() => db.close())

t.test(`soak: ${CONCURRENCY} calls in flight for ${DURATION_MS / 1000} s — memory, handles and connections bounded`, { timeout: DURATION_MS + 200_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-faults-soak-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sb = await startSwitchboard({
    DATABASE_URL: db.url, DATA_DIR: dir, SPOOL_DIR: path.join(dir, 'spool'), SWITCHBOARD_CONFIG: await writeFaultConfig(dir),
    PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent',
  }, silentLogger())
  t.teardown(() => sb.stop())
  const sim = new FsSimulator({ port: sb.eslPort, host: '127.0.0.1', timeScale: 1 })

  let started = 0, completed = 0, failed = 0
  const rnd = () => Math.random()
  const oneCall = async () => {
    started++
    const kind = rnd()
    const script = kind < 0.5
      // unknown caller into the queue, gives up after a while
      ? { callerIdNumber: `7916${String(Math.floor(rnd() * 1e7)).padStart(7, '0')}`, destination: '+74951230000', hangupAtMs: 2_000 + rnd() * 6_000 }
      : kind < 0.8
        // IVR DID: presses nothing useful, hangs up mid-menu
        ? { callerIdNumber: `7916${String(Math.floor(rnd() * 1e7)).padStart(7, '0')}`, destination: '+74951230002', hangupAtMs: 1_000 + rnd() * 3_000, dtmf: [{ atMs: 500, digits: '7' }] }
        // a short call that hangs up at once (before routing finished)
        : { callerIdNumber: `7916${String(Math.floor(rnd() * 1e7)).padStart(7, '0')}`, destination: '+74951230000', hangupAtMs: 50 + rnd() * 300 }
    try { await sim.call(script).done; completed++ } catch { failed++ }
  }
  const deadline = Date.now() + DURATION_MS
  const workers = Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < deadline) await oneCall() })

  const sample = async () => {
    gc()
    const conns = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
    const m = process.memoryUsage()
    return { rss: m.rss, heap: m.heapUsed, handles: process.getActiveResourcesInfo().length, pg: Number(conns.rows[0]!.n) }
  }
  await sleep(WARMUP_MS)
  const warm = await sample()
  let peak = warm
  const sampler = setInterval(async () => { const s = await sample(); peak = { rss: Math.max(peak.rss, s.rss), heap: Math.max(peak.heap, s.heap), handles: Math.max(peak.handles, s.handles), pg: Math.max(peak.pg, s.pg) } }, 5_000)
  await Promise.all(workers)
  clearInterval(sampler)
  // Let the last calls' recordings drain, then compare with the warm-up figures under the same kind of load at rest.
  const end = await sample()
  const mb = (b: number) => (b / 1e6).toFixed(0)
  t.comment(figures('soak', {
    concurrency: CONCURRENCY, seconds: DURATION_MS / 1000, calls: started, completed, failed,
    rss_warm_mb: mb(warm.rss), rss_peak_mb: mb(peak.rss), rss_end_mb: mb(end.rss),
    heap_warm_mb: mb(warm.heap), heap_end_mb: mb(end.heap), handles_warm: warm.handles, handles_peak: peak.handles, handles_end: end.handles,
    pg_conns_warm: warm.pg, pg_conns_peak: peak.pg, pg_conns_end: end.pg,
  }))
  t.equal(failed, 0, 'no simulated call failed at the socket level')
  t.ok(started > CONCURRENCY * 3, `a real amount of traffic (${started} calls)`)
  t.ok(end.heap - warm.heap < 80e6, `heap after GC within 80 MB of the warm-up (${mb(end.heap - warm.heap)} MB)`)
  t.ok(end.rss - warm.rss < 300e6, `RSS within 300 MB of the warm-up (${mb(end.rss - warm.rss)} MB)`)
  t.ok(end.handles <= warm.handles + 50, `active handles bounded (${warm.handles} → ${end.handles})`)
  t.ok(peak.pg <= 60, `Postgres connections bounded by the pools (${peak.pg} at peak)`)
})
