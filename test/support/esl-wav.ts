import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/** A time span in ms, relative to the start of the recording. */
export type Span = [number, number]

export interface RecordingTimeline {
  durationMs: number
  stereo: boolean
  /** When the caller talks (left channel: 440 Hz tone with a little noise). */
  callerTalks: Span[]
  /** When the other party is bridged (right channel: 660 Hz tone + noise). */
  bridged: Span[]
  /** When a prompt plays to the caller (right channel: quieter 880 Hz tone). */
  prompts: Span[]
}

const RATE = 8000

/**
 * What record_session writes: WAV, PCM s16le, 8000 Hz, mono or stereo (caller left,
 * the other side right), 44-byte header. Content is synthetic but not silent, so a
 * recording pipeline (ffprobe, transcode, per-channel levels) can be tested end to end.
 */
export function renderWav(t: RecordingTimeline): Buffer {
  const frames = Math.round((t.durationMs * RATE) / 1000)
  const channels = t.stereo ? 2 : 1
  const data = Buffer.alloc(frames * channels * 2)
  const inSpan = (spans: Span[], ms: number) => spans.some(([a, b]) => ms >= a && ms < b)
  let seed = 12345
  const noise = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return (seed / 0x7fffffff - 0.5) * 2
  }
  for (let i = 0; i < frames; i++) {
    const ms = (i * 1000) / RATE
    const s = i / RATE
    let left = 0
    let right = 0
    if (inSpan(t.callerTalks, ms)) left = 8000 * Math.sin(2 * Math.PI * 440 * s) + 300 * noise()
    if (inSpan(t.bridged, ms)) right = 7000 * Math.sin(2 * Math.PI * 660 * s) + 600 * noise()
    else if (inSpan(t.prompts, ms)) right = 3000 * Math.sin(2 * Math.PI * 880 * s)
    if (channels === 2) {
      data.writeInt16LE(clamp(left), i * 4)
      data.writeInt16LE(clamp(right), i * 4 + 2)
    } else {
      data.writeInt16LE(clamp((left + right) / 2), i * 2)
    }
  }
  return Buffer.concat([wavHeader(data.length, channels), data])
}

export function wavHeader(dataBytes: number, channels: number): Buffer {
  const h = Buffer.alloc(44)
  h.write('RIFF', 0)
  h.writeUInt32LE(36 + dataBytes, 4)
  h.write('WAVE', 8)
  h.write('fmt ', 12)
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20) // PCM
  h.writeUInt16LE(channels, 22)
  h.writeUInt32LE(RATE, 24)
  h.writeUInt32LE(RATE * channels * 2, 28)
  h.writeUInt16LE(channels * 2, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36)
  h.writeUInt32LE(dataBytes, 40)
  return h
}

export async function writeWav(path: string, t: RecordingTimeline): Promise<number> {
  const wav = renderWav(t)
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, wav)
  return wav.length
}

/** Parses the 44-byte header we (and FreeSWITCH) write; for tests. */
export function readWavInfo(buf: Buffer): { channels: number; sampleRate: number; bitsPerSample: number; dataBytes: number; durationMs: number } {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file')
  let off = 12
  let fmt: { channels: number; sampleRate: number; bitsPerSample: number } | undefined
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4)
    const size = buf.readUInt32LE(off + 4)
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), bitsPerSample: buf.readUInt16LE(off + 22) }
    if (id === 'data' && fmt) {
      const dataBytes = Math.min(size, buf.length - off - 8)
      return { ...fmt, dataBytes, durationMs: (dataBytes / (fmt.channels * (fmt.bitsPerSample / 8)) / fmt.sampleRate) * 1000 }
    }
    off += 8 + size + (size % 2)
  }
  throw new Error('WAV without fmt/data chunk')
}

function clamp(v: number): number {
  return Math.max(-32768, Math.min(32767, Math.round(v)))
}
