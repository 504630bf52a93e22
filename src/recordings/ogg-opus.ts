/**
 * What is in an Ogg/Opus file our own transcode just wrote, read in JS instead of an
 * ffprobe run: that run sat on the critical path of every recording (after ffmpeg exits,
 * before the upload), ~15–30 ms of process start-up on an idle machine, more under load.
 *
 * The check is stricter than ffprobe's (which reads the head and seeks to the end): every
 * page is walked, its CRC verified, one logical stream, consecutive page numbers, an
 * `OpusHead` in the first (BOS) page and the EOS flag on the last one — a file cut short
 * or damaged on disk fails. Anything this parser does not expect (chained or multiplexed
 * streams, other codecs) gives `undefined`: the caller then asks ffprobe, which decides.
 */
import { open } from 'node:fs/promises'
import type { ProbeResult } from './probe.ts'

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let r = i << 24
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1
    table[i] = r >>> 0
  }
  return table
})()

/** Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, initial 0) of the page at `start`, computed with its CRC field as zeros. */
function pageCrc(buf: Buffer, start: number, end: number): number {
  const stored = buf.readUInt32LE(start + 22)
  buf.writeUInt32LE(0, start + 22)
  let crc = 0
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]) & 0xff]) >>> 0
  buf.writeUInt32LE(stored, start + 22)
  return crc
}

/** Files above this size are left to ffprobe (an Opus call at 24 kbit/s is ~10 MB per hour). */
const MAX_BYTES = 256 * 1024 * 1024

/**
 * Facts of a single-stream Ogg/Opus file as `probeRecording` reports them (format 'ogg',
 * codec 'opus', 48 kHz), with the duration of the audio itself: last granule position
 * minus the pre-skip (RFC 7845 §4.1). ffprobe counts the pre-skip in (+6.5 ms); the 2018
 * static ffmpeg writes a too small pre-skip for 8 kHz input, so there the figure is still
 * ~5 ms longer than the audio. Undefined when the file is not such a file or is damaged.
 */
export async function probeOggOpus(path: string): Promise<ProbeResult | undefined> {
  const fh = await open(path, 'r')
  let buf: Buffer
  try {
    const { size } = await fh.stat()
    if (size < 27 || size > MAX_BYTES) return undefined
    buf = Buffer.allocUnsafe(size)
    let got = 0
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got)
      if (bytesRead === 0) return undefined
      got += bytesRead
    }
  } finally {
    await fh.close()
  }
  return parseOggOpus(buf)
}

/** The pure part of `probeOggOpus`, exported for tests. */
export function parseOggOpus(buf: Buffer): ProbeResult | undefined {
  let at = 0
  let serial: number | undefined
  let seq = -1
  let channels = 0
  let preSkip = 0
  let granule = -1n
  let eos = false
  while (at < buf.length) {
    if (eos) return undefined // bytes after the end of stream: another (chained) stream or garbage
    if (at + 27 > buf.length || buf.toString('latin1', at, at + 4) !== 'OggS' || buf[at + 4] !== 0) return undefined
    const flags = buf[at + 5]
    const pageGranule = buf.readBigInt64LE(at + 6)
    const pageSerial = buf.readUInt32LE(at + 14)
    const pageSeq = buf.readUInt32LE(at + 18)
    const crc = buf.readUInt32LE(at + 22)
    const nSegs = buf[at + 26]
    const bodyAt = at + 27 + nSegs
    if (bodyAt > buf.length) return undefined
    let bodyLen = 0
    for (let i = 0; i < nSegs; i++) bodyLen += buf[at + 27 + i]
    const end = bodyAt + bodyLen
    if (end > buf.length) return undefined
    if (pageCrc(buf, at, end) !== crc) return undefined
    const first = serial === undefined
    if (first) {
      // BOS page: exactly the OpusHead packet
      if (!(flags & 0x02) || bodyLen < 19 || buf.toString('latin1', bodyAt, bodyAt + 8) !== 'OpusHead') return undefined
      if (nSegs === 0 || buf[at + 27 + nSegs - 1] === 255) return undefined
      channels = buf[bodyAt + 9]
      preSkip = buf.readUInt16LE(bodyAt + 10)
      if (channels === 0) return undefined
      serial = pageSerial
    } else if (pageSerial !== serial || flags & 0x02) {
      return undefined // a second logical stream
    }
    if (pageSeq !== seq + 1) return undefined // a page is missing
    seq = pageSeq
    if (pageGranule !== -1n) {
      if (pageGranule < granule) return undefined
      granule = pageGranule
    }
    eos = (flags & 0x04) !== 0
    at = end
  }
  if (!eos || granule < BigInt(preSkip)) return undefined
  const samples = Number(granule - BigInt(preSkip))
  if (samples <= 0) return undefined
  return {
    format: 'ogg', codec: 'opus', sampleRate: 48000, channels,
    durationMs: Math.round((samples / 48) * 1000) / 1000, bytes: buf.length, header: 'n/a',
  }
}
