// CallChannel against the wire simulator: one scripted call per method.
import t from 'tap'
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readWavInfo } from './support/esl-wav.ts'
import { startServerWithSimulator } from './support/esl-harness.ts'
import type { HangupCompleteInfo } from '../src/esl/call-channel.ts'
import { DEFAULT_DROPPED_EVENTS } from '../src/esl/defaults.ts'

const dir = mkdtempSync(join(tmpdir(), 'sb-esl-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const setup = startServerWithSimulator

t.test('channel data: caller, DID, SIP headers, extra vars', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({ source: 'sofia', callerIdNumber: '79161234567', destination: '74957778899', sipHeaders: { 'X-Campaign': 'spring sale' }, vars: { tracking: 'yes' } })
  const ch = await h.nextChannel()
  t.equal(ch.uuid, call.uuid)
  t.equal(ch.channelData.callerIdNumber, '79161234567')
  t.equal(ch.channelData.destination, '74957778899')
  t.equal(ch.channelData.sipHeaders['X-Campaign'], 'spring sale')
  t.equal(ch.channelData.sipVars.sip_to_user, '74957778899')
  t.equal(ch.channelData.vars.tracking, 'yes')
  t.equal(ch.state, 'ringing')
  await ch.hangup('CALL_REJECTED')
  const r = await call.done
  t.equal(r.hangupCause, 'CALL_REJECTED')
  // The handshake: myevents, the extra types Switchboard reads, the ones it never reads dropped, linger (defaults.ts).
  t.same(r.commands.slice(0, 5).map((c) => c.line), [
    'connect',
    'myevents',
    'event plain CHANNEL_HOLD CHANNEL_UNHOLD BACKGROUND_JOB CUSTOM conference::maintenance',
    `nixevent ${DEFAULT_DROPPED_EVENTS.join(' ')}`,
    'linger',
  ])
  t.notOk(r.sent.includes('CHANNEL_STATE') || r.sent.includes('CHANNEL_UNPARK') || r.sent.includes('CHANNEL_EXECUTE'), 'dropped types are not sent')
  t.ok(r.sent.includes('CHANNEL_HANGUP_COMPLETE'))
  t.same(r.sent.slice(-2), ['notice:linger', 'notice:disconnect'])
})

t.test('answer, playback, tone, say, set, export, execute in order with event-lock', async (t) => {
  const { h, sim } = await setup(t, { chunk: { min: 1, max: 97 } })
  const call = sim.call({})
  const ch = await h.nextChannel()
  // CHANNEL_EXECUTE is dropped by default; ask for it to see the order below.
  await ch.subscribe(['CHANNEL_EXECUTE'])
  const answered: number[] = []
  ch.on('answer', () => answered.push(1))
  // Issued without awaiting: the channel pipelines, FreeSWITCH (event-lock) runs them in order.
  const results = await Promise.all([
    ch.answer(),
    ch.playback('ivr/welcome.wav'),
    ch.tone('%(100,0,440)'),
    ch.say('42'),
    ch.set('agent', 'a1'),
    ch.export('campaign', 'x'),
    ch.execute('sleep', '5'),
  ])
  t.same(answered, [1])
  t.equal(results[1], 'FILE PLAYED')
  t.equal(results[2], 'FILE PLAYED')
  t.equal(call.vars.get('agent'), 'a1')
  t.equal(call.vars.get('campaign'), 'x')
  const sendmsgs = call.commands.filter((c) => c.line === 'sendmsg')
  t.same(sendmsgs.map((c) => c.headers['execute-app-name']), ['answer', 'playback', 'playback', 'say', 'set', 'export', 'sleep'])
  t.ok(sendmsgs.every((c) => c.headers['event-lock'] === 'true' && c.headers['event-uuid']))
  // Reply before CHANNEL_EXECUTE, each COMPLETE before the next EXECUTE.
  const seq = call.sent.filter((s) => s === 'reply:+OK' || s.startsWith('CHANNEL_EXECUTE'))
  t.equal(seq[0], 'reply:+OK')
  const ex = call.sent.filter((s) => s.startsWith('CHANNEL_EXECUTE'))
  t.equal(ex.length, 14)
  for (let i = 0; i < ex.length; i += 2) {
    t.equal(ex[i], 'CHANNEL_EXECUTE')
    t.equal(ex[i + 1], 'CHANNEL_EXECUTE_COMPLETE')
  }
  await ch.hangup()
  await call.done
})

t.test('playAndGetDigits: digits, retry after invalid input, timeout → ""', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({ dtmf: [{ atMs: 20, digits: '12#' }] })
  const ch = await h.nextChannel()
  const dtmf: string[] = []
  ch.on('dtmf', (d) => dtmf.push(d.digit))
  await ch.answer()
  t.equal(await ch.playAndGetDigits({ min: 1, max: 4, timeoutMs: 1000, file: 'ivr/menu.wav' }), '12', 'terminated by #')
  // The caller presses "9" (too short) at once, then "55" during the second try.
  await ch.subscribe(['CHANNEL_EXECUTE'])
  ch.once('event', (e) => {
    if (e.name !== 'CHANNEL_EXECUTE') return
    call.press('9')
    setTimeout(() => call.press('55'), 150)
  })
  t.equal(await ch.playAndGetDigits({ min: 2, max: 2, tries: 2, timeoutMs: 400, digitTimeoutMs: 30, file: 'ivr/menu.wav', invalidFile: 'ivr/invalid.wav' }), '55')
  t.equal(await ch.playAndGetDigits({ min: 1, max: 1, timeoutMs: 30, file: 'ivr/menu.wav' }), '', 'nothing pressed')
  t.same(dtmf, ['1', '2', '#', '9', '5', '5'])
  await ch.hangup()
  await call.done
})

t.test('bridge: answered, NO_ANSWER, USER_BUSY, parallel ring, caller id and vars in the dial string', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({
    bridgeTargets: {
      'user/1001': { answerAfterMs: 20, hangupAfterMs: 50 },
      'user/1002': { noAnswer: true },
      'user/1003': { busy: true },
      'user/1004': { answerAfterMs: 5, hangupAfterMs: 10 },
    },
  })
  const ch = await h.nextChannel()
  const events: string[] = []
  ch.on('bridge', () => events.push('bridge'))
  ch.on('unbridge', () => events.push('unbridge'))
  const ok = await ch.bridge('user/1001', { callerIdNumber: '74950000000', callerIdName: 'Sales, Moscow', vars: { sb_leg: 'agent' } })
  t.equal(ok.answered, true)
  t.ok(ok.answered && ok.bLegUuid.length === 36)
  t.equal(ch.state, 'answered', 'bridge answers the A-leg')
  t.same(events, ['bridge', 'unbridge'])
  const dial = call.commands.find((c) => c.headers['execute-app-name'] === 'bridge')!.headers['execute-app-arg']
  t.equal(dial, '{sb_leg=agent,origination_caller_id_number=74950000000,origination_caller_id_name=Sales\\, Moscow}user/1001')
  t.same(await ch.bridge('user/1002', { timeoutSec: 0.05 }), { answered: false, cause: 'NO_ANSWER' })
  t.same(await ch.bridge('user/1003'), { answered: false, cause: 'USER_BUSY' })
  const par = await ch.bridge(['user/1002', 'user/1004'], { timeoutSec: 1 })
  t.equal(par.answered, true, 'the leg that answers wins')
  t.equal(ch.state, 'answered')
  await ch.hangup()
  await call.done
})

t.test('caller hangs up mid-bridge: bridge rejects channel_hungup, hangup events, later commands reject', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({ hangupAtMs: 60, bridgeTargets: { 'user/1001': { answerAfterMs: 10 } } })
  const ch = await h.nextChannel()
  const order: string[] = []
  for (const e of ['bridge', 'unbridge', 'hangup', 'hangupComplete', 'end'] as const) ch.on(e, () => order.push(e))
  await t.rejects(ch.bridge('user/1001'), { code: 'channel_hungup' })
  await t.rejects(ch.playback('x.wav'), { code: 'channel_hungup' })
  await ch.hangup() // idempotent
  await ch.ended
  t.same(order, ['bridge', 'hangup', 'unbridge', 'hangupComplete', 'end'])
  await call.done
})

t.test('recording: real stereo WAV of the recorded length, record_* facts in hangupComplete', async (t) => {
  const { h, sim } = await setup(t, { timeScale: 0.05 }) // 3.5 s in ~175 ms: slack for a busy machine
  const path = join(dir, 'rec-stereo.wav')
  const call = sim.call({ bridgeTargets: { 'user/1001': { answerAfterMs: 500, hangupAfterMs: 3000 } } })
  const ch = await h.nextChannel()
  let info: HangupCompleteInfo | undefined
  ch.on('hangupComplete', (x) => (info = x))
  await ch.answer()
  await ch.startRecording(path)
  await ch.bridge('user/1001')
  await ch.hangup()
  await ch.ended
  const r = await call.done
  t.equal(r.recordings.length, 1)
  const wav = readFileSync(path)
  const w = readWavInfo(wav)
  t.equal(w.channels, 2)
  t.equal(w.sampleRate, 8000)
  t.equal(w.bitsPerSample, 16)
  t.ok(w.durationMs >= 3400 && w.durationMs < 6000, `~3.5 s recorded in script time (${w.durationMs} ms)`)
  t.equal(Number(info!.vars.record_ms), r.recordings[0].ms)
  t.equal(Number(info!.vars.record_file_size), wav.length)
  // Not silent: caller (left) and the bridged party (right) both have energy.
  let left = 0
  let right = 0
  for (let i = 44; i + 4 <= wav.length; i += 4) {
    left += Math.abs(wav.readInt16LE(i))
    right += Math.abs(wav.readInt16LE(i + 2))
  }
  t.ok(left > 0 && right > 0, 'both channels carry audio')
  const ms = call.commands.find((c) => c.headers['execute-app-name'] === 'multiset')!
  t.match(ms.headers['execute-app-arg'], /RECORD_STEREO=true RECORD_MIN_SEC=0/)
})

t.test('stopRecording: mono file closed before hangup; short recording without RECORD_MIN_SEC=0 is deleted', async (t) => {
  const { h, sim } = await setup(t)
  const mono = join(dir, 'mono.wav')
  const short = join(dir, 'short.wav')
  const call = sim.call({})
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.startRecording(mono, { stereo: false })
  await ch.execute('sleep', '30')
  await ch.stopRecording(mono)
  t.ok(existsSync(mono), 'written when stopped')
  t.equal(readWavInfo(readFileSync(mono)).channels, 1)
  await ch.execute('unset', 'RECORD_MIN_SEC')
  await ch.execute('record_session', short)
  await ch.hangup()
  await call.done
  t.notOk(existsSync(short), 'FreeSWITCH drops recordings under RECORD_MIN_SEC (3 s by default)')
})

t.test('transfer ends the socket session; json event mode works end to end', async (t) => {
  const { h, sim } = await setup(t, {}, { eventFormat: 'json' })
  const call = sim.call({})
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.transfer('7002', { context: 'default' })
  const end = await ch.ended
  t.ok(end.reason)
  const r = await call.done
  t.equal(r.commands[1].line, 'myevents json')
  t.equal(r.hangupCause, undefined, 'not hung up, transferred')
})

t.test('validation: no header injection through arguments', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({})
  const ch = await h.nextChannel()
  await t.rejects(ch.execute('playback', 'a.wav\nevent-lock: false'), { code: 'validation_failed' })
  await t.rejects(ch.playAndGetDigits({ file: 'a b.wav' }), { code: 'validation_failed' })
  await t.rejects(ch.bridge([]), { code: 'validation_failed' })
  await ch.hangup()
  await call.done
})

t.test('timeScale: scripted times scale down', async (t) => {
  const { h, sim } = await setup(t, { timeScale: 0.001 })
  const call = sim.call({ hangupAtMs: 60_000 })
  const ch = await h.nextChannel()
  const started = Date.now()
  await ch.answer()
  await ch.ended
  t.ok(Date.now() - started < 2000, 'a one-minute call ends in well under 2 s')
  const r = await call.done
  t.equal(r.hangupCause, 'NORMAL_CLEARING')
})
