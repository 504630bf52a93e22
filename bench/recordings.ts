/**
 * Recording pipeline benchmark: `node --import tsx bench/recordings.ts`.
 *
 * Generates N five-minute 8 kHz stereo speech-like calls, then in the same run compares
 *
 *  - raw baseline: the ffmpeg CLI transcoding the files to Ogg/Opus with exactly the
 *    pipeline's arguments (ffmpegInputArgs + ffmpegOutputArgs), two at a time, and
 *  - the full pipeline (RecordingPipeline on graphile-worker, real embedded Postgres,
 *    filesystem object store, concurrency 2): probe (the WAV header), transcode with the
 *    analysis read from the WAV beside it, upload, verify size and re-hash, `stored` row,
 *    spool cleanup,
 *
 * a. throughput: all N calls hang up at once → recordings/min; two rounds, raw and
 *    pipeline alternating, so that a change in the machine's background load hits both;
 *    also CPU time per recording (this process + its waited-for children: ffmpeg), which
 *    background load hardly affects;
 * b. latency: calls hang up two at a time (the raw baseline's load, no queueing) →
 *    hangup (clock started, then sidecar marked stopped and job enqueued as the CallSession
 *    does) → the row's stored_at, p50/p99, against the raw CLI transcoding the same pair
 *    right before or after (alternating). Completion is learnt from the pipeline's
 *    `recording.stored` event (no polling beside the transcodes).
 *
 * Targets: throughput ratio ≥ 0.8, hangup → stored p50 ≤ raw transcode time + 200 ms,
 * WAV/Opus ≥ 10× for every file. Prints the figures and writes bench/results/recordings.json.
 *
 * Env: BENCH_FILES (default 6, at least 6), BENCH_MINUTES (default 5).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { checkEncoders, ffmpegPaths } from '../src/recordings/ffmpeg-paths.ts'
import { ffmpegOutputArgs, opusSampleRate } from '../src/recordings/transcode.ts'
import { ffmpegInputArgs, probeRecording } from '../src/recordings/probe.ts'
import { RecordingPipeline, DEFAULT_PIPELINE_OPTIONS } from '../src/recordings/pipeline.ts'
import { Spool, type SpoolSidecar } from '../src/recordings/spool.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { EventBus } from '../src/events/bus.ts'
import { pino } from 'pino'
import { startTestDatabase, type TestDatabase } from '../test/support/db.ts'
import { writeSpeechLikeCall, type WavInfo } from '../test/support/audio-fixtures.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const CONCURRENCY = 2

interface Summary { min: number; p50: number; p99: number; max: number }

interface RawPhase {
  wallMs: number
  recordingsPerMinute: number
  perFileMs: Summary
  cpuMs: number | null
}

/**
 * CPU time of this process and of its children that have exited and been waited for
 * (every ffmpeg/ffprobe run), in ms; null off Linux. Postgres is not included (its
 * postmaster is still running), nor is its share of the work: a few queries per recording.
 */
function cpuMs(): number | null {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')
    // after "pid (comm) ": state=0 … utime=11 stime=12 cutime=13 cstime=14, in clock ticks (USER_HZ = 100 on Linux)
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) * 10
  } catch {
    return null
  }
}
const cpuSince = (start: number | null): number | null => { const now = cpuMs(); return start === null || now === null ? null : now - start }

export interface RecordingsBenchResult {
  date: string
  machine: { cpu: string; cores: number; node: string; loadAvg1m: number }
  ffmpeg: { path: string; source: string; version: string }
  files: number
  minutesPerFile: number
  concurrency: number
  settings: { format: string; bitrateKbps: number; args: string[] }
  raw: { rounds: RawPhase[]; recordingsPerMinute: number; cpuMsPerRecording: number | null }
  pipeline: {
    throughput: { rounds: Array<{ wallMs: number; recordingsPerMinute: number }>; recordingsPerMinute: number; cpuMsPerRecording: number | null }
    /** hangup → stored, and the raw CLI transcoding the same pairs right before/after */
    latency: { hangupToStoredMs: Summary; rawTranscodeMs: Summary; pairs: number; stepsP50Ms: Record<string, number> }
  }
  throughputRatio: number
  /** raw CPU time / pipeline CPU time per recording: the overhead with background load taken out */
  cpuRatio: number | null
  latencyOverTranscodeMs: number
  size: { wavBytes: number; opusBytes: number; ratio: number; minRatio: number }
  targets: { throughputRatio: number; latencyOverTranscodeMs: number; sizeRatio: number; met: boolean }
}

function summary(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
  return { min: Math.round(s[0]), p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(s[s.length - 1]) }
}

const perMinute = (n: number, ms: number) => Math.round((n / (ms / 60_000)) * 10) / 10

function ffmpegCli(ffmpegPath: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exit ${code}: ${err}`))))
  })
}

/** Run `fn` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i], i)
    }
  }))
}

export async function run(opts: { files?: number; minutes?: number; write?: boolean } = {}): Promise<RecordingsBenchResult> {
  const nFiles = Math.max(6, opts.files ?? Number(process.env.BENCH_FILES ?? 6))
  const minutes = opts.minutes ?? Number(process.env.BENCH_MINUTES ?? 5)
  const paths = ffmpegPaths()
  const enc = await checkEncoders(paths)
  const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
  const format = cfg.recording.format
  const bitrateKbps = cfg.recording.bitrateKbps
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-bench-recordings-'))
  let db: TestDatabase | null = null
  try {
    const files: WavInfo[] = []
    for (let i = 0; i < nFiles; i++) {
      files.push(await writeSpeechLikeCall(join(dir, `call-${i}.wav`), { durationMs: minutes * 60_000, seed: 200 + i }))
    }

    // --- raw baseline: the very arguments transcode() gives ffmpeg for these files
    const probe = await probeRecording(files[0].path, { paths })
    const outArgs = ffmpegOutputArgs({
      format: format as 'opus', bitrateKbps, channels: probe.channels === 2 ? 2 : 1,
      sampleRate: format === 'opus' && ![8000, 12000, 16000, 24000, 48000].includes(probe.sampleRate) ? opusSampleRate(probe.sampleRate) : undefined,
    })
    const rawArgs = (input: string, output: string) => ['-nostdin', '-hide_banner', ...ffmpegInputArgs(probe), '-i', input, '-y', ...outArgs, output]
    const rawPhase = async (tag: string): Promise<RawPhase> => {
      const perFile: number[] = []
      const cpu0 = cpuMs()
      const t0 = performance.now()
      await pool(files, CONCURRENCY, async (f, i) => {
        const s = performance.now()
        await ffmpegCli(paths.ffmpegPath, rawArgs(f.path, join(dir, `raw-${tag}-${i}.opus`)))
        perFile.push(performance.now() - s)
      })
      const wallMs = performance.now() - t0
      return { wallMs: Math.round(wallMs), recordingsPerMinute: perMinute(files.length, wallMs), perFileMs: summary(perFile), cpuMs: cpuSince(cpu0) }
    }
    await ffmpegCli(paths.ffmpegPath, rawArgs(files[0].path, join(dir, 'warm.opus'))) // page cache, not measured

    // --- the full pipeline
    db = await startTestDatabase()
    const spool = new Spool(join(dir, 'spool'))
    const store = new FsObjectStore(join(dir, 'objects'))
    await store.init()
    // the pipeline logs where each job's time went (steps_ms): kept for the latency phase
    const stepLog: Array<{ id: string; startedAt: number; steps: Record<string, number> }> = []
    const log = pino({ level: 'info' }, { write: (line: string) => {
      const o = JSON.parse(line) as { recording_id?: string; started_at_ms?: number; steps_ms?: Record<string, number> }
      if (o.steps_ms && o.recording_id) stepLog.push({ id: o.recording_id, startedAt: o.started_at_ms ?? NaN, steps: o.steps_ms })
    } })
    // the server hands the pipeline its event bus too; here it tells the bench when a
    // recording is stored, instead of polling Postgres every few ms beside the transcodes
    const events = new EventBus()
    const storedIds = new Set<string>()
    let onStored: (() => void) | null = null
    events.on('recording.stored', ({ recordingId }) => { storedIds.add(recordingId); onStored?.() })
    const failed: string[] = []
    events.on('recording.failed', ({ recordingId, reason }) => { failed.push(`${recordingId}: ${reason}`); onStored?.() })
    const pipeline = new RecordingPipeline(
      { pool: db.pool, store, spool, log, events, recording: () => cfg.recording, retention: () => cfg.retention },
      { ...DEFAULT_PIPELINE_OPTIONS, concurrency: CONCURRENCY, scanIntervalSec: 30 },
      new Registry(),
    )
    await pipeline.start()
    const database = db
    /** What FreeSWITCH leaves in the spool during the call (not timed: not the pipeline's work). */
    const spoolCall = async (f: WavInfo): Promise<string> => {
      const sidecar: SpoolSidecar = {
        recordingId: randomUUID(), callUuid: randomUUID(), legUuid: randomUUID(), direction: 'inbound',
        caller: '+74951234567', callee: '7001', did: '+74951112233', clientId: null, agentId: null, queueId: null, segment: null,
        stereo: true, startedAt: new Date(Date.now() - minutes * 60_000).toISOString(), stoppedAt: null, pausedSpans: [],
      }
      await copyFile(f.path, await spool.open(sidecar))
      return sidecar.recordingId
    }
    /**
     * Hangup (CHANNEL_HANGUP_COMPLETE; FreeSWITCH has closed the file): the moment the clock
     * starts. Then what the CallSession does (calls/steps/record.ts finishRecordings): mark
     * the sidecar stopped, enqueue the job.
     */
    const hangUp = async (id: string): Promise<{ id: string; at: number }> => {
      const at = Date.now()
      await spool.update(id, (s) => ({ stoppedAt: new Date(at).toISOString(), agentId: s.agentId }))
      await pipeline.enqueue(id)
      return { id, at }
    }
    /** Rows of `ids` once all are stored: `stored_at` is the row's own commit-time stamp (now()). */
    const storedAt = async (ids: string[]) => {
      for (;;) {
        if (failed.length) throw new Error(`recordings failed in the bench: ${failed.join('; ')}`)
        if (ids.every((id) => storedIds.has(id))) {
          const r = await database.pool.query<{ id: string; stored_at: Date; bytes: number }>(
            `SELECT id, stored_at, bytes FROM recordings WHERE id = ANY($1::uuid[]) AND state = 'stored'`, [ids])
          if (r.rowCount === ids.length) return r.rows
        }
        // woken by the event; a slow poll only as a safety net (an event not announced)
        const woken = await new Promise<boolean>((res) => {
          const timer = setTimeout(() => res(false), 1000)
          onStored = () => { clearTimeout(timer); res(true) }
        })
        onStored = null
        if (!woken) {
          const r = await database.pool.query<{ id: string }>(`SELECT id FROM recordings WHERE id = ANY($1::uuid[]) AND state = 'stored'`, [ids])
          for (const row of r.rows) storedIds.add(row.id)
        }
      }
    }
    try {
      // warm-up: fluent-ffmpeg's one-off capability check, graphile-worker's first job
      const warm = await hangUp(await spoolCall(files[0]))
      await storedAt([warm.id])

      // a. throughput: everyone hangs up at once; raw and pipeline alternate over two rounds
      const pipelineBatch = async () => {
        const ids = []
        for (const f of files) ids.push(await spoolCall(f))
        const cpu0 = cpuMs()
        const t0 = performance.now()
        const hung = []
        for (const id of ids) hung.push(await hangUp(id))
        const rows = await storedAt(hung.map((h) => h.id))
        const wallMs = performance.now() - t0
        return { wallMs, cpuMs: cpuSince(cpu0), bytes: hung.map((h) => rows.find((r) => r.id === h.id)!.bytes) }
      }
      const rawRounds: RawPhase[] = []
      const pipeRounds: Array<Awaited<ReturnType<typeof pipelineBatch>>> = []
      for (let round = 0; round < 2; round++) {
        if (round % 2 === 0) { rawRounds.push(await rawPhase(`t${round}`)); pipeRounds.push(await pipelineBatch()) }
        else { pipeRounds.push(await pipelineBatch()); rawRounds.push(await rawPhase(`t${round}`)) }
      }

      let wavBytes = 0
      let opusBytes = 0
      let minRatio = Infinity
      for (const [i, bytes] of pipeRounds[0].bytes.entries()) {
        wavBytes += files[i].bytes
        opusBytes += bytes
        minRatio = Math.min(minRatio, files[i].bytes / bytes)
      }

      // b. latency: two calls hang up together, the next two once they are stored. Each
      // pair is also transcoded by the raw CLI right before or after (alternating), so that
      // both see the same background load: the comparison is pair by pair.
      const latencies: number[] = []
      const latencyIds: string[] = []
      const hungAt = new Map<string, number>()
      const pairedRaw: number[] = []
      for (let i = 0, k = 0; i < files.length; i += CONCURRENCY, k++) {
        const slice = files.slice(i, i + CONCURRENCY)
        const rawPair = () => Promise.all(slice.map(async (f, j) => {
          const s = performance.now()
          await ffmpegCli(paths.ffmpegPath, rawArgs(f.path, join(dir, `raw-pair-${i + j}.opus`)))
          pairedRaw.push(performance.now() - s)
        }))
        const pipelinePair = async () => {
          const ids = []
          for (const f of slice) ids.push(await spoolCall(f))
          const pair = []
          for (const id of ids) pair.push(await hangUp(id))
          const stored = await storedAt(pair.map((h) => h.id))
          for (const h of pair) { latencies.push(stored.find((r) => r.id === h.id)!.stored_at.getTime() - h.at); latencyIds.push(h.id); hungAt.set(h.id, h.at) }
        }
        if (k % 2 === 0) { await rawPair(); await pipelinePair() } else { await pipelinePair(); await rawPair() }
      }

      const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0)
      const runs = files.length * 2
      const rawPerMinute = perMinute(runs, sum(rawRounds.map((r) => r.wallMs)))
      const pipelinePerMinute = perMinute(runs, sum(pipeRounds.map((r) => r.wallMs)))
      const throughputRatio = Math.round((pipelinePerMinute / rawPerMinute) * 100) / 100
      const cpuPer = (xs: Array<number | null>) => (xs.some((x) => x === null) ? null : Math.round(sum(xs as number[]) / runs))
      const rawCpu = cpuPer(rawRounds.map((r) => r.cpuMs))
      const pipeCpu = cpuPer(pipeRounds.map((r) => r.cpuMs))
      const latency = summary(latencies)
      const pairedRawSummary = summary(pairedRaw)
      const latencyOverTranscodeMs = latency.p50 - pairedRawSummary.p50
      await new Promise((r) => setTimeout(r, 200)) // the last jobs' log lines follow their rows
      const stepNames = ['probe', 'transcode', 'upload', 'verify', 'row', 'cleanup']
      const stepsP50: Record<string, number> = {}
      // pickup: hangup → the job holds its lock and starts (sidecar update, enqueue, LISTEN/NOTIFY, lock)
      const pickups = stepLog.filter((x) => hungAt.has(x.id) && Number.isFinite(x.startedAt)).map((x) => x.startedAt - hungAt.get(x.id)!)
      if (pickups.length) stepsP50.pickup = summary(pickups).p50
      for (const name of stepNames) {
        const xs = stepLog.filter((x) => latencyIds.includes(x.id)).map((x) => x.steps[name]).filter((x) => typeof x === 'number')
        if (xs.length) stepsP50[name] = summary(xs).p50
      }
      const sizeRatio = Math.round((wavBytes / opusBytes) * 10) / 10

      const result: RecordingsBenchResult = {
        date: new Date().toISOString(),
        machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, loadAvg1m: Math.round(loadavg()[0] * 100) / 100 },
        ffmpeg: { path: paths.ffmpegPath, source: paths.source, version: enc.version },
        files: files.length,
        minutesPerFile: minutes,
        concurrency: CONCURRENCY,
        settings: { format, bitrateKbps, args: outArgs },
        raw: { rounds: rawRounds, recordingsPerMinute: rawPerMinute, cpuMsPerRecording: rawCpu },
        pipeline: {
          throughput: {
            rounds: pipeRounds.map((r) => ({ wallMs: Math.round(r.wallMs), recordingsPerMinute: perMinute(files.length, r.wallMs) })),
            recordingsPerMinute: pipelinePerMinute,
            cpuMsPerRecording: pipeCpu,
          },
          latency: { hangupToStoredMs: latency, rawTranscodeMs: pairedRawSummary, pairs: Math.ceil(files.length / CONCURRENCY), stepsP50Ms: stepsP50 },
        },
        throughputRatio,
        cpuRatio: rawCpu !== null && pipeCpu ? Math.round((rawCpu / pipeCpu) * 100) / 100 : null,
        latencyOverTranscodeMs,
        size: { wavBytes, opusBytes, ratio: sizeRatio, minRatio: Math.round(minRatio * 10) / 10 },
        targets: {
          throughputRatio: 0.8, latencyOverTranscodeMs: 200, sizeRatio: 10,
          met: throughputRatio >= 0.8 && latencyOverTranscodeMs <= 200 && minRatio >= 10,
        },
      }
      if (opts.write !== false) {
        const out = join(HERE, 'results', 'recordings.json')
        await mkdir(dirname(out), { recursive: true })
        await writeFile(out, JSON.stringify(result, null, 2) + '\n')
      }
      return result
    } finally {
      await pipeline.stop()
    }
  } finally {
    await db?.close()
    await rm(dir, { recursive: true, force: true })
  }
}

function report(r: RecordingsBenchResult): string {
  const l = r.pipeline.latency.hangupToStoredMs
  const rt = r.pipeline.latency.rawTranscodeMs
  const rounds = (xs: Array<{ recordingsPerMinute: number; wallMs: number }>) => xs.map((x) => `${x.recordingsPerMinute} (${x.wallMs} ms)`).join(', ')
  return [
    `recordings bench: ${r.files} × ${r.minutesPerFile} min 8 kHz stereo → ${r.settings.format} ${r.settings.bitrateKbps} kbit/s, concurrency ${r.concurrency}`,
    `ffmpeg: ${r.ffmpeg.source} ${r.ffmpeg.version} (${r.ffmpeg.path}); ${r.machine.cores} cores ${r.machine.cpu}; load average ${r.machine.loadAvg1m} at the end`,
    `raw ffmpeg CLI : ${r.raw.recordingsPerMinute} rec/min (rounds ${rounds(r.raw.rounds)}), per file p50 ${r.raw.rounds[0].perFileMs.p50} ms, CPU ${r.raw.cpuMsPerRecording ?? '?'} ms/recording`,
    `pipeline       : ${r.pipeline.throughput.recordingsPerMinute} rec/min (rounds ${rounds(r.pipeline.throughput.rounds)}), CPU ${r.pipeline.throughput.cpuMsPerRecording ?? '?'} ms/recording`,
    `throughput ratio pipeline/raw: ${r.throughputRatio} (target ≥ ${r.targets.throughputRatio}); CPU-time ratio raw/pipeline ${r.cpuRatio ?? '?'}`,
    `hangup → stored: p50 ${l.p50} ms, p99 ${l.p99} ms (two calls at a time) vs raw transcode of the same pairs p50 ${rt.p50} ms, p99 ${rt.p99} ms → ${r.latencyOverTranscodeMs >= 0 ? '+' : ''}${r.latencyOverTranscodeMs} ms (target ≤ +${r.targets.latencyOverTranscodeMs})`,
    `  job steps p50: ${JSON.stringify(r.pipeline.latency.stepsP50Ms)} ms (pickup = hangup → job started; probe = WAV header; transcode = ffmpeg encode with the analysis beside it, output check)`,
    `size WAV/Opus  : ${r.size.ratio}× overall, worst file ${r.size.minRatio}× (target ≥ ${r.targets.sizeRatio})`,
    `targets met: ${r.targets.met}`,
  ].join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await run()
  process.stdout.write(report(r) + '\n')
}
