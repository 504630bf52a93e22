import t from 'tap'
import { mkdir, symlink, writeFile, chmod } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import {
  checkEncoders,
  configureFfmpeg,
  ffmpegPaths,
  FfmpegUnavailableError,
  resolveFfmpeg,
} from '../src/recordings/ffmpeg-paths.ts'
import { BrokenAudioError, probeRecording, probeWavHeader } from '../src/recordings/probe.ts'
import {
  writeCorruptWav,
  writeGarbage,
  writeHeaderOnlyWav,
  writeTruncatedWav,
  writeWav,
} from './support/audio-fixtures.ts'

const require = createRequire(import.meta.url)
const npmFfmpeg = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path
const npmFfprobe = (require('@ffprobe-installer/ffprobe') as { path: string }).path
const SAMPLE = '/work/shared/esl-traces/record_session-sip-stereo.wav'

t.test('resolveFfmpeg: env, then PATH, then the npm binaries', async (t) => {
  const dir = t.testdir({ bin: {}, empty: {}, custom: {} })
  const bin = join(dir, 'bin')
  await symlink(npmFfmpeg, join(bin, 'ffmpeg'))
  await symlink(npmFfprobe, join(bin, 'ffprobe'))

  const fromEnv = resolveFfmpeg({ FFMPEG_PATH: npmFfmpeg, FFPROBE_PATH: npmFfprobe, PATH: bin })
  t.match(fromEnv, { ffmpegPath: npmFfmpeg, ffprobePath: npmFfprobe, source: 'env', probeSource: 'env' })

  const fromPath = resolveFfmpeg({ PATH: `${join(dir, 'empty')}:${bin}` })
  t.match(fromPath, { ffmpegPath: join(bin, 'ffmpeg'), ffprobePath: join(bin, 'ffprobe'), source: 'path', probeSource: 'path' }, 'a system ffmpeg on PATH wins over npm')

  const fromNpm = resolveFfmpeg({ PATH: join(dir, 'empty') })
  t.match(fromNpm, { ffmpegPath: npmFfmpeg, ffprobePath: npmFfprobe, source: 'npm', probeSource: 'npm' })

  // FFMPEG_PATH alone: the ffprobe next to it is used
  const custom = join(dir, 'custom')
  await symlink(npmFfmpeg, join(custom, 'ffmpeg'))
  await symlink(npmFfprobe, join(custom, 'ffprobe'))
  t.match(resolveFfmpeg({ FFMPEG_PATH: join(custom, 'ffmpeg'), PATH: bin }), { ffprobePath: join(custom, 'ffprobe'), probeSource: 'env' })

  t.throws(() => resolveFfmpeg({ FFMPEG_PATH: join(dir, 'nope') }), FfmpegUnavailableError, 'bad FFMPEG_PATH is an error, not a silent fallback')
  const notExec = join(dir, 'not-exec')
  await writeFile(notExec, '#!/bin/sh\n')
  await chmod(notExec, 0o644)
  t.throws(() => resolveFfmpeg({ FFPROBE_PATH: notExec, PATH: bin }), { code: 'ffmpeg_unavailable' })
})

t.test('checkEncoders: the shipped ffmpeg has libopus and libmp3lame; a binary without them is refused clearly', async (t) => {
  const paths = configureFfmpeg(resolveFfmpeg({ PATH: '', FFMPEG_PATH: undefined }))
  t.equal(ffmpegPaths(), paths)
  const support = await checkEncoders(paths)
  t.match(support, { libopus: true, libmp3lame: true })
  t.type(support.version, 'string')

  // a real executable that lists no encoders at all
  const err = await checkEncoders({ ...paths, ffmpegPath: '/bin/true' }).catch((e: unknown) => e)
  t.type(err, FfmpegUnavailableError)
  t.match((err as Error).message, /lacks encoder\(s\) libopus, libmp3lame/)
  await t.rejects(checkEncoders({ ...paths, ffmpegPath: '/bin/false' }), { code: 'ffmpeg_unavailable' })
})

t.test('probe of the real FreeSWITCH record_session sample', async (t) => {
  const p = await probeRecording(SAMPLE)
  t.match(p, { format: 'wav', codec: 'pcm_s16le', sampleRate: 8000, channels: 2, durationMs: 940, bytes: 30124, header: 'ok' })
})

t.test('probe of generated fixtures', async (t) => {
  const dir = t.testdir()
  const stereo = await writeWav(join(dir, 'stereo.wav'), {
    channels: 2,
    segments: [[{ kind: 'tone', ms: 2500 }], [{ kind: 'silence', ms: 1000 }, { kind: 'noise', ms: 1500 }]],
  })
  t.match(await probeRecording(stereo.path), { format: 'wav', codec: 'pcm_s16le', sampleRate: 8000, channels: 2, durationMs: 2500, bytes: stereo.bytes, header: 'ok' })

  const mono = await writeWav(join(dir, 'mono16k.wav'), { sampleRate: 16000, channels: 1, segments: [[{ kind: 'tone', ms: 1234 }]] })
  t.match(await probeRecording(mono.path), { channels: 1, sampleRate: 16000, durationMs: 1234 })
})

t.test('a WAV whose header was never finalised (FreeSWITCH still writing / crashed) is usable', async (t) => {
  const dir = t.testdir()
  for (const size of [0, 0xffffffff, 1000]) {
    const f = await writeWav(join(dir, `unfinal-${size}.wav`), {
      channels: 2,
      headerDataSize: size,
      segments: [[{ kind: 'tone', ms: 3000 }], [{ kind: 'noise', ms: 3000 }]],
    })
    const p = await probeRecording(f.path)
    t.match(p, { header: 'unfinalised', durationMs: 3000, channels: 2 }, `data size ${size}: duration of the samples really present`)
  }
})

t.test('broken inputs are rejected with the right reason', async (t) => {
  const dir = t.testdir()
  await writeFile(join(dir, 'empty.wav'), '')
  await writeHeaderOnlyWav(join(dir, 'header-only.wav'))
  await writeCorruptWav(join(dir, 'corrupt.wav'))
  const trunc = await writeTruncatedWav(join(dir, 'truncated.wav'), { durationMs: 3000, keepFraction: 0.4 })
  await writeGarbage(join(dir, 'garbage.wav'))
  await writeGarbage(join(dir, 'garbage.bin'), 5000, 11)
  await writeFile(join(dir, 'text.wav'), 'this is not audio at all\n'.repeat(200))
  await writeFile(join(dir, 'cut-header.wav'), (await import('node:fs')).readFileSync(SAMPLE).subarray(0, 30))
  await mkdir(join(dir, 'a-directory.wav'))

  const cases: Array<[string, string]> = [
    ['missing.wav', 'missing'],
    ['empty.wav', 'empty'],
    ['header-only.wav', 'no_audio'],
    ['corrupt.wav', 'corrupt'],
    ['truncated.wav', 'truncated'],
    ['cut-header.wav', 'truncated'],
    ['garbage.wav', 'not_audio'],
    ['garbage.bin', 'not_audio'],
    ['text.wav', 'not_audio'],
    ['a-directory.wav', 'not_audio'],
  ]
  for (const [name, reason] of cases) {
    const err = await probeRecording(join(dir, name)).then(
      (r) => r,
      (e: unknown) => e,
    )
    t.type(err, BrokenAudioError, `${name} rejected`)
    t.match(err, { code: 'audio_broken', reason, details: { reason } }, `${name}: ${reason}`)
  }

  // the audio that survived a truncation can still be taken on purpose
  const kept = await probeRecording(join(dir, 'truncated.wav'), { allowTruncated: true })
  t.match(kept, { header: 'truncated', durationMs: Math.round(((trunc.actualBytes - 44) / 4 / 8000) * 1000) })
})

t.test('probeWavHeader: a PCM WAV known from its header says exactly what ffprobe-backed probeRecording says', async (t) => {
  const dir = t.testdir()
  const tone = (ms: number) => ({ kind: 'tone' as const, ms, freq: 440 })
  const files = [
    await writeWav(join(dir, 'stereo.wav'), { channels: 2, segments: [[tone(1500)], [tone(1500)]] }),
    await writeWav(join(dir, 'mono16k.wav'), { channels: 1, sampleRate: 16000, segments: [[tone(700)]] }),
    await writeWav(join(dir, 'unfinalised.wav'), { channels: 2, segments: [[tone(1000)], [tone(1000)]], headerDataSize: 0 }),
    await writeWav(join(dir, 'stale.wav'), { channels: 2, segments: [[tone(2000)], [tone(2000)]], headerDataSize: 8000 }),
  ]
  await writeTruncatedWav(join(dir, 'truncated.wav'))
  for (const path of [...files.map((f) => f.path), join(dir, 'truncated.wav')]) {
    const quick = await probeWavHeader(path, { allowTruncated: true })
    const full = await probeRecording(path, { allowTruncated: true })
    t.same(quick, full, `${path.split('/').pop()}: header facts == probe facts`)
  }
  await writeGarbage(join(dir, 'garbage.bin'))
  t.equal(await probeWavHeader(join(dir, 'garbage.bin')), undefined, 'not a WAV: left to ffprobe')
  // a header with odd facts is not trusted alone (the pipeline then asks ffprobe)
  const odd = readFileSync(files[0].path)
  odd.writeUInt32LE(12345, 28) // byte rate ≠ sample rate × block align
  await writeFile(join(dir, 'odd-byterate.wav'), odd)
  t.equal(await probeWavHeader(join(dir, 'odd-byterate.wav')), undefined, 'byte rate not matching: left to ffprobe')
  const many = await writeWav(join(dir, 'nine.wav'), { channels: 1, segments: [[tone(100)]] })
  const nine = readFileSync(many.path)
  nine.writeUInt16LE(9, 22); nine.writeUInt32LE(8000 * 18, 28); nine.writeUInt16LE(18, 32)
  await writeFile(join(dir, 'nine.wav'), nine)
  t.equal(await probeWavHeader(join(dir, 'nine.wav')), undefined, '9 channels: left to ffprobe')
  await writeHeaderOnlyWav(join(dir, 'empty-data.wav'))
  await t.rejects(probeWavHeader(join(dir, 'empty-data.wav')), { code: 'audio_broken', reason: 'no_audio' })
  await writeFile(join(dir, 'zero.wav'), Buffer.alloc(0))
  await t.rejects(probeWavHeader(join(dir, 'zero.wav')), { code: 'audio_broken', reason: 'empty' })
  await t.rejects(probeWavHeader(join(dir, 'truncated.wav')), { code: 'audio_broken', reason: 'truncated' }, 'truncated without allowTruncated: rejected like probeRecording')
  await t.rejects(probeWavHeader(join(dir, 'missing.wav')), { code: 'audio_broken', reason: 'missing' })
})
