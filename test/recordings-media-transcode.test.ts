import t from 'tap'
import { createHash } from 'node:crypto'
import { createReadStream, readFileSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { createHashingStream, sha256File } from '../src/recordings/hash.ts'
import { BrokenAudioError, probeRecording } from '../src/recordings/probe.ts'
import { ffmpegOutputArgs, opusSampleRate, transcode, TranscodeError } from '../src/recordings/transcode.ts'
import { speechLikeSegments, writeGarbage, writeWav } from './support/audio-fixtures.ts'

const SAMPLE = '/work/shared/esl-traces/record_session-sip-stereo.wav'

/** ffmpeg processes whose command line mentions `needle` (Linux /proc). */
async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8')
      if (cmd.includes(needle) && cmd.includes('ffmpeg')) pids.push(Number(pid))
    } catch {
      // process ended while we looked
    }
  }
  return pids
}

t.test('transcode to opus, mp3 and wav: outputs probe as the right codec, channels and duration', async (t) => {
  const dir = t.testdir()
  const src = await writeWav(join(dir, 'source.wav'), {
    channels: 2,
    segments: [speechLikeSegments(8000, 1), speechLikeSegments(8000, 2)],
  })
  const expected = {
    opus: { codec: 'opus', format: 'ogg' },
    mp3: { codec: 'mp3', format: 'mp3' },
    wav: { codec: 'pcm_s16le', format: 'wav' },
  } as const
  for (const format of ['opus', 'mp3', 'wav'] as const) {
    const out = join(dir, `call.${format}`)
    const r = await transcode(src.path, out, { format })
    const p = await probeRecording(out)
    t.equal(r.codec, expected[format].codec, `${format}: codec`)
    t.equal(p.format, expected[format].format, `${format}: container`)
    t.equal(p.channels, 2, `${format}: stereo kept (caller and agent apart)`)
    t.ok(Math.abs(p.durationMs - src.durationMs) <= 100, `${format}: duration ${p.durationMs} ≈ ${src.durationMs}`)
    t.equal(r.bytes, p.bytes, `${format}: result reports the output size`)
    // our own Opus output is read in JS (ogg-opus.ts): its duration leaves out the encoder's
    // pre-skip (~6.5 ms) that ffprobe counts in
    if (format === 'opus') t.ok(Math.abs(r.durationMs - p.durationMs) <= 10, `opus: JS duration ${r.durationMs} ≈ ffprobe's ${p.durationMs}`)
    else t.equal(r.durationMs, p.durationMs, `${format}: duration as ffprobe says`)
  }
  // the WAV copy keeps the samples bit-exact
  t.same(readFileSync(join(dir, 'call.wav')).subarray(44), readFileSync(src.path).subarray(44), 'wav copy is bit-exact')
  t.same((await readdir(dir)).filter((f) => f.includes('.part-')), [], 'no partial files left')
})

t.test('the real FreeSWITCH sample transcodes; mono downmix on request', async (t) => {
  const dir = t.testdir()
  const r = await transcode(SAMPLE, join(dir, 'sample.opus'), { format: 'opus', channels: 1, bitrateKbps: 16 })
  t.match(r, { codec: 'opus', channels: 1 })
  t.ok(Math.abs(r.durationMs - 940) <= 100, `duration ${r.durationMs}`)
  const mp3 = await transcode(SAMPLE, join(dir, 'sample.mp3'), { format: 'mp3', compressionLevel: 10 })
  t.match(mp3, { codec: 'mp3', channels: 2, sampleRate: 8000 })
})

t.test('opus at 24 kbit/s is ≥ 10× smaller than the 8 kHz stereo WAV of a 60 s speech-like call', async (t) => {
  const dir = t.testdir()
  const src = await writeWav(join(dir, 'call60.wav'), {
    channels: 2,
    seed: 5,
    segments: [speechLikeSegments(60_000, 11), speechLikeSegments(60_000, 12)],
  })
  const r = await transcode(src.path, join(dir, 'call60.opus'), { format: 'opus' })
  const ratio = src.bytes / r.bytes
  t.ok(ratio >= 10, `WAV/Opus size ratio ${ratio.toFixed(1)} ≥ 10`)
  t.ok(Math.abs(r.durationMs - 60_000) <= 100, `duration ${r.durationMs}`)
})

t.test('an unfinalised WAV header does not lose audio', async (t) => {
  const dir = t.testdir()
  // a stale data size (1 s) over a 3 s file: plain ffmpeg would stop after 1 s
  const src = await writeWav(join(dir, 'stale.wav'), {
    channels: 2,
    headerDataSize: 32000,
    segments: [[{ kind: 'tone', ms: 3000 }], [{ kind: 'noise', ms: 3000 }]],
  })
  const opus = await transcode(src.path, join(dir, 'stale.opus'), { format: 'opus' })
  t.ok(Math.abs(opus.durationMs - 3000) <= 100, `opus duration ${opus.durationMs}`)
  const wav = await transcode(src.path, join(dir, 'fixed.wav'), { format: 'wav' })
  t.match(await probeRecording(wav.output), { header: 'ok', durationMs: 3000 }, 'the WAV copy has a repaired header')
})

t.test('sample rates libopus cannot take are resampled', async (t) => {
  t.equal(opusSampleRate(8000), 8000)
  t.equal(opusSampleRate(11025), 12000)
  t.equal(opusSampleRate(44100), 48000)
  const dir = t.testdir()
  const src = await writeWav(join(dir, 'cd.wav'), { sampleRate: 22050, channels: 1, segments: [[{ kind: 'tone', ms: 1000 }]] })
  const r = await transcode(src.path, join(dir, 'cd.opus'), { format: 'opus' })
  t.match(r, { codec: 'opus', channels: 1 })
  t.ok(ffmpegOutputArgs({ format: 'opus', sampleRate: 24000 }).join(' ').includes('-ar 24000'))
})

t.test('failures: broken input, ffmpeg error with stderr tail, timeout kills ffmpeg, abort', async (t) => {
  const dir = t.testdir()
  await writeGarbage(join(dir, 'garbage.wav'))
  await t.rejects(transcode(join(dir, 'garbage.wav'), join(dir, 'g.opus'), { format: 'opus' }), BrokenAudioError)

  const src = await writeWav(join(dir, 'long.wav'), { channels: 2, segments: [speechLikeSegments(60_000, 3), speechLikeSegments(60_000, 4)] })
  const bad = await transcode(src.path, join(dir, 'bad.opus'), { format: 'opus', bitrateKbps: 99_999 }).catch((e: unknown) => e)
  t.type(bad, TranscodeError)
  t.match(bad, { code: 'transcode_failed', reason: 'ffmpeg_failed' })
  t.match((bad as TranscodeError).stderrTail, /bit rate .* is unsupported/, 'stderr tail says why')

  const out = join(dir, 'slow.opus')
  const started = Date.now()
  const timedOut = await transcode(src.path, out, { format: 'opus', compressionLevel: 10, timeoutMs: 150 }).catch((e: unknown) => e)
  t.match(timedOut, { code: 'transcode_failed', reason: 'timeout', httpStatus: 504 })
  t.ok(Date.now() - started < 2000, 'rejected promptly')
  await new Promise((r) => setTimeout(r, 200))
  t.same(await processesMentioning(out), [], 'ffmpeg was killed')
  t.same((await readdir(dir)).filter((f) => f.startsWith('slow')), [], 'no output and no partial file')

  const ac = new AbortController()
  const p = transcode(src.path, join(dir, 'aborted.opus'), { format: 'opus', signal: ac.signal })
  setTimeout(() => ac.abort(), 100)
  await t.rejects(p, { code: 'transcode_failed', reason: 'aborted' })

  // aborted while the input is still being probed: ffmpeg must not run on regardless
  const ac2 = new AbortController()
  const early = join(dir, 'early.opus')
  const p2 = transcode(src.path, early, { format: 'opus', signal: ac2.signal })
  ac2.abort()
  await t.rejects(p2, { code: 'transcode_failed', reason: 'aborted' })
  await new Promise((r) => setTimeout(r, 200))
  t.same(await processesMentioning(early), [], 'no ffmpeg left running')
  t.same((await readdir(dir)).filter((f) => f.startsWith('early') || f.startsWith('aborted')), [], 'no partial files')
})

t.test('sha256File and the hashing pass-through agree with a one-shot hash', async (t) => {
  const dir = t.testdir()
  const f = join(dir, 'blob.bin')
  await writeGarbage(f, 3 * 1024 * 1024 + 17, 9)
  const expected = createHash('sha256').update(readFileSync(f)).digest('hex')
  t.equal(await sha256File(f), expected)

  const h = createHashingStream()
  let copied = 0
  await pipeline(
    createReadStream(f, { highWaterMark: 64 * 1024 }),
    h,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        copied += chunk.length
        cb()
      },
    }),
  )
  t.equal(h.digestHex(), expected)
  t.equal(await h.digest, expected)
  t.equal(h.bytes, 3 * 1024 * 1024 + 17)
  t.equal(copied, h.bytes, 'bytes pass through unchanged')

  const early = createHashingStream()
  t.throws(() => early.digestHex())
  early.destroy(new Error('upload failed'))
  await t.rejects(early.digest, /upload failed/)

  await writeFile(join(dir, 'empty'), '')
  t.equal(await sha256File(join(dir, 'empty')), createHash('sha256').digest('hex'))
  await t.rejects(sha256File(join(dir, 'missing')), { code: 'ENOENT' })
})
