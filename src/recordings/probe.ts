/**
 * What is in a recording file, and is it usable at all.
 *
 * FreeSWITCH's WAV header is final only when the file is closed: a file left by a crash or
 * still being written has a `data` size of 0 (or a stale one) while samples follow. Such a
 * file is *usable*: ffmpeg reads to the end of the file, and we report the duration of the
 * samples that are really there (`header: 'unfinalised'`). The opposite — a header that
 * promises more samples than the file holds — means bytes were lost (interrupted copy, full
 * disk): that is rejected as `truncated` unless the caller opts in with `allowTruncated`.
 */
import { spawn } from 'node:child_process'
import { open, stat } from 'node:fs/promises'
import { SwitchboardError } from '../errors.ts'
import { ffmpegPaths, type FfmpegPaths } from './ffmpeg-paths.ts'

export type BrokenAudioReason =
  | 'missing' // no such file
  | 'empty' // zero bytes
  | 'no_audio' // a valid container with no samples (header-only WAV)
  | 'not_audio' // not a container ffprobe recognises, or no audio stream in it
  | 'corrupt' // looks like a WAV but its header is nonsense
  | 'truncated' // header promises more data than the file holds
  | 'unreadable' // permission denied, ffprobe failed or timed out

export class BrokenAudioError extends SwitchboardError {
  readonly reason: BrokenAudioReason
  constructor(reason: BrokenAudioReason, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('audio_broken', message, 422, { reason, ...details }, options)
    this.reason = reason
  }
}

export interface ProbeResult {
  /** container as ffprobe names it: 'wav', 'ogg', 'mp3'… */
  format: string
  /** 'pcm_s16le', 'opus', 'mp3'… */
  codec: string
  sampleRate: number
  channels: number
  durationMs: number
  /** size of the file */
  bytes: number
  /**
   * WAV only: 'ok'; 'unfinalised' when the header's data size is not the real one (0,
   * 0xFFFFFFFF or stale) — read it with `ffmpegInputArgs`, ffmpeg would stop at a stale
   * size; 'truncated' (only with allowTruncated). 'n/a' for other containers.
   */
  header: 'ok' | 'unfinalised' | 'truncated' | 'n/a'
  /** WAV PCM only: where the samples are */
  pcm?: { dataOffset: number; dataBytes: number; bitsPerSample: number }
}

export interface ProbeOptions {
  timeoutMs?: number
  /** accept a WAV whose header declares more data than present (duration = data present) */
  allowTruncated?: boolean
  paths?: FfmpegPaths
}

interface WavLayout {
  dataOffset: number
  declaredDataBytes: number
  blockAlign: number
  byteRate: number
  sampleRate: number
  channels: number
  /** fmt chunk: 1 = integer PCM */
  audioFormat: number
  bitsPerSample: number
}

const HEAD_BYTES = 64 * 1024

function printableId(buf: Buffer, at: number): boolean {
  if (at + 4 > buf.length) return false
  for (let i = at; i < at + 4; i++) if (buf[i] < 0x20 || buf[i] > 0x7e) return false
  return true
}

/** Walk the RIFF chunks of a WAV head; undefined when the file is not RIFF/WAVE. */
function parseWavHead(head: Buffer, path: string, fileBytes: number): WavLayout | undefined {
  if (head.length < 12 || head.toString('ascii', 0, 4) !== 'RIFF' || head.toString('ascii', 8, 12) !== 'WAVE') return undefined
  let at = 12
  let fmt: { channels: number; sampleRate: number; byteRate: number; blockAlign: number; audioFormat: number; bitsPerSample: number } | undefined
  while (at + 8 <= head.length) {
    const id = head.toString('ascii', at, at + 4)
    const size = head.readUInt32LE(at + 4)
    if (id === 'fmt ') {
      if (at + 8 + 16 > head.length) break
      fmt = { audioFormat: head.readUInt16LE(at + 8), channels: head.readUInt16LE(at + 10), sampleRate: head.readUInt32LE(at + 12), byteRate: head.readUInt32LE(at + 16), blockAlign: head.readUInt16LE(at + 20), bitsPerSample: head.readUInt16LE(at + 22) }
    } else if (id === 'data') {
      if (!fmt) throw new BrokenAudioError('corrupt', `${path}: WAV data chunk before fmt chunk`, { path })
      if (fmt.channels === 0 || fmt.sampleRate === 0 || fmt.blockAlign === 0) {
        throw new BrokenAudioError('corrupt', `${path}: WAV fmt chunk is invalid (${fmt.channels} ch, ${fmt.sampleRate} Hz)`, { path })
      }
      return { dataOffset: at + 8, declaredDataBytes: size, ...fmt }
    } else if (!printableId(head, at)) {
      throw new BrokenAudioError('corrupt', `${path}: WAV chunk list is damaged at byte ${at}`, { path, at })
    }
    at += 8 + size + (size & 1)
  }
  // header ends before its data chunk: the file was cut inside the header
  if (at + 8 > fileBytes || head.length < HEAD_BYTES) {
    throw new BrokenAudioError('truncated', `${path}: file ends inside the WAV header (${fileBytes} bytes)`, { path, bytes: fileBytes })
  }
  throw new BrokenAudioError('corrupt', `${path}: no WAV data chunk in the first ${HEAD_BYTES} bytes`, { path })
}

/** Real amount of sample data, and what the header says about it. */
async function wavData(layout: WavLayout, path: string, fileBytes: number, allowTruncated: boolean): Promise<{ dataBytes: number; header: ProbeResult['header'] }> {
  const present = fileBytes - layout.dataOffset
  const declared = layout.declaredDataBytes
  if (declared === 0 || declared === 0xffffffff) return { dataBytes: present, header: present > 0 ? 'unfinalised' : 'ok' }
  if (declared > present) {
    if (!allowTruncated) {
      throw new BrokenAudioError(
        'truncated',
        `${path}: WAV header declares ${declared} bytes of audio but only ${present} are present`,
        { path, declaredBytes: declared, presentBytes: present },
      )
    }
    return { dataBytes: present, header: 'truncated' }
  }
  if (declared < present) {
    // either legitimate chunks follow the data (LIST…), or a stale header over a longer file
    const next = layout.dataOffset + declared + (declared & 1)
    const after = next + 8 <= fileBytes ? await readAt(path, next, 8) : Buffer.alloc(0)
    const nextIsChunk = after.length === 8 && printableId(after, 0) && next + 8 + after.readUInt32LE(4) <= fileBytes
    if (!nextIsChunk && present - declared >= layout.blockAlign) return { dataBytes: present, header: 'unfinalised' }
  }
  return { dataBytes: declared, header: 'ok' }
}

interface FfprobeJson {
  streams?: Array<{ codec_type?: string; codec_name?: string; sample_rate?: string; channels?: number; bits_per_sample?: number; duration?: string }>
  format?: { format_name?: string; duration?: string; start_time?: string; size?: string }
}

function runFfprobe(ffprobePath: string, path: string, timeoutMs: number): Promise<{ code: number | null; out: string; err: string; timedOut: boolean }> {
  const args = ['-v', 'error', '-show_entries',
    'format=format_name,duration,start_time,size:stream=codec_type,codec_name,sample_rate,channels,bits_per_sample,duration',
    '-of', 'json', path]
  return new Promise((resolve, reject) => {
    const child = spawn(ffprobePath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err, timedOut })
    })
  })
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(length)
    const { bytesRead } = await fh.read(buf, 0, length, position)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * What `probeRecording` will say about a plain 16-bit PCM WAV (what FreeSWITCH writes),
 * from its header alone, without running ffprobe. Any bytes after such a header are
 * valid samples, so ffprobe has nothing to add: the pipeline takes this verdict as it is
 * (`header` 'ok' or 'unfinalised') and runs ffprobe only for what this gives undefined
 * for — other codecs and containers, or a header with odd facts (byte rate not matching,
 * more than 8 channels, a rate outside 8–192 kHz) — and for a `truncated` one.
 * Rejects like `probeRecording` for an empty, missing, cut or damaged file.
 */
export async function probeWavHeader(path: string, opts: Pick<ProbeOptions, 'allowTruncated'> = {}): Promise<ProbeResult | undefined> {
  const { bytes, head } = await readHead(path)
  const layout = parseWavHead(head, path, bytes)
  if (!layout || layout.audioFormat !== 1 || layout.bitsPerSample !== 16 || layout.blockAlign !== layout.channels * 2) return undefined
  if (layout.byteRate !== layout.sampleRate * layout.blockAlign || layout.channels > 8 || layout.sampleRate < 8000 || layout.sampleRate > 192_000) return undefined
  const wav = await wavData(layout, path, bytes, opts.allowTruncated ?? false)
  if (wav.dataBytes < layout.blockAlign) throw new BrokenAudioError('no_audio', `${path}: WAV header only, no samples`, { path, bytes })
  const durationMs = (Math.floor(wav.dataBytes / layout.blockAlign) * 1000) / layout.sampleRate
  return {
    format: 'wav', codec: 'pcm_s16le', sampleRate: layout.sampleRate, channels: layout.channels,
    durationMs: Math.round(durationMs * 1000) / 1000, bytes, header: wav.header,
    pcm: { dataOffset: layout.dataOffset, dataBytes: wav.dataBytes, bitsPerSample: 16 },
  }
}

async function readHead(path: string): Promise<{ bytes: number; head: Buffer }> {
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new BrokenAudioError('not_audio', `${path} is not a regular file`, { path })
    if (st.size === 0) throw new BrokenAudioError('empty', `${path} is empty (0 bytes)`, { path })
    return { bytes: st.size, head: await readAt(path, 0, HEAD_BYTES) }
  } catch (e) {
    if (e instanceof BrokenAudioError) throw e
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new BrokenAudioError('missing', `${path} does not exist`, { path }, { cause: e })
    throw new BrokenAudioError('unreadable', `${path} cannot be read: ${(e as Error).message}`, { path }, { cause: e })
  }
}

/**
 * Probe a recording. Resolves with its facts, or rejects with BrokenAudioError whose
 * `reason` says why the file cannot be used.
 */
export async function probeRecording(path: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  let bytes: number
  let head: Buffer
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new BrokenAudioError('not_audio', `${path} is not a regular file`, { path })
    bytes = st.size
    if (bytes === 0) throw new BrokenAudioError('empty', `${path} is empty (0 bytes)`, { path })
    head = await readAt(path, 0, HEAD_BYTES)
  } catch (e) {
    if (e instanceof BrokenAudioError) throw e
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new BrokenAudioError('missing', `${path} does not exist`, { path }, { cause: e })
    throw new BrokenAudioError('unreadable', `${path} cannot be read: ${(e as Error).message}`, { path }, { cause: e })
  }

  const layout = parseWavHead(head, path, bytes)
  const wav = layout ? await wavData(layout, path, bytes, opts.allowTruncated ?? false) : undefined
  if (layout && wav && wav.dataBytes < layout.blockAlign) {
    throw new BrokenAudioError('no_audio', `${path}: WAV header only, no samples`, { path, bytes })
  }

  const paths = opts.paths ?? ffmpegPaths()
  const timeoutMs = opts.timeoutMs ?? 15_000
  let res: Awaited<ReturnType<typeof runFfprobe>>
  try {
    res = await runFfprobe(paths.ffprobePath, path, timeoutMs)
  } catch (e) {
    throw new BrokenAudioError('unreadable', `cannot run ffprobe (${paths.ffprobePath}): ${(e as Error).message}`, { path }, { cause: e })
  }
  if (res.timedOut) throw new BrokenAudioError('unreadable', `ffprobe timed out after ${timeoutMs} ms on ${path}`, { path, timeoutMs })
  const errTail = res.err.trim().split('\n').slice(-3).join(' | ')
  if (res.code !== 0) {
    const reason: BrokenAudioReason = layout ? 'corrupt' : /Invalid data|could not find codec|unknown format/i.test(res.err) ? 'not_audio' : 'unreadable'
    throw new BrokenAudioError(reason, `${path}: ffprobe cannot read it: ${errTail}`, { path, stderr: errTail })
  }

  let json: FfprobeJson
  try {
    json = JSON.parse(res.out) as FfprobeJson
  } catch (e) {
    throw new BrokenAudioError('unreadable', `${path}: ffprobe output is not JSON`, { path }, { cause: e })
  }
  const stream = json.streams?.find((s) => s.codec_type === 'audio')
  if (!stream) throw new BrokenAudioError('not_audio', `${path}: no audio stream (format ${json.format?.format_name ?? '?'})`, { path })

  const sampleRate = Number(stream.sample_rate ?? 0)
  const channels = stream.channels ?? 0
  const codec = stream.codec_name ?? 'unknown'
  let durationMs: number
  if (layout && wav && codec.startsWith('pcm_') && stream.bits_per_sample) {
    // exact, from the samples really present (ffprobe would trust the header)
    const frameBytes = (channels * stream.bits_per_sample) / 8
    durationMs = (Math.floor(wav.dataBytes / frameBytes) * 1000) / sampleRate
  } else {
    const d = Number(json.format?.duration ?? stream.duration ?? NaN)
    if (!Number.isFinite(d)) throw new BrokenAudioError('no_audio', `${path}: ffprobe reports no duration`, { path })
    // MP3: the encoder delay shows as a positive start time and is counted in the
    // duration; the decoder drops it (gapless info), so do we
    const start = Number(json.format?.start_time ?? 0)
    durationMs = (d - (Number.isFinite(start) && start > 0 ? start : 0)) * 1000
  }
  if (durationMs <= 0) throw new BrokenAudioError('no_audio', `${path}: no samples`, { path })

  return {
    format: json.format?.format_name ?? 'unknown',
    codec,
    sampleRate,
    channels,
    durationMs: Math.round(durationMs * 1000) / 1000,
    bytes,
    header: wav?.header ?? 'n/a',
    ...(layout && wav && codec.startsWith('pcm_') && stream.bits_per_sample
      ? { pcm: { dataOffset: layout.dataOffset, dataBytes: wav.dataBytes, bitsPerSample: stream.bits_per_sample } }
      : {}),
  }
}

const RAW_FORMAT: Record<string, string> = { pcm_s16le: 's16le', pcm_u8: 'u8', pcm_s24le: 's24le', pcm_s32le: 's32le', pcm_f32le: 'f32le', pcm_mulaw: 'mulaw', pcm_alaw: 'alaw' }

/**
 * ffmpeg input options to put before `-i path` so that ffmpeg reads all the audio. For a
 * WAV whose header is not finalised, the samples are read raw past the header (ffmpeg
 * would trust a stale data size and drop the rest). Empty for everything else.
 */
export function ffmpegInputArgs(info: ProbeResult): string[] {
  const raw = RAW_FORMAT[info.codec]
  if (info.header !== 'unfinalised' || !info.pcm || !raw) return []
  return ['-f', raw, '-ar', String(info.sampleRate), '-ac', String(info.channels), '-skip_initial_bytes', String(info.pcm.dataOffset)]
}
