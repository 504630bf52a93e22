import t, { type Test } from 'tap'
import { join } from 'node:path'
import { analyseEnergy, analysePcmFile, analyseRecording, canAnalysePcmFile, EnergyMeter, type AnalyseOptions, type Analysis } from '../src/recordings/analyse.ts'
import { probeRecording, probeWavHeader } from '../src/recordings/probe.ts'
import { transcode } from '../src/recordings/transcode.ts'
import { renderPcm, writeGarbage, writeSpeechLikeCall, writeWav, type Segment } from './support/audio-fixtures.ts'

const SAMPLE = '/work/shared/esl-traces/record_session-sip-stereo.wav'
const TOL = 150

function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= TOL, `${what}: ${actual} ≈ ${expected} (±${TOL} ms)`)
}

function spansNear(t: Test, actual: Array<{ startMs: number; endMs: number }>, expected: Array<[number, number]>, what: string): void {
  t.equal(actual.length, expected.length, `${what}: ${expected.length} span(s), got ${JSON.stringify(actual)}`)
  expected.forEach(([s, e], i) => {
    near(t, actual[i]?.startMs ?? NaN, s, `${what}[${i}].start`)
    near(t, actual[i]?.endMs ?? NaN, e, `${what}[${i}].end`)
  })
}

/**
 * The analysis both ways: decoded by ffmpeg (any input) and read straight from the WAV (what
 * the pipeline does for 8 kHz PCM). Same samples, so the very same result is required.
 */
async function analyseBothWays(t: Test, path: string, opts: AnalyseOptions = {}): Promise<Analysis> {
  const viaFfmpeg = await analyseRecording(path, opts)
  const info = (await probeWavHeader(path)) ?? (await probeRecording(path))
  t.ok(canAnalysePcmFile(info), 'an 8 kHz PCM WAV is read directly')
  const direct = await analysePcmFile(path, info, opts)
  t.same(direct, viaFfmpeg, 'read from the WAV == decoded by ffmpeg')
  return direct
}

const tone = (ms: number, freq = 440): Segment => ({ kind: 'tone', ms, freq })
const noise = (ms: number, amplitude?: number): Segment => ({ kind: 'noise', ms, amplitude })
const silence = (ms: number): Segment => ({ kind: 'silence', ms })

t.test('left talks 0–3 s, right 2–5 s: overtalk ~1 s, joint silence at the end', async (t) => {
  const dir = t.testdir()
  const f = await writeWav(join(dir, 'overtalk.wav'), {
    channels: 2,
    segments: [[noise(3000), silence(4000)], [silence(2000), noise(3000), silence(2000)]],
  })
  const a = await analyseBothWays(t, f.path)
  near(t, a.durationMs, 7000, 'duration')
  t.equal(a.channels.length, 2)
  near(t, a.channels[0].talkMs, 3000, 'left talk')
  near(t, a.channels[0].silenceMs, 4000, 'left silence')
  near(t, a.channels[1].talkMs, 3000, 'right talk')
  near(t, a.channels[1].silenceMs, 4000, 'right silence')
  near(t, a.overtalkMs, 1000, 'overtalk')
  spansNear(t, a.channels[0].talk, [[0, 3000]], 'left talk spans')
  spansNear(t, a.channels[1].talk, [[2000, 5000]], 'right talk spans')
  spansNear(t, a.silences, [[5000, 7000]], 'joint silences')
})

t.test('a conversation with pauses, short gaps inside talk, quiet talk and a click', async (t) => {
  const dir = t.testdir()
  // left: talk 0–2 s with a 150 ms gap inside (still talk), pause, talk 4–6 s (quiet),
  //       a 20 ms click at 8 s (not talk), silence to 12 s
  // right: silence 0–6.5 s, tone 6.5–9 s, silence 9–10 s, tone 10–12 s
  const f = await writeWav(join(dir, 'conv.wav'), {
    channels: 2,
    segments: [
      [noise(900), silence(150), noise(950), silence(2000), noise(2000, 0.05), silence(2000), noise(20, 0.8), silence(3980)],
      [silence(6500), tone(2500, 300), silence(1000), tone(2000, 600)],
    ],
  })
  const a = await analyseBothWays(t, f.path)
  near(t, a.durationMs, 12_000, 'duration')
  spansNear(t, a.channels[0].talk, [[0, 2000], [4000, 6000]], 'left talk spans (short gap bridged, click dropped)')
  near(t, a.channels[0].talkMs, 4000, 'left talk')
  spansNear(t, a.channels[1].talk, [[6500, 9000], [10_000, 12_000]], 'right talk spans')
  near(t, a.channels[1].talkMs, 4500, 'right talk')
  near(t, a.overtalkMs, 0, 'no overtalk')
  // both silent: 2–4 s (2 s), 6–6.5 s (too short), 9–10 s (1 s)
  spansNear(t, a.silences, [[2000, 4000], [9000, 10_000]], 'joint silences ≥ 1 s')
  const fine = await analyseBothWays(t, f.path, { minJointSilenceMs: 400 })
  spansNear(t, fine.silences, [[2000, 4000], [6000, 6500], [9000, 10_000]], 'joint silences ≥ 400 ms')
  const deaf = await analyseBothWays(t, f.path, { thresholdDb: -10 })
  t.ok(deaf.channels[0].talkMs < 2500, 'a higher threshold ignores the quiet talk')
})

t.test('mono input: one channel, overtalk 0', async (t) => {
  const dir = t.testdir()
  const f = await writeWav(join(dir, 'mono.wav'), { channels: 1, segments: [[silence(1000), tone(2000), silence(1500)]] })
  const a = await analyseBothWays(t, f.path)
  t.equal(a.channels.length, 1)
  near(t, a.channels[0].talkMs, 2000, 'talk')
  near(t, a.channels[0].silenceMs, 2500, 'silence')
  t.equal(a.overtalkMs, 0)
  spansNear(t, a.silences, [[0, 1000], [3000, 4500]], 'silences')
})

t.test('analysis of a transcoded (opus) file agrees with the source', async (t) => {
  const dir = t.testdir()
  const f = await writeWav(join(dir, 'src.wav'), {
    channels: 2,
    segments: [[noise(3000), silence(4000)], [silence(2000), noise(3000), silence(2000)]],
  })
  const opus = await transcode(f.path, join(dir, 'src.opus'), { format: 'opus' })
  const a = await analyseRecording(opus.output)
  near(t, a.channels[0].talkMs, 3000, 'left talk after opus')
  near(t, a.channels[1].talkMs, 3000, 'right talk after opus')
  near(t, a.overtalkMs, 1000, 'overtalk after opus')
})

t.test('the real FreeSWITCH sample is digital silence', async (t) => {
  const a = await analyseBothWays(t, SAMPLE, { minJointSilenceMs: 500 })
  t.match(a, { durationMs: 940, overtalkMs: 0 })
  t.same(a.channels.map((c) => c.talkMs), [0, 0])
  t.same(a.silences, [{ startMs: 0, endMs: 940 }])
})

t.test('read straight from the WAV: unfinalised headers, a minute of speech-like talk, and what it refuses', async (t) => {
  const dir = t.testdir()
  // FreeSWITCH killed mid-call: data size 0 / stale, samples follow; the known spans must come out
  for (const headerDataSize of [0, 16_000]) {
    const f = await writeWav(join(dir, `unfinal-${headerDataSize}.wav`), {
      channels: 2, headerDataSize,
      segments: [[noise(3000), silence(4000)], [silence(2000), noise(3000), silence(2000)]],
    })
    const info = (await probeWavHeader(f.path))!
    t.equal(info.header, 'unfinalised')
    const a = await analysePcmFile(f.path, info)
    t.same(a, await analyseRecording(f.path, { input: info }), `data size ${headerDataSize}: same as through ffmpeg`)
    near(t, a.durationMs, 7000, 'duration of the samples present')
    near(t, a.channels[0].talkMs, 3000, 'left talk')
    near(t, a.channels[1].talkMs, 3000, 'right talk')
    near(t, a.overtalkMs, 1000, 'overtalk')
  }
  // more than one 1 MB read: chunk joins must not show
  const long = await writeSpeechLikeCall(join(dir, 'long.wav'), { durationMs: 70_000, seed: 5 })
  t.same(await analysePcmFile(long.path, (await probeWavHeader(long.path))!), await analyseRecording(long.path), '70 s speech-like call: identical')
  // 16 kHz (wideband) needs ffmpeg's resampling to the analysis rate: refused here
  const wide = await writeWav(join(dir, 'wide.wav'), { channels: 1, sampleRate: 16000, segments: [[tone(500)]] })
  const wideInfo = (await probeWavHeader(wide.path))!
  t.notOk(canAnalysePcmFile(wideInfo), '16 kHz goes through ffmpeg')
  await t.rejects(analysePcmFile(wide.path, wideInfo), { code: 'analysis_failed' })
})

t.test('EnergyMeter copes with chunks that split samples and frames anywhere', async (t) => {
  const { pcm } = renderPcm({ channels: 2, segments: [[tone(500), silence(500)], [silence(500), noise(500)]] })
  const whole = new EnergyMeter(2, 160)
  whole.push(pcm)
  whole.end()
  const split = new EnergyMeter(2, 160)
  for (let i = 0; i < pcm.length; ) {
    const n = 1 + ((i * 7919) % 1001) // odd and even sizes
    split.push(pcm.subarray(i, i + n))
    i += n
  }
  split.end()
  t.equal(split.frames, 8000)
  t.same(split.windowSizes, whole.windowSizes)
  t.same(split.energy, whole.energy)
  const a: Analysis = analyseEnergy(split.energy, split.windowSizes, 8000)
  near(t, a.durationMs, 1000, 'duration')
  t.equal(a.overtalkMs, 0)
})

t.test('undecodable input is rejected', async (t) => {
  const dir = t.testdir()
  await writeGarbage(join(dir, 'x.wav'))
  await t.rejects(analyseRecording(join(dir, 'x.wav')), { code: 'audio_broken', reason: 'not_audio' })
})
