// Replays the real FreeSWITCH captures byte for byte at our outbound server.
import t from 'tap'
import { replayOutbound } from './support/esl-trace.ts'
import { startOutbound } from './support/esl-harness.ts'
import type { CallChannel, HangupCompleteInfo } from '../src/esl/call-channel.ts'

/**
 * The app that made the captures sent `connect`, `myevents`, `linger` and nothing else; a
 * replay is paced on those commands, so our server sends the same (no event/nixevent).
 */
const TRACE_APP = { subscriptions: false } as const

async function collect(ch: CallChannel) {
  const events: string[] = []
  const dtmf: string[] = []
  let hangupComplete: HangupCompleteInfo | undefined
  ch.on('event', (e) => events.push(e.name))
  ch.on('dtmf', (d) => dtmf.push(d.digit))
  ch.on('hangupComplete', (h) => (hangupComplete = h))
  return { events, dtmf, get hangupComplete() { return hangupComplete } }
}

t.test('conn-1: answer, playback, record, digits 2, bridge answered, hangup', async (t) => {
  const h = await startOutbound(TRACE_APP)
  t.teardown(h.close)
  const replay = replayOutbound('conn-1-7001', h.port)
  const ch = await h.nextChannel()
  const seen = await collect(ch)
  t.equal(ch.uuid, '7f880849-dbcd-40d3-b535-86169867a9da')
  t.equal(ch.channelData.callerIdNumber, '74951234567')
  t.equal(ch.channelData.destination, '7001')
  t.equal(ch.channelData.vars.socket_host, '127.0.0.1')
  t.equal(ch.channelData.vars.current_application_data, '127.0.0.1:8084 async full', 'values are URL-decoded')
  await ch.answer()
  t.equal(ch.state, 'answered')
  t.equal(await ch.tone('%(200,100,440);loops=3'), 'FILE PLAYED')
  await ch.set('RECORD_STEREO', 'true')
  await ch.execute('record_session', `/tmp/rec/${ch.uuid}.wav`)
  const digits = await ch.playAndGetDigits({ min: 1, max: 1, tries: 2, timeoutMs: 3000, file: 'tone_stream://%(100,0,800)', varName: 'ivr_choice', regex: '\\d' })
  t.equal(digits, '2')
  t.same(seen.dtmf, ['2'])
  await ch.set('call_timeout', '10')
  const bridged: string[] = []
  ch.on('bridge', (b) => bridged.push(b.otherUuid))
  const r = await ch.bridge('loopback/8001/default')
  t.same(r, { answered: true, bLegUuid: 'd838f3ab-dc69-4889-86c2-96cbbd4a1314', hangupCause: 'NORMAL_CLEARING' })
  t.same(bridged, ['d838f3ab-dc69-4889-86c2-96cbbd4a1314'])
  await ch.hangup('NORMAL_CLEARING')
  const end = await ch.ended
  t.match(end.reason, /peer closed|socket closed/)
  const info = seen.hangupComplete!
  t.ok(info, 'CHANNEL_HANGUP_COMPLETE seen')
  t.equal(info.cause, 'NORMAL_CLEARING')
  t.equal(info.billsec, 4)
  t.equal(info.vars.record_ms, '2240')
  t.equal(info.vars.record_file_size, '71724')
  t.equal(info.vars.record_completion_cause, 'success-silence')
  const res = await replay
  t.ok(res.complete, 'the whole trace was replayed')
  t.equal(res.commands[0].line, 'connect')
  t.equal(res.commands[1].line, 'myevents')
  t.equal(res.commands[2].line, 'linger')
  t.same(res.commands[3].headers['event-lock'], 'true', 'every execute uses event-lock')
  t.ok(res.commands[3].headers['event-uuid'], 'and an Event-UUID')
  t.equal(h.server.sessionCount, 0)
})

t.test('conn-4: the same flow with myevents json', async (t) => {
  const h = await startOutbound({ ...TRACE_APP, eventFormat: 'json' })
  t.teardown(h.close)
  const replay = replayOutbound('conn-4-7005', h.port)
  const ch = await h.nextChannel()
  const seen = await collect(ch)
  t.equal(ch.channelData.callerIdNumber, '74950000005')
  t.equal(ch.channelData.destination, '7005')
  await ch.answer()
  t.equal(await ch.playback('tone_stream://%(200,100,440);loops=3'), 'FILE PLAYED')
  await ch.set('RECORD_STEREO', 'true')
  await ch.execute('record_session', `/tmp/rec/${ch.uuid}.wav`)
  t.equal(await ch.playAndGetDigits({ file: 'x', varName: 'ivr_choice', regex: '\\d' }), '3', 'the caller pressed 3 in this capture')
  await ch.set('call_timeout', '10')
  const r = await ch.bridge('loopback/8001/default')
  t.equal(r.answered, true)
  await ch.hangup()
  await ch.ended
  t.equal(seen.dtmf.join(''), '3')
  t.ok(seen.hangupComplete && seen.hangupComplete.billsec >= 0)
  t.ok(seen.hangupComplete!.vars.record_ms, 'record facts in HANGUP_COMPLETE (json)')
  const res = await replay
  t.equal(res.commands[1].line, 'myevents json')
  t.ok(res.complete)
})

t.test('conn-2: the caller hangs up during playback', async (t) => {
  const h = await startOutbound(TRACE_APP)
  t.teardown(h.close)
  const replay = replayOutbound('conn-2-7002', h.port)
  const ch = await h.nextChannel()
  const seen = await collect(ch)
  await ch.answer()
  const hangups: string[] = []
  ch.on('hangup', (x) => hangups.push(x.cause))
  await t.rejects(ch.playback('tone_stream://%(1000,0,440);loops=10'), { code: 'channel_hungup' })
  t.same(hangups, ['NORMAL_CLEARING'])
  await t.rejects(ch.answer(), { code: 'channel_hungup' }, 'commands after hangup reject at once')
  await ch.ended
  t.equal(seen.hangupComplete?.cause, 'NORMAL_CLEARING')
  t.ok((await replay).complete)
})

t.test('conn-3: bridge not answered (NO_ANSWER), A-leg stays up', async (t) => {
  const h = await startOutbound(TRACE_APP)
  t.teardown(h.close)
  const replay = replayOutbound('conn-3-7003', h.port)
  const ch = await h.nextChannel()
  await ch.answer()
  await ch.set('call_timeout', '3')
  const r = await ch.bridge('loopback/9001/default')
  t.same(r, { answered: false, cause: 'NO_ANSWER' })
  t.equal(ch.state, 'answered', 'A-leg still up')
  t.equal(await ch.tone('%(200,0,300);loops=1'), 'FILE PLAYED')
  await ch.hangup('NO_ANSWER')
  t.equal(ch.hangupCause, 'NO_ANSWER')
  await ch.ended
  t.ok((await replay).complete)
})

t.test('conn-5: reject at once without answering', async (t) => {
  const h = await startOutbound(TRACE_APP)
  t.teardown(h.close)
  const replay = replayOutbound('conn-5-7777', h.port)
  const ch = await h.nextChannel()
  const seen = await collect(ch)
  t.equal(ch.state, 'ringing')
  await ch.hangup('UNALLOCATED_NUMBER')
  await ch.ended
  t.equal(seen.hangupComplete?.cause, 'UNALLOCATED_NUMBER')
  t.equal(seen.hangupComplete?.billsec, 0)
  t.ok((await replay).complete)
})

t.test('conn-6: a real SIP call, variable_sip_* channel data', async (t) => {
  const h = await startOutbound(TRACE_APP)
  t.teardown(h.close)
  const replay = replayOutbound('conn-6-7004', h.port)
  const ch = await h.nextChannel()
  const seen = await collect(ch)
  const d = ch.channelData
  t.equal(d.destination, '7004')
  t.equal(d.callerIdNumber, 'sipp')
  t.equal(d.source, 'mod_sofia')
  t.equal(d.sipVars.sip_call_id, '1-25052@127.0.0.1')
  t.equal(d.sipVars.sip_from_uri, 'sipp@127.0.0.1:5099')
  t.equal(d.sipVars.sip_subject, 'Performance Test')
  t.equal(d.sipVars.sip_req_user, '7004')
  t.equal(d.channelName, 'sofia/external/sipp@127.0.0.1:5099')
  await ch.answer()
  await ch.tone('%(200,100,440);loops=3')
  await ch.set('RECORD_STEREO', 'true')
  await ch.execute('record_session', `/tmp/rec/${ch.uuid}.wav`)
  await ch.hangup()
  await ch.ended
  t.equal(seen.hangupComplete?.vars.record_ms, '20')
  t.equal(seen.hangupComplete?.vars.record_file_size, '684')
  t.ok(seen.events.includes('CHANNEL_PROGRESS_MEDIA'))
  t.ok((await replay).complete)
})
