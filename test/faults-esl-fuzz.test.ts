/**
 * Fault suite — hostile ESL. The assembled server (in-process, so its memory is this
 * process's) takes ≥ 10,000 fuzzed frames on its outbound ESL port from many peers at once:
 * garbage bytes, bad and huge Content-Length, endless headers, half frames, invalid JSON,
 * unknown content types, event floods on a live channel, and slowloris peers that trickle a
 * connect reply. Meanwhile ordinary simulated calls run. Afterwards: the process is alive,
 * every ordinary call completed with a CDR and a stored recording, no session is left open,
 * and memory went back down (bounded). Figures: `# FAULTS esl-fuzz: …`.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { runInNewContext } from 'node:vm'
import { startTestDatabase } from './support/db.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { connectReply, plainEvent, type Headers } from './support/esl-wire.ts'
import { waitFor } from './support/pipeline.ts'
import { silentLogger, createLogger } from '../src/log.ts'
import { prng } from './support/audio-fixtures.ts'
import { size, figures, sleep, writeFaultConfig } from './support/faults.ts'
import { startSwitchboard } from '../src/server.ts'

const PEERS = Number(process.env.FUZZ_PEERS ?? size(200, 600))
const FRAMES_PER_PEER = size(120, 150)
const SLOWLORIS = size(8, 30)
const NORMAL_CALLS = size(20, 100)

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const db = await startTestDatabase()
t.teardown(() => db.close())

t.test('≥ 10,000 fuzzed ESL frames: no crash, bounded memory, ordinary calls unaffected', { timeout: 280_000 }, async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
  t.comment(`seed ${seed} (replay with FUZZ_SEED=${seed})`)
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-faults-fuzz-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sb = await startSwitchboard({
    DATABASE_URL: db.url, DATA_DIR: dir, SPOOL_DIR: path.join(dir, 'spool'), SWITCHBOARD_CONFIG: await writeFaultConfig(dir),
    PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent',
  }, process.env.FUZZ_DEBUG ? createLogger('warn') : silentLogger())
  t.teardown(() => sb.stop())

  gc()
  const before = process.memoryUsage()

  const channelData = (uuid: string): Headers => [
    ['Event-Name', 'CHANNEL_DATA'], ['Unique-ID', uuid], ['Channel-Name', `sofia/internal/fuzz@127.0.0.1`],
    ['Caller-Caller-ID-Number', '79160000000'], ['Caller-Destination-Number', '+70000000000'], ['Answer-State', 'ringing'],
  ]
  const hostile: Array<(uuid: string) => string | Buffer> = [
    () => Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 512) }, () => Math.floor(rnd() * 256))),
    () => `Content-Length: ${pick(['-1', 'abc', '99999999999', '1e9', ' ', '0x10', '4294967297'])}\nContent-Type: text/event-plain\n\n`,
    () => `X-Huge: ${'h'.repeat(300 * 1024)}\n`,
    () => 'Content-Type: text/event-plain\nContent-Length: 500\n\nEvent-Name: CHANNEL_EXECUTE_COMPLETE\n', // half a frame
    () => 'Content-Length: 7\nContent-Type: text/event-json\n\n{"a":\x00}',
    () => 'Content-Type: application/x-unknown\nContent-Length: 3\n\nabc',
    () => 'no colon here\n\n',
    () => `Content-Type: command/reply\nReply-Text: ${'%ZZ'.repeat(50)}\n\n`,
    (uuid) => plainEvent([['Event-Name', 'CHANNEL_HANGUP'], ['Unique-ID', uuid], ['Hangup-Cause', '%E0%A4%A']]),
    (uuid) => plainEvent([['Event-Name', pick(['DTMF', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_BRIDGE', 'RECORD_STOP', 'X'])], ['Unique-ID', pick([uuid, 'not-a-uuid', ''])], ['DTMF-Digit', '\u0000'], ['Application-Response', 'x'.repeat(Math.floor(rnd() * 5000))]]),
    (uuid) => plainEvent([['Event-Name', 'CHANNEL_EXECUTE_COMPLETE'], ['Unique-ID', uuid]], 'x'.repeat(Math.floor(rnd() * 20_000))),
  ]

  const flood: Array<(uuid: string) => string> = [
    (uuid) => plainEvent([['Event-Name', 'DTMF'], ['Unique-ID', uuid], ['DTMF-Digit', pick(['1', '2', '#', '*'])], ['DTMF-Duration', '2000']]),
    (uuid) => plainEvent([['Event-Name', pick(['CHANNEL_PROGRESS', 'HEARTBEAT', 'CUSTOM', 'CHANNEL_CALLSTATE'])], ['Unique-ID', uuid], ['X-Filler', 'f'.repeat(Math.floor(rnd() * 3000))]]),
    () => plainEvent([['Event-Name', 'CHANNEL_EXECUTE_COMPLETE'], ['Unique-ID', '11111111-2222-4333-8444-555555555555'], ['Application', 'playback']]),
    (uuid) => plainEvent([['Event-Name', 'RECORD_STOP'], ['Unique-ID', uuid], ['Record-File-Path', '/etc/passwd']]),
    (uuid) => plainEvent([['Event-Name', 'BACKGROUND_JOB'], ['Unique-ID', uuid], ['Job-UUID', 'unknown-job']], '+OK nothing\n'),
  ]
  let framesSent = 0
  let peersClosedByServer = 0
  /** One hostile peer: maybe a valid connect reply first (so the frames hit a live call), then hostile frames. */
  const hostilePeer = (i: number) => new Promise<void>((resolve) => {
    const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`
    const s: Socket = connect(sb.eslPort, '127.0.0.1')
    let done = false
    const finish = () => { if (!done) { done = true; resolve() } }
    s.on('error', finish)
    s.on('close', () => { peersClosedByServer++; finish() })
    s.on('close', () => { closed = true })
    let closed = false
    s.once('data', async () => {
      // Most peers become a live call first, so their frames reach a CallChannel; on a live
      // call most frames are well-formed floods (events for this or other uuids, big bodies)
      // and a few are hostile — a hostile frame makes the server drop that peer.
      const live = rnd() < 0.8
      if (live) s.write(connectReply(channelData(uuid)))
      for (let f = 0; f < FRAMES_PER_PEER && !closed && !s.destroyed; f++) {
        s.write(live && rnd() > 0.04 ? pick(flood)(uuid) : pick(hostile)(uuid))
        framesSent++
        if (f % 10 === 0) await new Promise((r) => setImmediate(r))
      }
      s.end()
      setTimeout(() => { s.destroy(); finish() }, 2_000).unref()
    })
    setTimeout(() => { s.destroy(); finish() }, 30_000).unref()
  })
  /** Slowloris: a connect reply trickled one byte every 100 ms; the command timeout must cut it. */
  const slowloris = () => new Promise<number>((resolve) => {
    const started = Date.now()
    const s = connect(sb.eslPort, '127.0.0.1')
    const reply = connectReply(channelData('00000000-0000-4000-8000-5l0w10415000'.replace(/[^0-9a-f-]/g, '0')))
    let pos = 0
    const timer = setInterval(() => { if (pos < reply.length - 2 && !s.destroyed) s.write(reply[pos++]!) }, 100)
    s.on('error', () => undefined)
    s.on('close', () => { clearInterval(timer); resolve(Date.now() - started) })
    setTimeout(() => s.destroy(), 20_000).unref()
  })

  // Ordinary calls while the fuzzing runs.
  const sim = new FsSimulator({ port: sb.eslPort, host: '127.0.0.1', timeScale: 1 })
  const normal = Array.from({ length: NORMAL_CALLS }, async (_, i) => {
    await sleep(i * 150)
    return sim.call({ callerIdNumber: `7916555${String(i).padStart(4, '0')}`, destination: '+74951230000', hangupAtMs: 6_000 }).done
  })
  const lorises = Array.from({ length: SLOWLORIS }, () => slowloris())
  let maxRss = 0
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  const sampler = setInterval(() => { maxRss = Math.max(maxRss, process.memoryUsage().rss) }, 100)
  // Peers in waves of 40 at a time: a flood, not a denial of the test machine.
  for (let w = 0; w < PEERS; w += 40) {
    await Promise.all(Array.from({ length: Math.min(40, PEERS - w) }, (_, k) => hostilePeer(w + k)))
  }
  const lorisMs = await Promise.all(lorises)
  const results = await Promise.all(normal)
  clearInterval(sampler)
  loopDelay.disable()

  await waitFor('hostile sessions closed', async () => sb.calls.list().length === 0, 30_000)
  const uuids = results.map((r) => r.uuid)
  /** Wait (bounded) until `count()` reaches `want`; returns the last count instead of throwing, so the figures always print. */
  const settle = async (count: () => Promise<number>, want: number, ms: number) => {
    const until = Date.now() + ms
    let n = await count()
    while (n < want && Date.now() < until) { await sleep(250); n = await count() }
    return n
  }
  const cdrs = await settle(async () => (await db.pool.query(`SELECT 1 FROM calls WHERE uuid = ANY($1::uuid[]) AND ended_at IS NOT NULL`, [uuids])).rowCount!, uuids.length, 30_000)
  const stored = await settle(async () => Number((await db.pool.query(
    `SELECT count(DISTINCT call_uuid) AS n FROM recordings WHERE call_uuid = ANY($1::uuid[]) AND state = 'stored'`, [uuids])).rows[0]!.n), uuids.length, 60_000)
  if (process.env.FUZZ_DEBUG) {
    const r = await db.pool.query(`SELECT state, failure_reason, count(*) FROM recordings WHERE call_uuid = ANY($1::uuid[]) GROUP BY 1, 2`, [uuids])
    const all = await db.pool.query(`SELECT state, count(*) FROM recordings GROUP BY 1`)
    const { readdir } = await import('node:fs/promises')
    const files = await readdir(path.join(dir, 'spool'))
    console.error('DIAG', JSON.stringify(r.rows), JSON.stringify(all.rows), 'spool files', files.length, files.slice(0, 6))
    console.error('DIAG sims', results.map((x) => x.recordings.length).join(','))
  }
  const unhandled = results.filter((r) => !r.commands.some((c) => c.headers['execute-app-name'] === 'answer')).length
  await sleep(500)
  gc()
  const after = process.memoryUsage()
  const heapGrowthMb = (after.heapUsed - before.heapUsed) / 1e6

  t.comment(figures('esl-fuzz', {
    seed, hostile_peers: PEERS, frames: framesSent, closed_by_server_or_peer: peersClosedByServer,
    slowloris: SLOWLORIS, slowloris_cut_after_ms_max: Math.max(...lorisMs),
    event_loop_delay_p99_ms: (loopDelay.percentile(99) / 1e6).toFixed(0), event_loop_delay_max_ms: (loopDelay.max / 1e6).toFixed(0),
    ordinary_calls: NORMAL_CALLS, ordinary_never_answered: unhandled, ordinary_with_cdr: cdrs, ordinary_recorded: stored,
    heap_growth_mb: heapGrowthMb.toFixed(1), rss_before_mb: (before.rss / 1e6).toFixed(0), rss_peak_mb: (maxRss / 1e6).toFixed(0), rss_after_mb: (after.rss / 1e6).toFixed(0),
  }))
  t.ok(framesSent >= size(10_000, 40_000), `≥ 10,000 fuzzed frames sent (${framesSent})`)
  t.equal(cdrs, NORMAL_CALLS, 'every ordinary call has its CDR')
  t.equal(stored, NORMAL_CALLS, 'every ordinary call has its recording stored')
  t.ok(Math.max(...lorisMs) < 15_000, 'slowloris peers are cut by the command timeout (10 s), not held forever')
  t.ok(heapGrowthMb < 64, `heap back within 64 MB of where it started (${heapGrowthMb.toFixed(1)} MB)`)
  t.ok(maxRss - before.rss < 768e6, `peak RSS growth bounded (${((maxRss - before.rss) / 1e6).toFixed(0)} MB)`)
  const health = await fetch(`${sb.httpUrl}/health`)
  t.equal(health.status, 200, 'the server still answers')
})
