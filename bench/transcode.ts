/**
 * Recording media benchmark: `node --import tsx bench/transcode.ts`.
 *
 * Generates N five-minute 8 kHz stereo speech-like calls (what FreeSWITCH's record_session
 * writes), then in the same run transcodes them to Ogg/Opus 24 kbit/s with our
 * `transcode()` (fluent-ffmpeg, input/output probing, atomic rename) and with the raw ffmpeg
 * CLI (child_process.spawn with the very same output arguments), each file by both at the
 * same time so that both see the same background load. Also times `analyseRecording()` and the WAV/Opus
 * size ratio. Prints the figures and writes bench/results/transcode.json.
 *
 * Env: BENCH_FILES (default 6), BENCH_MINUTES (default 5).
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { analyseRecording } from '../src/recordings/analyse.ts'
import { checkEncoders, ffmpegPaths } from '../src/recordings/ffmpeg-paths.ts'
import { ffmpegOutputArgs, transcode, type TranscodeOptions } from '../src/recordings/transcode.ts'
import { writeSpeechLikeCall, type WavInfo } from '../test/support/audio-fixtures.ts'

const HERE = dirname(fileURLToPath(import.meta.url))

export interface TranscodeBenchResult {
  date: string
  machine: { cpu: string; cores: number; node: string }
  ffmpeg: { path: string; source: string; version: string }
  files: number
  minutesPerFile: number
  /** both sides run at once, one encode each */
  concurrency: 2
  rounds: number
  /** wall time of all measured encodes, both sides together */
  wallMs: number
  /** audio seconds encoded per wall second, both sides together */
  machineRealtimeFactor: number
  settings: Required<Pick<TranscodeOptions, 'format' | 'bitrateKbps' | 'compressionLevel'>>
  ours: Phase
  rawCli: Phase
  throughputRatio: number
  analysis: { perFileMs: Summary; realtimeFactor: number }
  size: { wavBytes: number; opusBytes: number; ratio: number; minRatio: number }
  targets: { throughputRatio: number; sizeRatio: number; met: boolean }
}

interface Summary {
  min: number
  median: number
  max: number
}

interface Phase {
  /** audio seconds encoded per second of one encode's elapsed time */
  realtimeFactor: number
  perFileMs: Summary
}

const ROUNDS = 2
const SETTINGS = { format: 'opus', bitrateKbps: 24, compressionLevel: 5 } as const

function summary(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b)
  return { min: Math.round(s[0]), median: Math.round(s[Math.floor(s.length / 2)]), max: Math.round(s[s.length - 1]) }
}

function rawFfmpeg(ffmpegPath: string, input: string, output: string): Promise<void> {
  const args = ['-nostdin', '-hide_banner', '-y', '-i', input, ...ffmpegOutputArgs(SETTINGS), output]
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exit ${code}: ${err}`))))
  })
}

export async function run(opts: { files?: number; minutes?: number; write?: boolean } = {}): Promise<TranscodeBenchResult> {
  const nFiles = opts.files ?? Number(process.env.BENCH_FILES ?? 6)
  const minutes = opts.minutes ?? Number(process.env.BENCH_MINUTES ?? 5)
  const paths = ffmpegPaths()
  const enc = await checkEncoders(paths)
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-bench-transcode-'))
  try {
    const files: WavInfo[] = []
    for (let i = 0; i < nFiles; i++) {
      files.push(await writeSpeechLikeCall(join(dir, `call-${i}.wav`), { durationMs: minutes * 60_000, seed: 100 + i }))
    }
    const audioSeconds = files.reduce((s, f) => s + f.durationMs / 1000, 0)

    // warm-up (page cache, fluent-ffmpeg's one-off capability check) — not measured
    await transcode(files[0].path, join(dir, 'warm.opus'), SETTINGS)

    // Each file is encoded by both sides at the same time (one core each on a 2-core
    // machine), so that both see the same background load; the start order alternates.
    const ours: number[] = []
    const raw: number[] = []
    const name = (f: WavInfo) => f.path.split('/').pop()!
    const timed = async (fn: () => Promise<unknown>, into: number[]) => {
      const t0 = performance.now()
      await fn()
      into.push(performance.now() - t0)
    }
    const wallStarted = performance.now()
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, f] of files.entries()) {
        const a = () => timed(() => transcode(f.path, join(dir, `ours-${name(f)}.opus`), SETTINGS), ours)
        const b = () => timed(() => rawFfmpeg(paths.ffmpegPath, f.path, join(dir, `raw-${name(f)}.opus`)), raw)
        await Promise.all((r + i) % 2 === 0 ? [a(), b()] : [b(), a()])
      }
    }
    const wallMs = performance.now() - wallStarted

    const phase = (perFile: number[]): Phase => ({
      realtimeFactor: Math.round(((audioSeconds * ROUNDS) / (perFile.reduce((x, y) => x + y, 0) / 1000)) * 10) / 10,
      perFileMs: summary(perFile),
    })

    const analysisMs: number[] = []
    for (const f of files) {
      const t0 = performance.now()
      await analyseRecording(f.path)
      analysisMs.push(performance.now() - t0)
    }

    let wavBytes = 0
    let opusBytes = 0
    let minRatio = Infinity
    for (const f of files) {
      const o = (await stat(join(dir, `ours-${f.path.split('/').pop()}.opus`))).size
      wavBytes += f.bytes
      opusBytes += o
      minRatio = Math.min(minRatio, f.bytes / o)
    }

    const oursPhase = phase(ours)
    const rawPhase = phase(raw)
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0)
    const throughputRatio = Math.round((sum(raw) / sum(ours)) * 100) / 100
    const sizeRatio = Math.round((wavBytes / opusBytes) * 10) / 10
    const result: TranscodeBenchResult = {
      date: new Date().toISOString(),
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version },
      ffmpeg: { path: paths.ffmpegPath, source: paths.source, version: enc.version },
      files: nFiles,
      minutesPerFile: minutes,
      concurrency: 2,
      rounds: ROUNDS,
      wallMs: Math.round(wallMs),
      machineRealtimeFactor: Math.round((audioSeconds * ROUNDS * 2) / (wallMs / 1000)),
      settings: { ...SETTINGS },
      ours: oursPhase,
      rawCli: rawPhase,
      throughputRatio,
      analysis: {
        perFileMs: summary(analysisMs),
        realtimeFactor: Math.round(audioSeconds / (analysisMs.reduce((a, b) => a + b, 0) / 1000)),
      },
      size: { wavBytes, opusBytes, ratio: sizeRatio, minRatio: Math.round(minRatio * 10) / 10 },
      targets: { throughputRatio: 0.8, sizeRatio: 10, met: throughputRatio >= 0.8 && minRatio >= 10 },
    }

    if (opts.write !== false) {
      const out = join(HERE, 'results', 'transcode.json')
      await mkdir(dirname(out), { recursive: true })
      await writeFile(out, JSON.stringify(result, null, 2) + '\n')
    }
    return result
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function report(r: TranscodeBenchResult): string {
  return [
    `transcode bench: ${r.files} × ${r.minutesPerFile} min 8 kHz stereo → Opus ${r.settings.bitrateKbps} kbit/s, compression_level ${r.settings.compressionLevel}; ${r.rounds} rounds, our transcode() and the raw CLI side by side`,
    `ffmpeg: ${r.ffmpeg.source} ${r.ffmpeg.version} (${r.ffmpeg.path}); ${r.machine.cores} cores ${r.machine.cpu}`,
    `transcode() : ${r.ours.realtimeFactor}× realtime per encode, per file median ${r.ours.perFileMs.median} ms (min ${r.ours.perFileMs.min}, max ${r.ours.perFileMs.max})`,
    `raw ffmpeg  : ${r.rawCli.realtimeFactor}× realtime per encode, per file median ${r.rawCli.perFileMs.median} ms (min ${r.rawCli.perFileMs.min}, max ${r.rawCli.perFileMs.max})`,
    `machine     : ${r.machineRealtimeFactor}× realtime with both sides together (${r.wallMs} ms wall)`,
    `throughput ratio ours/raw: ${r.throughputRatio} (target ≥ ${r.targets.throughputRatio})`,
    `analysis    : per file median ${r.analysis.perFileMs.median} ms (max ${r.analysis.perFileMs.max}), ${r.analysis.realtimeFactor}× realtime`,
    `size WAV/Opus: ${r.size.ratio}× overall, worst file ${r.size.minRatio}× (target ≥ ${r.targets.sizeRatio})`,
    `targets met: ${r.targets.met}`,
  ].join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await run()
  process.stdout.write(report(r) + '\n')
}
