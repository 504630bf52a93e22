import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/** A time span in ms, relative to the start of the recording. */
export type Span = [number, number]

const RATE = 8000

// One second of each voice, computed once: the simulator renders by table lookup, so
// writing audio costs little real time (at timeScale 0.01 every real ms is 100 script ms).
const table = (f: (n: number) => number) => Int16Array.from({ length: RATE }, (_, n) => clamp(f(n)))
const CALLER = table((n) => 8000 * Math.sin((2 * Math.PI * 440 * n) / RATE) + 300 * hashNoise(n))
const AGENT = table((n) => 7000 * Math.sin((2 * Math.PI * 660 * n) / RATE) + 600 * hashNoise(n + 7919))
const PROMPT = table((n) => 3000 * Math.sin((2 * Math.PI * 880 * n) / RATE))

/**
 * What a recording's channel carries at a moment; null = silence (nothing, or masked).
 * The caller 440 Hz with a little noise, the bridged party (agent) 660 Hz with noise, a
 * prompt a quieter 880 Hz: synthetic but not silent, so per-channel levels, talk/silence
 * analysis and transcoding can be tested end to end.
 */
export type Voice = 'caller' | 'agent' | 'prompt' | null
const VOICES = { caller: CALLER, agent: AGENT, prompt: PROMPT }

/** Deterministic noise in [-1, 1) from the frame index (no state: files can be written piece by piece). */
function hashNoise(frame: number): number {
  let x = Math.imul(frame ^ 0x9e3779b9, 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  x ^= x >>> 16
  return (x >>> 0) / 0x80000000 - 1
}

/**
 * A WAV file written the way FreeSWITCH writes a recording: created at start with a
 * header whose sizes are still 0, PCM appended while the call goes on (the file grows),
 * the header's sizes filled in only when the file is closed. A recording that ends
 * shorter than RECORD_MIN_SEC is deleted instead (discard()).
 */
export class WavStreamWriter {
  readonly channels: 1 | 2
  /** Frames (samples per channel) written so far. */
  frames = 0
  private fd: number | undefined

  constructor(
    readonly path: string,
    stereo: boolean,
  ) {
    this.channels = stereo ? 2 : 1
    mkdirSync(dirname(path), { recursive: true })
    this.fd = openSync(path, 'w')
    writeSync(this.fd, wavHeader(0, this.channels))
  }

  get isOpen(): boolean {
    return this.fd !== undefined
  }

  /**
   * Append frames up to `toFrame` (exclusive): `left`/`right` voice (null = silence; mono
   * gets their mean). `callerTalks` (frame ranges, file-relative) gates the caller's
   * voice; undefined = the caller talks throughout. Table lookups in one tight loop: at
   * timeScale 0.01 every real millisecond spent here is 100 ms of script time.
   */
  append(toFrame: number, left: Voice, right: Voice, callerTalks?: Span[]): void {
    if (this.fd === undefined) return
    const first = this.frames
    const n = Math.floor(toFrame) - first
    if (n <= 0) return
    const ch = this.channels
    let gate: Uint8Array | undefined
    if (callerTalks && (left === 'caller' || right === 'caller')) {
      gate = new Uint8Array(n)
      for (const [a, b] of callerTalks) gate.fill(1, Math.max(0, Math.ceil(a) - first), Math.max(0, Math.min(n, Math.ceil(b) - first)))
    }
    const lt = left ? VOICES[left] : undefined
    const rt = right ? VOICES[right] : undefined
    const lGate = left === 'caller' ? gate : undefined
    const rGate = right === 'caller' ? gate : undefined
    const pcm = new Int16Array(n * ch) // platform byte order: little-endian on every machine Node runs on here
    for (let k = 0, idx = first % RATE; k < n; k++, idx = idx + 1 === RATE ? 0 : idx + 1) {
      const l = lt && (!lGate || lGate[k]) ? lt[idx] : 0
      const r = rt && (!rGate || rGate[k]) ? rt[idx] : 0
      if (ch === 2) {
        pcm[2 * k] = l
        pcm[2 * k + 1] = r
      } else pcm[k] = (l + r) >> 1
    }
    const buf = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)
    writeSync(this.fd, buf, 0, buf.length, 44 + this.frames * ch * 2)
    this.frames += n
  }

  /** Finalise the header and close; returns the file size. */
  close(): number {
    const dataBytes = this.frames * this.channels * 2
    if (this.fd !== undefined) {
      writeSync(this.fd, wavHeader(dataBytes, this.channels), 0, 44, 0)
      closeSync(this.fd)
      this.fd = undefined
    }
    return 44 + dataBytes
  }

  /** Close and delete (FreeSWITCH's RECORD_MIN_SEC). */
  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
    try {
      unlinkSync(this.path)
    } catch {
      // already gone
    }
  }
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
