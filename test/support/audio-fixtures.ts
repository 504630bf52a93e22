/**
 * Fixture audio for the recording tests and benchmarks, written in pure JS so that a test
 * knows exactly where talk and silence are. Output is what FreeSWITCH's record_session
 * writes: RIFF/WAVE, PCM s16le, interleaved (left = caller, right = other party).
 *
 * Everything is deterministic: noise comes from a seeded PRNG, so the same call always
 * produces the same bytes.
 */
import { open, writeFile } from 'node:fs/promises'

export type SegmentKind = 'tone' | 'silence' | 'noise'

export interface Segment {
  kind: SegmentKind
  ms: number
  /** tone frequency in Hz (default 440) */
  freq?: number
  /** peak amplitude 0..1 (default 0.5 for tones, 0.3 for noise) */
  amplitude?: number
}

export interface WavSpec {
  sampleRate?: number
  channels: 1 | 2
  /** one list of segments per channel; a channel shorter than the longest is padded with silence */
  segments: Segment[][]
  /** PRNG seed for noise (default 1) */
  seed?: number
  /**
   * Value written in the `data` chunk size (and RIFF size derived from it) instead of the
   * real one: 0 reproduces a FreeSWITCH file that was never closed (header not finalised).
   */
  headerDataSize?: number
}

export interface WavInfo {
  path: string
  sampleRate: number
  channels: number
  frames: number
  durationMs: number
  bytes: number
}

const HEADER_BYTES = 44

/** mulberry32: tiny deterministic PRNG, returns floats in [0, 1) */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function wavHeader(sampleRate: number, channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES)
  const blockAlign = channels * 2
  h.write('RIFF', 0, 'ascii')
  h.writeUInt32LE((36 + dataBytes) >>> 0, 4)
  h.write('WAVE', 8, 'ascii')
  h.write('fmt ', 12, 'ascii')
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20) // PCM
  h.writeUInt16LE(channels, 22)
  h.writeUInt32LE(sampleRate, 24)
  h.writeUInt32LE(sampleRate * blockAlign, 28)
  h.writeUInt16LE(blockAlign, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36, 'ascii')
  h.writeUInt32LE(dataBytes >>> 0, 40)
  return h
}

/** Render one channel's segments into float samples in [-1, 1]. */
function renderChannel(segments: Segment[], sampleRate: number, frames: number, rand: () => number): Float32Array {
  const out = new Float32Array(frames)
  let pos = 0
  for (const seg of segments) {
    const n = Math.round((seg.ms * sampleRate) / 1000)
    const end = Math.min(frames, pos + n)
    if (seg.kind === 'tone') {
      const amp = seg.amplitude ?? 0.5
      const w = (2 * Math.PI * (seg.freq ?? 440)) / sampleRate
      for (let i = pos; i < end; i++) out[i] = amp * Math.sin(w * (i - pos))
    } else if (seg.kind === 'noise') {
      // white noise through a one-pole low-pass: energy mostly below ~1.5 kHz, like voice
      const amp = seg.amplitude ?? 0.3
      let y = 0
      for (let i = pos; i < end; i++) {
        y = 0.6 * y + 0.4 * (rand() * 2 - 1)
        out[i] = Math.max(-1, Math.min(1, amp * 2.2 * y))
      }
    }
    pos += n
  }
  return out
}

function segmentsMs(list: Segment[]): number {
  return list.reduce((s, x) => s + x.ms, 0)
}

/** PCM s16le interleaved bytes for a spec (no header). */
export function renderPcm(spec: WavSpec): { pcm: Buffer; frames: number; sampleRate: number } {
  const sampleRate = spec.sampleRate ?? 8000
  const { channels } = spec
  if (spec.segments.length !== channels) {
    throw new Error(`writeWav: ${channels} channel(s) but ${spec.segments.length} segment lists`)
  }
  const totalMs = Math.max(...spec.segments.map(segmentsMs))
  const frames = Math.round((totalMs * sampleRate) / 1000)
  const rand = prng(spec.seed ?? 1)
  const rendered = spec.segments.map((segs) => renderChannel(segs, sampleRate, frames, rand))
  const pcm = Buffer.alloc(frames * channels * 2)
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++) {
      const v = Math.round(rendered[c][i] * 32767)
      pcm.writeInt16LE(Math.max(-32768, Math.min(32767, v)), (i * channels + c) * 2)
    }
  }
  return { pcm, frames, sampleRate }
}

/** Write a complete, correct WAV file; returns what was written. */
export async function writeWav(path: string, spec: WavSpec): Promise<WavInfo> {
  const { pcm, frames, sampleRate } = renderPcm(spec)
  const header = wavHeader(sampleRate, spec.channels, spec.headerDataSize ?? pcm.length)
  await writeFile(path, Buffer.concat([header, pcm]))
  return {
    path,
    sampleRate,
    channels: spec.channels,
    frames,
    durationMs: (frames * 1000) / sampleRate,
    bytes: HEADER_BYTES + pcm.length,
  }
}

/**
 * A speech-like conversation for one channel: noise bursts ("talk spurts") of 0.3–2.5 s
 * separated by pauses of 0.2–1.8 s, about half the time active, like one side of a call.
 */
export function speechLikeSegments(totalMs: number, seed: number): Segment[] {
  const rand = prng(seed)
  const out: Segment[] = []
  let t = 0
  let talking = rand() < 0.5
  while (t < totalMs) {
    const ms = Math.min(totalMs - t, Math.round(talking ? 300 + rand() * 2200 : 200 + rand() * 1600))
    out.push(talking ? { kind: 'noise', ms, amplitude: 0.15 + rand() * 0.2 } : { kind: 'silence', ms })
    t += ms
    talking = !talking
  }
  return out
}

/**
 * Write a large speech-like stereo call without holding everything in memory twice:
 * chunks of PCM are appended to the file. Used by the benchmark (5-minute calls).
 */
export async function writeSpeechLikeCall(path: string, opts: { durationMs: number; sampleRate?: number; seed?: number }): Promise<WavInfo> {
  const sampleRate = opts.sampleRate ?? 8000
  const seed = opts.seed ?? 1
  const spec: WavSpec = {
    sampleRate,
    channels: 2,
    seed,
    segments: [speechLikeSegments(opts.durationMs, seed * 2 + 1), speechLikeSegments(opts.durationMs, seed * 2 + 2)],
  }
  const { pcm, frames } = renderPcm(spec)
  const fh = await open(path, 'w')
  try {
    await fh.write(wavHeader(sampleRate, 2, pcm.length))
    await fh.write(pcm)
  } finally {
    await fh.close()
  }
  return { path, sampleRate, channels: 2, frames, durationMs: (frames * 1000) / sampleRate, bytes: HEADER_BYTES + pcm.length }
}

/** A WAV whose header is fine but whose `fmt ` chunk is nonsense (0 channels, 0 Hz) and body random. */
export async function writeCorruptWav(path: string, bytes = 16000): Promise<void> {
  const h = wavHeader(8000, 2, bytes)
  h.writeUInt16LE(0, 22) // channels
  h.writeUInt32LE(0, 24) // sample rate
  h.writeUInt16LE(0, 32) // block align
  const rand = prng(7)
  const body = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) body[i] = Math.floor(rand() * 256)
  await writeFile(path, Buffer.concat([h, body]))
}

/** A finalised WAV with a correct header and no samples at all (call that never produced audio). */
export async function writeHeaderOnlyWav(path: string, opts: { sampleRate?: number; channels?: 1 | 2 } = {}): Promise<void> {
  await writeFile(path, wavHeader(opts.sampleRate ?? 8000, opts.channels ?? 2, 0))
}

/**
 * A WAV whose header promises `durationMs` of audio but the file stops after `keepFraction`
 * of it (copy interrupted, disk full).
 */
export async function writeTruncatedWav(path: string, opts: { durationMs?: number; keepFraction?: number; channels?: 1 | 2 } = {}): Promise<{ declaredBytes: number; actualBytes: number }> {
  const channels = opts.channels ?? 2
  const durationMs = opts.durationMs ?? 3000
  const { pcm, sampleRate } = renderPcm({
    channels,
    segments: Array.from({ length: channels }, () => [{ kind: 'tone' as const, ms: durationMs }]),
  })
  const keep = Math.floor((pcm.length * (opts.keepFraction ?? 0.4)) / (channels * 2)) * channels * 2
  await writeFile(path, Buffer.concat([wavHeader(sampleRate, channels, pcm.length), pcm.subarray(0, keep)]))
  return { declaredBytes: HEADER_BYTES + pcm.length, actualBytes: HEADER_BYTES + keep }
}

/** Random bytes that are not audio in any container. */
export async function writeGarbage(path: string, bytes = 20000, seed = 3): Promise<void> {
  const rand = prng(seed)
  const b = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(rand() * 256)
  await writeFile(path, b)
}
