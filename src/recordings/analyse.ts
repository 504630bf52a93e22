/**
 * Talk, silence and overtalk of a recording, for QA triage ("who talked how long, where
 * did they talk over each other, where can the player jump over silence").
 *
 * Method: PCM s16le at 8 kHz — read straight from the file for FreeSWITCH's 8 kHz PCM
 * WAVs (`analysePcmFile`), else decoded by ffmpeg on a pipe — gives the RMS energy of
 * every channel in 20 ms windows. A window is talk when its energy is above the
 * threshold (-35 dBFS). Pauses shorter than `minSilenceMs` inside
 * talk count as talk (like silencedetect's d=0.3), talk bursts shorter than `minTalkMs`
 * (clicks) count as silence. This was chosen over ffmpeg's channelsplit+silencedetect:
 * both take well under a second for a 5-minute call, but the 2018 static ffmpeg has no
 * per-channel silencedetect output we could attribute to a channel except by filter
 * address in stderr, and overtalk needs both channels' timelines side by side anyway.
 */
import { spawn } from 'node:child_process'
import { open } from 'node:fs/promises'
import { SwitchboardError } from '../errors.ts'
import { ffmpegPaths, type FfmpegPaths } from './ffmpeg-paths.ts'
import { ffmpegInputArgs, probeRecording, type ProbeResult } from './probe.ts'

export interface Span {
  startMs: number
  endMs: number
}

export interface ChannelActivity {
  talkMs: number
  silenceMs: number
  /** talk spans of this channel */
  talk: Span[]
}

export interface Analysis {
  durationMs: number
  /** index 0 = left = caller in FreeSWITCH stereo recordings */
  channels: ChannelActivity[]
  /** time when two or more channels talk at once (0 for mono) */
  overtalkMs: number
  /** spans of at least `minJointSilenceMs` when every channel is silent */
  silences: Span[]
}

export interface AnalyseOptions {
  /** energy threshold of talk, dBFS (default -35) */
  thresholdDb?: number
  /** analysis window (default 20 ms) */
  windowMs?: number
  /** shorter pauses inside talk are talk (default 300 ms) */
  minSilenceMs?: number
  /** shorter bursts are noise, not talk (default 60 ms) */
  minTalkMs?: number
  /** shortest both-silent span reported in `silences` (default 1000 ms) */
  minJointSilenceMs?: number
  timeoutMs?: number
  signal?: AbortSignal
  /** facts of the input when already probed */
  input?: ProbeResult
  paths?: FfmpegPaths
}

export class AnalysisError extends SwitchboardError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('analysis_failed', message, 500, details, options)
  }
}

const RATE = 8000

/**
 * Accumulates per-window energy from interleaved s16le PCM, chunk by chunk (chunks may
 * split a sample or a frame anywhere).
 */
export class EnergyMeter {
  readonly channels: number
  readonly windowFrames: number
  /** per channel, per window: mean square energy (normalised to full scale 1.0) */
  readonly energy: number[][]
  /** frames in each window (the last one may be short) */
  readonly windowSizes: number[] = []
  #sums: Float64Array
  #inWindow = 0
  #leftover: Buffer = Buffer.alloc(0)
  frames = 0

  constructor(channels: number, windowFrames: number) {
    this.channels = channels
    this.windowFrames = windowFrames
    this.energy = Array.from({ length: channels }, () => [])
    this.#sums = new Float64Array(channels)
  }

  push(chunk: Buffer): void {
    const frameBytes = this.channels * 2
    let buf = this.#leftover.length > 0 ? Buffer.concat([this.#leftover, chunk]) : chunk
    const usable = buf.length - (buf.length % frameBytes)
    this.#leftover = Buffer.from(buf.subarray(usable))
    if (usable === 0) return
    if (buf.byteOffset % 2 !== 0) buf = Buffer.from(buf.subarray(0, usable))
    const samples = new Int16Array(buf.buffer, buf.byteOffset, usable / 2)
    const ch = this.channels
    const sums = this.#sums
    const wf = this.windowFrames
    // window by window, with the running sums in locals: ~5× faster than a per-frame
    // window check (this runs for every recording, on the event loop, beside ffmpeg)
    let i = 0
    while (i < samples.length) {
      const take = Math.min(wf - this.#inWindow, (samples.length - i) / ch)
      const end = i + take * ch
      if (ch === 2) {
        let s0 = sums[0]
        let s1 = sums[1]
        for (; i < end; i += 2) {
          const a = samples[i]
          const b = samples[i + 1]
          s0 += a * a
          s1 += b * b
        }
        sums[0] = s0
        sums[1] = s1
      } else if (ch === 1) {
        let s0 = sums[0]
        for (; i < end; i++) {
          const a = samples[i]
          s0 += a * a
        }
        sums[0] = s0
      } else {
        for (; i < end; i += ch) {
          for (let c = 0; c < ch; c++) {
            const v = samples[i + c]
            sums[c] += v * v
          }
        }
      }
      this.#inWindow += take
      if (this.#inWindow === wf) {
        this.#closeWindow(wf)
        this.#inWindow = 0
      }
    }
    this.frames += samples.length / ch
  }

  #closeWindow(n: number): void {
    for (let c = 0; c < this.channels; c++) {
      this.energy[c].push(this.#sums[c] / n / (32768 * 32768))
      this.#sums[c] = 0
    }
    this.windowSizes.push(n)
  }

  end(): void {
    if (this.#inWindow > 0) this.#closeWindow(this.#inWindow)
    this.#inWindow = 0
  }
}

/** Runs of equal booleans: [value, startIndex, endIndex exclusive]. */
function runs(flags: boolean[]): Array<[boolean, number, number]> {
  const out: Array<[boolean, number, number]> = []
  let start = 0
  for (let i = 1; i <= flags.length; i++) {
    if (i === flags.length || flags[i] !== flags[start]) {
      out.push([flags[start], start, i])
      start = i
    }
  }
  return out
}

/**
 * Pure part of the analysis: from per-window energies to talk/silence/overtalk.
 * Exported for unit tests and for callers that decode PCM themselves.
 */
export function analyseEnergy(
  energy: number[][],
  windowSizes: number[],
  sampleRate: number,
  opts: Pick<AnalyseOptions, 'thresholdDb' | 'minSilenceMs' | 'minTalkMs' | 'minJointSilenceMs'> = {},
): Analysis {
  const threshold = Math.pow(10, (opts.thresholdDb ?? -35) / 10)
  const n = windowSizes.length
  // window start times in frames
  const startFrame = new Array<number>(n + 1)
  startFrame[0] = 0
  for (let i = 0; i < n; i++) startFrame[i + 1] = startFrame[i] + windowSizes[i]
  const ms = (frames: number) => Math.round((frames * 1_000_000) / sampleRate) / 1000
  const spanMs = (a: number, b: number) => ms(startFrame[b] - startFrame[a])
  const minSilence = opts.minSilenceMs ?? 300
  const minTalk = opts.minTalkMs ?? 60

  const active = energy.map((e) => {
    const flags = e.map((x) => x > threshold)
    // pauses inside talk shorter than minSilence are talk
    for (const [v, a, b] of runs(flags)) {
      if (!v && a > 0 && b < n && spanMs(a, b) < minSilence) flags.fill(true, a, b)
    }
    // isolated bursts shorter than minTalk are clicks
    for (const [v, a, b] of runs(flags)) {
      if (v && spanMs(a, b) < minTalk) flags.fill(false, a, b)
    }
    return flags
  })

  const durationMs = ms(startFrame[n])
  const channels: ChannelActivity[] = active.map((flags) => {
    const talk = runs(flags).filter(([v]) => v).map(([, a, b]) => ({ startMs: ms(startFrame[a]), endMs: ms(startFrame[b]) }))
    const talkMs = Math.round(talk.reduce((s, t) => s + (t.endMs - t.startMs), 0) * 1000) / 1000
    return { talkMs, silenceMs: Math.round((durationMs - talkMs) * 1000) / 1000, talk }
  })

  let overtalkFrames = 0
  const anyTalk = new Array<boolean>(n)
  for (let i = 0; i < n; i++) {
    let talking = 0
    for (const flags of active) if (flags[i]) talking++
    if (talking >= 2) overtalkFrames += windowSizes[i]
    anyTalk[i] = talking > 0
  }
  const minJoint = opts.minJointSilenceMs ?? 1000
  const silences = runs(anyTalk)
    .filter(([v, a, b]) => !v && spanMs(a, b) >= minJoint)
    .map(([, a, b]) => ({ startMs: ms(startFrame[a]), endMs: ms(startFrame[b]) }))

  return { durationMs, channels, overtalkMs: ms(overtalkFrames), silences }
}

/**
 * ffmpeg output arguments (after `-i`, before `pipe:N`) for the PCM the analysis reads:
 * 8 kHz s16le, `channels` channels. A transcode can add them as a second output, so the
 * file is decoded once for both (see transcode's `pcmTap`).
 */
export function analysisPcmArgs(channels: number): string[] {
  // -flush_packets 0: fill ffmpeg's 32 KB output buffer before writing. Beside an encoder
  // ffmpeg would otherwise write every ~4 KB packet at once: ~2,000 pipe reads (event-loop
  // wake-ups) per 5-minute call instead of ~300, measured ~0.5 s of Node CPU per recording.
  return ['-map', '0:a:0', '-vn', '-ac', String(channels), '-ar', String(RATE), '-f', 's16le', '-c:a', 'pcm_s16le', '-flush_packets', '0']
}

/** Sample rate of the PCM `analysisPcmArgs` asks for. */
export const ANALYSIS_RATE = RATE

/** Streaming analysis: feed it the PCM of `analysisPcmArgs`, then `finish()`. */
export interface PcmAnalyser {
  readonly channels: number
  push(chunk: Buffer): void
  finish(): Analysis
}

export function createPcmAnalyser(channels: number, opts: Pick<AnalyseOptions, 'windowMs' | 'thresholdDb' | 'minSilenceMs' | 'minTalkMs' | 'minJointSilenceMs'> = {}): PcmAnalyser {
  const ch = Math.max(1, channels)
  const meter = new EnergyMeter(ch, Math.max(1, Math.round(((opts.windowMs ?? 20) * RATE) / 1000)))
  return {
    channels: ch,
    push: (chunk) => meter.push(chunk),
    finish: () => {
      meter.end()
      return analyseEnergy(meter.energy, meter.windowSizes, RATE, opts)
    },
  }
}

/**
 * Can `analysePcmFile` read this input's samples directly? A 16-bit PCM WAV at the analysis
 * rate (FreeSWITCH's 8 kHz recordings): ffmpeg's PCM for the analysis would be these very
 * samples, so the result is the same to the last window. Anything else (other rates,
 * codecs, containers) goes through ffmpeg (`analysisPcmArgs`), which resamples.
 */
export function canAnalysePcmFile(info: ProbeResult): boolean {
  return info.codec === 'pcm_s16le' && info.pcm?.bitsPerSample === 16 && info.sampleRate === RATE && info.channels >= 1
}

const READ_CHUNK = 1024 * 1024

/**
 * Analyse a 16-bit PCM WAV at 8 kHz straight from the file (see `canAnalysePcmFile`): the
 * samples the probe found (`info.pcm`: after the header, also when the header was never
 * finalised) are read in 1 MB chunks. No ffmpeg output to decode, pipe and read back, so
 * it runs beside the transcode for ~30 ms of CPU per 5-minute stereo call.
 */
export async function analysePcmFile(path: string, info: ProbeResult, opts: Omit<AnalyseOptions, 'input' | 'paths' | 'timeoutMs'> = {}): Promise<Analysis> {
  if (!canAnalysePcmFile(info) || !info.pcm) throw new AnalysisError(`${path}: not a 16-bit PCM WAV at ${RATE} Hz; analyse it through ffmpeg`, { path, codec: info.codec, sampleRate: info.sampleRate })
  const analyser = createPcmAnalyser(info.channels, opts)
  const { dataOffset, dataBytes } = info.pcm
  let fh
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw new AnalysisError(`cannot read ${path}: ${(e as Error).message}`, { path }, { cause: e })
  }
  try {
    // one buffer, reused: EnergyMeter copies what it keeps of a chunk (a split frame)
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(dataBytes, 1)))
    let done = 0
    while (done < dataBytes) {
      if (opts.signal?.aborted) throw new AnalysisError(`analysis of ${path} aborted`, { path })
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, dataBytes - done), dataOffset + done)
      if (bytesRead === 0) break // the file got shorter than probed: analyse what is there
      analyser.push(buf.subarray(0, bytesRead))
      done += bytesRead
    }
  } catch (e) {
    if (e instanceof AnalysisError) throw e
    throw new AnalysisError(`cannot read ${path}: ${(e as Error).message}`, { path }, { cause: e })
  } finally {
    await fh.close()
  }
  return analyser.finish()
}

/** Decode `path` with ffmpeg and analyse its channels. */
export async function analyseRecording(path: string, opts: AnalyseOptions = {}): Promise<Analysis> {
  const paths = opts.paths ?? ffmpegPaths()
  const info = opts.input ?? (await probeRecording(path, { paths }))
  const analyser = createPcmAnalyser(info.channels, opts)
  const timeoutMs = opts.timeoutMs ?? 120_000

  const args = ['-nostdin', '-hide_banner', '-v', 'error', ...ffmpegInputArgs(info), '-i', path, ...analysisPcmArgs(analyser.channels), 'pipe:1']
  await new Promise<void>((resolve, reject) => {
    const child = spawn(paths.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let failure: AnalysisError | undefined
    const stop = (err: AnalysisError) => {
      failure ??= err
      child.kill('SIGKILL')
    }
    const timer = setTimeout(() => stop(new AnalysisError(`analysis of ${path} timed out after ${timeoutMs} ms`, { path, timeoutMs })), timeoutMs)
    const onAbort = () => stop(new AnalysisError(`analysis of ${path} aborted`, { path }))
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.signal?.aborted) onAbort()
    child.stdout.on('data', (chunk: Buffer) => analyser.push(chunk))
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4096)
    })
    child.on('error', (e) => {
      // spawn failure: 'close' may never come
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      reject(failure ?? new AnalysisError(`cannot run ffmpeg (${paths.ffmpegPath}): ${e.message}`, { path }, { cause: e }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      if (failure) return reject(failure)
      if (code !== 0) {
        const t = stderr.trim().split('\n').slice(-5).join('\n')
        return reject(new AnalysisError(`ffmpeg could not decode ${path} (${signal ?? `exit ${code}`}): ${t}`, { path, stderrTail: t }))
      }
      resolve()
    })
  })
  return analyser.finish()
}
