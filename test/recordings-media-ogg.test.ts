import t from 'tap'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseOggOpus, probeOggOpus } from '../src/recordings/ogg-opus.ts'
import { probeRecording } from '../src/recordings/probe.ts'
import { transcode } from '../src/recordings/transcode.ts'
import { speechLikeSegments, writeGarbage, writeWav } from './support/audio-fixtures.ts'

// The pipeline reads its own Opus output in JS instead of starting ffprobe (critical path of
// every recording): the facts must agree with ffprobe's, and any damage must be noticed.

t.test('Ogg/Opus written by ffmpeg: the same facts as ffprobe, duration without the pre-skip', async (t) => {
  const dir = t.testdir()
  for (const [channels, ms] of [[2, 6000], [1, 2500], [2, 61_000]] as const) {
    const src = await writeWav(join(dir, `src-${channels}-${ms}.wav`), {
      channels, segments: Array.from({ length: channels }, (_, i) => speechLikeSegments(ms, 7 + i)),
    })
    const out = join(dir, `out-${channels}-${ms}.opus`)
    await transcode(src.path, out, { format: 'opus', channels })
    const js = await probeOggOpus(out)
    const ff = await probeRecording(out)
    t.ok(js, `${channels} ch ${ms} ms: parsed`)
    t.match(js, { format: ff.format, codec: ff.codec, sampleRate: ff.sampleRate, channels: ff.channels, bytes: ff.bytes, header: 'n/a' }, 'container, codec, rate, channels, size as ffprobe')
    t.ok(js!.durationMs <= ff.durationMs && ff.durationMs - js!.durationMs <= 10, `duration ${js!.durationMs} = ffprobe's ${ff.durationMs} less the pre-skip`)
    t.ok(Math.abs(js!.durationMs - src.durationMs) <= 10, `duration ${js!.durationMs} ≈ source ${src.durationMs}`)
  }
})

t.test('damaged, cut, padded or foreign files are not taken (ffprobe decides)', async (t) => {
  const dir = t.testdir()
  const src = await writeWav(join(dir, 'src.wav'), { channels: 2, segments: [speechLikeSegments(4000, 1), speechLikeSegments(4000, 2)] })
  const out = join(dir, 'good.opus')
  await transcode(src.path, out, { format: 'opus' })
  const good = readFileSync(out)
  t.ok(parseOggOpus(good), 'the intact file parses')

  const flipped = Buffer.from(good)
  flipped[Math.floor(good.length / 2)] ^= 0x10
  t.equal(parseOggOpus(flipped), undefined, 'one flipped bit in the middle: CRC mismatch')
  t.equal(parseOggOpus(good.subarray(0, good.length - 100)), undefined, 'cut inside the last page')
  // cut on a page boundary: every page intact, but the end-of-stream page is missing
  const lastPage = good.lastIndexOf(Buffer.from('OggS'))
  t.equal(parseOggOpus(good.subarray(0, lastPage)), undefined, 'cut before the last (EOS) page')
  t.equal(parseOggOpus(Buffer.concat([good, Buffer.from('trailing garbage')])), undefined, 'bytes after the end of stream')
  t.equal(parseOggOpus(Buffer.concat([good, good])), undefined, 'a chained second stream')
  const secondPage = good.indexOf(Buffer.from('OggS'), 4)
  const thirdPage = good.indexOf(Buffer.from('OggS'), secondPage + 4)
  t.equal(parseOggOpus(Buffer.concat([good.subarray(0, secondPage), good.subarray(thirdPage)])), undefined, 'a page missing in the middle')
  t.equal(parseOggOpus(Buffer.alloc(0)), undefined, 'empty')

  await writeGarbage(join(dir, 'garbage.opus'), 5000)
  t.equal(await probeOggOpus(join(dir, 'garbage.opus')), undefined, 'garbage')
  t.equal(await probeOggOpus(src.path), undefined, 'a WAV')
  const mp3 = join(dir, 'x.mp3')
  await transcode(src.path, mp3, { format: 'mp3' })
  t.equal(await probeOggOpus(mp3), undefined, 'an MP3')
  await writeFile(join(dir, 'tiny.opus'), 'OggS')
  t.equal(await probeOggOpus(join(dir, 'tiny.opus')), undefined, 'a few bytes')
})
