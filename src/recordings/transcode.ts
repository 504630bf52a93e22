/**
 * Transcode a recording with ffmpeg (through fluent-ffmpeg): Ogg/Opus for storage (libopus,
 * ~14× smaller than 8 kHz stereo PCM at 24 kbit/s), MP3 for players that need it
 * (libmp3lame), or a clean WAV copy (header rewritten, samples bit-exact for s16le).
 *
 * The output is written to `<output>.part-…` and renamed when ffmpeg has succeeded and the
 * result reads as audio (Ogg pages or WAV header checked in JS, else ffprobe), so a reader
 * never sees a half-written file. ffmpeg is killed (SIGKILL) on timeout or abort and the
 * partial file removed once it has exited.
 * Errors are thrown, not logged: the caller that handles them logs them once.
 */
import { randomBytes } from 'node:crypto'
import { rename, rm, stat } from 'node:fs/promises'
import { Writable } from 'node:stream'
import ffmpeg from 'fluent-ffmpeg'
import { SwitchboardError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { ffmpegPaths, type FfmpegPaths } from './ffmpeg-paths.ts'
import { BrokenAudioError, ffmpegInputArgs, probeRecording, probeWavHeader, type ProbeResult } from './probe.ts'
import { probeOggOpus } from './ogg-opus.ts'

export type OutputFormat = 'opus' | 'mp3' | 'wav'

export interface TranscodeOptions {
  format: OutputFormat
  /** target bitrate for opus/mp3, kbit/s (default 24) */
  bitrateKbps?: number
  /** output channels (default: as the input; 2 keeps caller/agent apart) */
  channels?: 1 | 2
  /** libopus -compression_level 0..10 (default 5: ~1.8× faster than 10, nearly the same size) */
  compressionLevel?: number
  /** libopus -application (default 'audio'; 'voip' is ~7% smaller but ~1.6× slower with the 2018 build) */
  application?: 'audio' | 'voip' | 'lowdelay'
  /** output sample rate; default: the input's, moved up to one libopus accepts for opus */
  sampleRate?: number
  /** kill ffmpeg after this long (default 300 000 ms) */
  timeoutMs?: number
  signal?: AbortSignal
  /** facts of the input when already probed (saves one ffprobe run) */
  input?: ProbeResult
  paths?: FfmpegPaths
  logger?: Logger
  /**
   * A second output of the same ffmpeg run, streamed to `onData` (e.g. the analysis PCM of
   * analyse.ts `analysisPcmArgs`): the input is read and decoded once for both. The
   * transcode resolves only after the last byte of it was delivered.
   */
  pcmTap?: { args: string[]; onData(chunk: Buffer): void }
}

export interface TranscodeResult {
  output: string
  format: OutputFormat
  codec: string
  channels: number
  sampleRate: number
  durationMs: number
  bytes: number
  elapsedMs: number
}

export type TranscodeFailure = 'ffmpeg_failed' | 'timeout' | 'aborted' | 'bad_output' | 'bad_input'

export class TranscodeError extends SwitchboardError {
  readonly reason: TranscodeFailure
  readonly stderrTail: string
  constructor(reason: TranscodeFailure, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('transcode_failed', message, reason === 'timeout' ? 504 : 500, { reason, ...details }, options)
    this.reason = reason
    this.stderrTail = typeof details.stderrTail === 'string' ? details.stderrTail : ''
  }
}

const OPUS_RATES = [8000, 12000, 16000, 24000, 48000]
const CONTAINER: Record<OutputFormat, string> = { opus: 'ogg', mp3: 'mp3', wav: 'wav' }

/** The smallest rate libopus accepts that is ≥ the input's (no upsampling for 8 kHz calls). */
export function opusSampleRate(inputRate: number): number {
  return OPUS_RATES.find((r) => r >= inputRate) ?? 48000
}

/**
 * ffmpeg output arguments for a transcode (everything after `-i input`, before the output
 * file). Shared with the benchmark so the raw-CLI comparison runs exactly the same work.
 */
export function ffmpegOutputArgs(opts: Pick<TranscodeOptions, 'format' | 'bitrateKbps' | 'channels' | 'compressionLevel' | 'application'> & { sampleRate?: number }): string[] {
  const args = ['-vn', '-map_metadata', '-1']
  const kbps = opts.bitrateKbps ?? 24
  switch (opts.format) {
    case 'opus':
      args.push('-c:a', 'libopus', '-b:a', `${kbps}k`, '-vbr', 'on',
        '-compression_level', String(opts.compressionLevel ?? 5), '-application', opts.application ?? 'audio')
      break
    case 'mp3':
      args.push('-c:a', 'libmp3lame', '-b:a', `${kbps}k`)
      break
    case 'wav':
      args.push('-c:a', 'pcm_s16le', '-bitexact')
      break
  }
  if (opts.channels) args.push('-ac', String(opts.channels))
  if (opts.sampleRate) args.push('-ar', String(opts.sampleRate))
  args.push('-f', CONTAINER[opts.format])
  return args
}

function tail(stderr: string, lines = 15): string {
  return stderr.trim().split('\n').slice(-lines).join('\n')
}

/**
 * The facts of our own Opus or WAV output read in JS (a full Ogg page walk with CRCs; the
 * WAV header), sparing an ffprobe start on every recording's critical path. Undefined
 * when the file does not read as expected: ffprobe then decides (MP3 always goes there).
 */
async function probeOwnOutput(path: string, format: OutputFormat): Promise<ProbeResult | undefined> {
  if (format === 'opus') return probeOggOpus(path)
  if (format === 'wav') {
    const p = await probeWavHeader(path)
    return p?.header === 'ok' ? p : undefined
  }
  return undefined
}

/**
 * Transcode `input` to `output`. The input is probed first (pass `opts.input` if it was
 * already). Rejects with BrokenAudioError for an unusable input, TranscodeError otherwise.
 */
export async function transcode(input: string, output: string, opts: TranscodeOptions): Promise<TranscodeResult> {
  const started = performance.now()
  const paths = opts.paths ?? ffmpegPaths()
  const timeoutMs = opts.timeoutMs ?? 300_000
  const log = opts.logger?.child({ input, output, format: opts.format })
  if (opts.signal?.aborted) throw new TranscodeError('aborted', `transcode of ${input} aborted before start`, { input })

  // know the input: libopus only takes 8/12/16/24/48 kHz, and an unfinalised WAV header
  // must be read raw (rejects with BrokenAudioError for an unusable input)
  const info = opts.input ?? (await probeRecording(input, { paths }))
  let sampleRate = opts.sampleRate
  if (opts.format === 'opus' && sampleRate === undefined && !OPUS_RATES.includes(info.sampleRate)) {
    sampleRate = opusSampleRate(info.sampleRate)
  }

  const part = `${output}.part-${process.pid}-${randomBytes(4).toString('hex')}`
  const outArgs = ffmpegOutputArgs({ ...opts, sampleRate })

  await new Promise<void>((resolve, reject) => {
    let settled = false
    let started = false
    let killRequested = false
    let failure: TranscodeError | undefined
    let stderr = ''
    let killCap: NodeJS.Timeout | undefined
    const cmd = ffmpeg(input)
      .setFfmpegPath(paths.ffmpegPath)
      .setFfprobePath(paths.ffprobePath)
      .inputOptions(['-nostdin', '-hide_banner', ...ffmpegInputArgs(info)])
      .outputOptions(outArgs)
      .output(part)
    // The tap: ffmpeg's stdout piped into a sink. emitClose is off because fluent-ffmpeg
    // treats a closing output stream as "kill ffmpeg in 20 ms", which under load can come
    // before the exit it is waiting for; we wait for both ffmpeg's end and the sink's finish.
    let tapDone = true
    let ffmpegEnded = false
    if (opts.pcmTap) {
      const tap = opts.pcmTap
      tapDone = false
      const sink = new Writable({
        emitClose: false,
        write(chunk: Buffer, _enc, cb) {
          try { tap.onData(chunk); cb() } catch (e) { cb(e as Error) }
        },
      })
      sink.on('finish', () => { tapDone = true; if (ffmpegEnded) finish(failure) })
      cmd.output(sink, { end: true }).outputOptions(tap.args)
    }
    // settles only once ffmpeg has exited (fluent-ffmpeg emits 'end' or 'error' after exit),
    // so the partial file is removed after the last write
    const finish = (err?: TranscodeError) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(killCap)
      opts.signal?.removeEventListener('abort', onAbort)
      if (err) reject(err)
      else resolve()
    }
    const stop = (err: TranscodeError) => {
      failure ??= err
      killRequested = true
      // before 'start' fluent-ffmpeg is still checking capabilities: kill as soon as it spawns
      if (started) cmd.kill('SIGKILL')
      killCap ??= setTimeout(() => finish(failure), 5000)
    }
    const timer = setTimeout(
      () => stop(new TranscodeError('timeout', `ffmpeg transcode of ${input} timed out after ${timeoutMs} ms`, { input, timeoutMs, stderrTail: tail(stderr) })),
      timeoutMs,
    )
    const onAbort = () => stop(new TranscodeError('aborted', `transcode of ${input} aborted`, { input, stderrTail: tail(stderr) }))
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.signal?.aborted) onAbort() // aborted while the input was probed
    cmd.on('start', (line: string) => {
      started = true
      log?.debug({ cmd: line }, 'ffmpeg started')
      if (killRequested) cmd.kill('SIGKILL')
    })
    cmd.on('stderr', (line: string) => {
      stderr += line + '\n'
      if (stderr.length > 16_384) stderr = stderr.slice(-8192)
    })
    cmd.on('error', (e: Error, _stdout: string | null, ffStderr: string | null) => {
      const t = tail(ffStderr || stderr)
      finish(failure ?? new TranscodeError('ffmpeg_failed', `ffmpeg failed on ${input}: ${e.message.split('\n')[0]}${t ? `\n${t}` : ''}`, { input, stderrTail: t }, { cause: e }))
    })
    cmd.on('end', () => {
      ffmpegEnded = true
      if (tapDone || failure) finish(failure)
      // else: the sink still has stdout's last bytes to take; its 'finish' settles (or the kill cap)
      else killCap ??= setTimeout(() => finish(new TranscodeError('ffmpeg_failed', `ffmpeg ended but its PCM output for ${input} never finished`, { input })), 5000)
    })
    cmd.run()
  }).catch(async (e: unknown) => {
    await rm(part, { force: true })
    throw e
  })

  let out: ProbeResult
  try {
    out = (await probeOwnOutput(part, opts.format)) ?? (await probeRecording(part, { paths }))
  } catch (e) {
    await rm(part, { force: true })
    const reason = e instanceof BrokenAudioError ? e.reason : 'unknown'
    throw new TranscodeError('bad_output', `ffmpeg output for ${input} is not usable audio (${reason})`, { input, probeReason: reason }, { cause: e })
  }
  await rename(part, output)
  const bytes = (await stat(output)).size
  const result: TranscodeResult = {
    output,
    format: opts.format,
    codec: out.codec,
    channels: out.channels,
    sampleRate: out.sampleRate,
    durationMs: out.durationMs,
    bytes,
    elapsedMs: Math.round(performance.now() - started),
  }
  log?.debug(result, 'transcoded')
  return result
}
