// Per-conversation recordings started during a bridge (api uuid_record on the call's own
// socket), masking for card data, api errors, and the outbound server's graceful stop.
import t from 'tap'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readWavInfo } from './support/esl-wav.ts'
import { startServerWithSimulator, until } from './support/esl-harness.ts'

const dir = mkdtempSync(join(tmpdir(), 'sb-esl-rec-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const setup = startServerWithSimulator

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Peak level per 10 ms window, per channel, of a 16-bit PCM WAV. */
function levels(wav: Buffer): { left: number[]; right: number[]; channels: number } {
  const info = readWavInfo(wav)
  const ch = info.channels
  const frames = info.dataBytes / (2 * ch)
  const win = 80 // 10 ms at 8 kHz
  const left: number[] = []
  const right: number[] = []
  for (let w = 0; w * win < frames; w++) {
    let l = 0
    let r = 0
    for (let f = w * win; f < Math.min(frames, (w + 1) * win); f++) {
      l = Math.max(l, Math.abs(wav.readInt16LE(44 + f * 2 * ch)))
      if (ch === 2) r = Math.max(r, Math.abs(wav.readInt16LE(44 + f * 4 + 2)))
    }
    left.push(l)
    right.push(r)
  }
  return { left, right, channels: ch }
}

/** Runs of windows where both channels are digital silence: [startMs, endMs). */
function silentRuns(lv: { left: number[]; right: number[] }): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  let from = -1
  for (let i = 0; i <= lv.left.length; i++) {
    const silent = i < lv.left.length && lv.left[i] === 0 && lv.right[i] === 0
    if (silent && from < 0) from = i
    if (!silent && from >= 0) {
      runs.push([from * 10, i * 10])
      from = -1
    }
  }
  return runs
}

t.test('a conversation recorded during the bridge, masked for ~1 s, both files real stereo WAVs', async (t) => {
  // 1 script second = 100 real ms.
  const { h, sim } = await setup(t, { timeScale: 0.1 })
  const aPath = join(dir, 'call-a.wav')
  const convPath = join(dir, 'conversation-1.wav')
  const call = sim.call({ bridgeTargets: { 'user/1001': { answerAfterMs: 300, hangupAfterMs: 4000 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.startRecording(aPath) // record_session on the A-leg, stereo, RECORD_MIN_SEC=0

  const bridging = ch.bridge('user/1001')
  let bridgeSettled = false
  void bridging.finally(() => (bridgeSettled = true))
  await once(ch, 'bridge')
  // The bridge holds the event-lock queue: these go through `api`, answered at once.
  await ch.recordLeg(convPath, { stereo: true })
  t.notOk(bridgeSettled, 'recording started while the bridge runs')
  t.same(ch.recordings.map((r) => [r.path, r.via]), [[aPath, 'record_session'], [convPath, 'uuid_record']])
  const apiLines = call.commands.filter((c) => c.line.startsWith('api ')).map((c) => c.line)
  t.same(apiLines, [`api uuid_setvar ${ch.uuid} RECORD_STEREO true`, `api uuid_record ${ch.uuid} start ${convPath}`])
  t.same(sim.apiLog.map((e) => e.response), ['+OK\n', '+OK Success\n'])

  await sleep(100) // 1 s of conversation
  // Script ms the mask was held for at least / at most, as seen from here (a busy machine sleeps longer).
  const beforeMask = performance.now()
  t.same((await ch.maskRecordings()).sort(), [aPath, convPath].sort(), 'card data: every file of the call masked')
  const masked = performance.now()
  t.ok(ch.recordings.every((r) => r.masked))
  await sleep(100) // ~1 s masked
  const beforeUnmask = performance.now()
  await ch.unmaskRecordings()
  const held = { min: (beforeUnmask - masked) / 0.1, max: (performance.now() - beforeMask) / 0.1 }
  const bridged = await bridging // the agent hangs up
  t.equal(bridged.answered, true)
  t.equal(ch.state, 'answered', 'A-leg stays up after the agent hung up')
  await ch.stopLegRecording(convPath)
  await ch.hangup()
  const r = await call.done

  t.equal(r.recordings.length, 2)
  const conv = r.recordings.find((x) => x.path === convPath)!
  const aLeg = r.recordings.find((x) => x.path === aPath)!
  t.match(conv, { via: 'uuid_record', leg: 'a', stereo: true, written: true, stoppedBy: 'stop' })
  t.match(aLeg, { via: 'record_session', leg: 'a', stereo: true, written: true, stoppedBy: 'hangup' })

  for (const path of [aPath, convPath]) {
    const wav = readFileSync(path)
    const w = readWavInfo(wav)
    t.equal(w.channels, 2, `${path}: stereo`)
    t.equal(w.sampleRate, 8000)
    t.equal(w.bitsPerSample, 16)
    t.equal(wav.readUInt32LE(40), wav.length - 44, 'header final: data size = bytes present')
    t.equal(wav.readUInt32LE(4), wav.length - 8, 'header final: RIFF size')
  }

  // The conversation file spans the bridge (from the moment it was started to the agent's hangup).
  const convWav = readFileSync(convPath)
  const convMs = readWavInfo(convWav).durationMs
  t.equal(conv.bridged.length, 1)
  const [bFrom, bTo] = conv.bridged[0]
  t.ok(bFrom < 1, 'bridged from the first moment of the file')
  t.ok(Math.abs(bTo - bFrom - convMs) < 300, `duration ${convMs} ms ≈ bridged span ${Math.round(bTo - bFrom)} ms`)
  t.ok(convMs > 3000 && convMs < 5000, `≈ the 4 s bridge minus the start-up (${convMs} ms)`)

  // Masked: digital silence on both channels for ≈ 1 s, where the simulator says.
  t.equal(conv.masked.length, 1)
  const [mFrom, mTo] = conv.masked[0]
  t.ok(mTo - mFrom >= held.min - 50 && mTo - mFrom <= held.max + 50, `masked ~1 s (${Math.round(mTo - mFrom)} ms, held ${Math.round(held.min)}–${Math.round(held.max)} ms)`)
  const lv = levels(convWav)
  const runs = silentRuns(lv).filter(([a, b]) => b - a >= 100)
  t.equal(runs.length, 1, 'one silent gap in the conversation')
  t.ok(Math.abs(runs[0][0] - mFrom) <= 20 && Math.abs(runs[0][1] - mTo) <= 20, `gap ${runs[0]} at the masked span ${[mFrom, mTo].map(Math.round)}`)
  const talking = (i: number) => lv.left[i] > 1000 && lv.right[i] > 1000
  const before = lv.left.slice(0, Math.floor(mFrom / 10) - 1).map((_, i) => talking(i))
  const after = lv.left.slice(Math.ceil(mTo / 10) + 1, Math.floor(bTo / 10) - 1).map((_, i) => talking(i + Math.ceil(mTo / 10) + 1))
  t.ok(before.length > 50 && before.every(Boolean), 'caller (left) and agent (right) audible before the mask')
  t.ok(after.length > 50 && after.every(Boolean), 'and after it')

  // The A-leg file was masked at the same moment (it started earlier).
  const aGaps = silentRuns(levels(readFileSync(aPath))).filter(([a, b]) => b - a >= 100)
  t.equal(aGaps.length, 1)
  t.equal(aLeg.masked.length, 1)
  const [aFrom, aTo] = aLeg.masked[0]
  t.ok(Math.abs(aGaps[0][0] - aFrom) <= 20 && Math.abs(aGaps[0][1] - aTo) <= 20, `A-leg gap ${aGaps[0]} at its masked span ${[aFrom, aTo].map(Math.round)}`)
  const absolute = (x: number, rec: { startMs: number }) => rec.startMs + x
  t.ok(Math.abs(absolute(aFrom, aLeg) - absolute(mFrom, conv)) < 100, `both files masked at the same moment (${Math.round(absolute(aFrom, aLeg) - absolute(mFrom, conv))} ms apart)`)
  t.ok(readWavInfo(readFileSync(aPath)).durationMs > convMs, 'A-leg file covers the whole call')
})

t.test('api: values, unknown uuid, bad syntax, unknown command, nothing to mask — the socket stays usable', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({ vars: { sb_campaign: 'spring' } })
  const ch = await h.nextChannel()
  const ghost = '00000000-0000-4000-8000-000000000000'
  t.equal(await ch.getVar('sb_campaign'), 'spring')
  t.equal(await ch.getVar('nothing_here'), undefined, '_undef_ → undefined')
  await ch.setVar('sb_note', 'two words')
  t.equal(call.vars.get('sb_note'), 'two words', 'the value keeps its spaces')
  await t.rejects(ch.recordLeg(join(dir, 'early.wav')), { code: 'esl_command_failed', message: /-ERR Cannot record session!/ }, 'no media before answer')
  await t.rejects(ch.api(`uuid_record ${ghost} start ${join(dir, 'ghost.wav')}`), { code: 'esl_command_failed', message: /-ERR Cannot locate session!/ })
  await t.rejects(ch.getVar('x', { uuid: ghost }), { message: /-ERR No such channel!/ })
  await t.rejects(ch.api(`uuid_kill ${ghost}`), { message: /-ERR No such channel!/ })
  await t.rejects(ch.api(`uuid_transfer ${ghost} 7002 XML default`), { message: /-ERR No such channel!/ })
  await t.rejects(ch.api('uuid_record'), { message: /-USAGE: <uuid> \[start\|stop\|mask\|unmask\] <path>/ })
  await t.rejects(ch.api(`uuid_record ${ch.uuid} pause /tmp/x.wav`), { message: /-USAGE/ })
  await t.rejects(ch.api('uuid_setvar'), { message: /-USAGE: <uuid> <var> \[value\]/ })
  await t.rejects(ch.api('no_such_api x'), { message: /-ERR no_such_api Command not found!/ })
  await ch.answer()
  await t.rejects(ch.maskRecording(join(dir, 'never-started.wav')), { message: /-ERR Cannot mask recording session!/ })
  await t.rejects(ch.stopLegRecording(join(dir, 'never-started.wav')), { message: /-ERR Cannot stop record session!/ })
  await t.rejects(ch.recordLeg('/tmp/with space.wav'), { code: 'validation_failed' })
  await t.rejects(ch.api('status\nevent-lock: false'), { code: 'validation_failed' })
  t.equal(await ch.playback('ivr/still-works.wav'), 'FILE PLAYED', 'socket usable after all those errors')
  await ch.hangup()
  await call.done
  await t.rejects(ch.api('uuid_getvar x y'), { code: 'esl_closed' }, 'after the socket is gone')
})

t.test('api timeout: the caller stops waiting; a reply that never comes closes the socket at the wire limit', async (t) => {
  const { h, sim } = await setup(t, { neverAnswer: ['api'] }, { limits: { commandTimeoutMs: 300 } })
  const call = sim.call({})
  const ch = await h.nextChannel()
  const started = Date.now()
  await t.rejects(ch.api(`uuid_getvar ${ch.uuid} x`, { timeoutMs: 50 }), { code: 'timeout' })
  t.ok(Date.now() - started < 250, 'rejected at the caller’s timeout')
  t.equal(ch.state, 'ringing', 'socket still open right after')
  const end = await ch.ended
  t.match(end.reason, /timed out/)
  await call.done
})

t.test('the file grows with a provisional header while open; RECORD_MIN_SEC; limit; B-leg recording ends with the B-leg', async (t) => {
  const { h, sim } = await setup(t, { timeScale: 0.05 })
  const growing = join(dir, 'growing.wav')
  const short = join(dir, 'short.wav')
  const limited = join(dir, 'limited.wav')
  const agentSide = join(dir, 'agent-side.wav')
  const call = sim.call({ bridgeTargets: { 'user/1001': { answerAfterMs: 100, hangupAfterMs: 2000 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.recordLeg(growing, { minSec: 0 })
  await ch.recordLeg(short, { minSec: 30, stereo: false })
  await ch.recordLeg(limited, { minSec: 0, limitSec: 1 })
  const bridging = ch.bridge('user/1001')
  const { otherUuid } = (await once(ch, 'bridge'))[0] as { otherUuid: string }
  await ch.recordLeg(agentSide, { uuid: otherUuid, minSec: 0 })
  t.same(ch.recordings.find((r) => r.path === agentSide)?.uuid, otherUuid)
  await until(() => existsSync(growing) && statSync(growing).size > 44 + 8000, 5000, 'the file to grow')
  const partial = readFileSync(growing)
  t.equal(partial.readUInt32LE(40), 0, 'data size still 0 while FreeSWITCH writes the file')
  t.ok(partial.length > 44, 'but PCM is there')
  await ch.stopLegRecording(short)
  t.notOk(existsSync(short), 'shorter than RECORD_MIN_SEC: deleted at stop')
  await bridging
  t.notOk(ch.recordings.some((r) => r.path === agentSide), 'the B-leg recording ended with the B-leg')
  await ch.hangup()
  const r = await call.done
  const by = Object.fromEntries(r.recordings.map((x) => [x.path, x]))
  t.match(by[short], { written: false, stereo: false, stoppedBy: 'stop' })
  t.match(by[limited], { written: true, stoppedBy: 'limit' })
  t.ok(by[limited].ms >= 950 && by[limited].ms < 2000, `limit 1 s (${by[limited].ms} ms)`)
  t.match(by[agentSide], { leg: 'b', uuid: otherUuid, stoppedBy: 'unbridge', written: true })
  t.match(by[growing], { stoppedBy: 'hangup', written: true })
  const final = readFileSync(growing)
  t.equal(final.readUInt32LE(40), final.length - 44, 'final header after hangup')
  // Agent side: agent left, caller right, both audible.
  const lv = levels(readFileSync(agentSide))
  t.ok(lv.left.slice(2, -2).every((x) => x > 1000) && lv.right.slice(2, -2).every((x) => x > 1000), 'B-leg file: both parties audible')
})

t.test('record_session_mask / record_session_unmask apps mask the A-leg record_session', async (t) => {
  const { h, sim } = await setup(t, { timeScale: 0.1 })
  const path = join(dir, 'app-mask.wav')
  const call = sim.call({})
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.startRecording(path, { stereo: true })
  await ch.execute('sleep', '500')
  await ch.recordSessionMask(path)
  t.equal(ch.recordings[0].masked, true)
  await ch.execute('sleep', '1000')
  await ch.recordSessionUnmask(path)
  await ch.execute('sleep', '500')
  await ch.hangup()
  const r = await call.done
  t.equal(r.recordings[0].masked.length, 1)
  const gaps = silentRuns(levels(readFileSync(path))).filter(([a, b]) => b - a >= 100)
  t.equal(gaps.length, 1)
  t.ok(gaps[0][1] - gaps[0][0] > 800 && gaps[0][1] - gaps[0][0] < 1400, `~1 s silent (${gaps[0]})`)
})

t.test('uuid_kill of the B-leg ends the bridge, A stays; uuid_transfer of the A-leg takes it off the socket', async (t) => {
  const { h, sim } = await setup(t, { timeScale: 0.05 })
  const path = join(dir, 'transferred.wav')
  const call = sim.call({ bridgeTargets: { 'user/1001': { answerAfterMs: 100 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  const bridging = ch.bridge('user/1001')
  const { otherUuid } = (await once(ch, 'bridge'))[0] as { otherUuid: string }
  t.equal(await ch.api(`uuid_kill ${otherUuid} USER_BUSY`), '+OK')
  const res = await bridging
  t.match(res, { answered: true, hangupCause: 'USER_BUSY' })
  t.equal(ch.state, 'answered')
  await ch.recordLeg(path, { minSec: 0 })
  const second = ch.bridge('user/1001')
  await once(ch, 'bridge')
  t.equal(await ch.api(`uuid_transfer ${ch.uuid} 7002 XML default`), '+OK')
  t.match(await second, { answered: true }, 'the bridge app returns, as FreeSWITCH reports it')
  await ch.ended
  const r = await call.done
  t.equal(r.hangupCause, undefined, 'transferred, not hung up')
  t.match(r.recordings[0], { path, stoppedBy: 'transfer', written: true })
})

t.test('stopAccepting: the running call carries on, a new one is refused; whenIdle, then close', async (t) => {
  const { h, sim } = await setup(t)
  const running = sim.call({})
  const ch = await h.nextChannel()
  await ch.answer()
  t.equal(h.server.accepting, true)
  await h.server.stopAccepting()
  await h.server.stopAccepting() // idempotent
  t.equal(h.server.accepting, false)
  await t.rejects(sim.call({}).done, { code: 'ECONNREFUSED' }, 'new call refused')
  t.equal(await ch.playback('ivr/still-here.wav'), 'FILE PLAYED', 'the running call goes on')
  t.equal(h.server.sessionCount, 1)
  let idle = false
  const idlePromise = h.server.whenIdle().then(() => (idle = true))
  await sleep(20)
  t.notOk(idle, 'not idle while a call runs')
  await ch.hangup()
  await running.done
  await idlePromise
  t.equal(h.server.sessionCount, 0)
  await h.server.close() // after stopAccepting: resolves, nothing left to drop
  await h.server.close() // idempotent
})

t.test('close() drops running calls', async (t) => {
  const { h, sim } = await setup(t)
  const call = sim.call({})
  const ch = await h.nextChannel()
  await ch.answer()
  await h.server.close()
  await ch.ended
  t.equal(ch.state, 'ended')
  await call.done
})
