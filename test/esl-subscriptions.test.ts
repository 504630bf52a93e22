// Which events a socket gets: the simulator follows mod_event_socket's rules, and our
// server's handshake (one packet: connect, myevents, event, nixevent, linger) asks for
// exactly the types Switchboard reads.
import t from 'tap'
import { connect } from 'node:net'
import { EventSubscription, MYEVENTS_LIST } from './support/esl-subscriptions.ts'
import { CommandReader, connectReply } from './support/esl-wire.ts'
import { startOutbound, startServerWithSimulator } from './support/esl-harness.ts'
import { DEFAULT_DROPPED_EVENTS, DEFAULT_EXTRA_EVENTS } from '../src/esl/defaults.ts'

t.test('simulator: myevents, event, nixevent, noevents as mod_event_socket keeps them', async (t) => {
  const s = new EventSubscription()
  t.notOk(s.wants('CHANNEL_ANSWER'), 'nothing before a subscription')
  t.same(s.enableMyEvents(), { ok: true })
  t.same(s.enableMyEvents(), { ok: false, error: '-ERR aready enabled.' }, "FreeSWITCH's own spelling")
  for (const n of MYEVENTS_LIST) t.ok(s.wants(n), `myevents brings ${n}`)
  t.notOk(s.wants('CHANNEL_HOLD'), 'CHANNEL_HOLD is not in the myevents list')
  t.notOk(s.wants('CUSTOM', 'conference::maintenance'), 'nor CUSTOM')
  t.same(s.subscribe(['plain', 'CHANNEL_HOLD', 'CUSTOM', 'conference::maintenance']), { ok: true, format: 'plain' })
  t.ok(s.wants('CHANNEL_HOLD'))
  t.ok(s.wants('CUSTOM', 'conference::maintenance'))
  t.notOk(s.wants('CUSTOM', 'callcenter::info'), 'only the subclasses asked for')
  t.same(s.unsubscribe(['CHANNEL_EXECUTE', 'CHANNEL_STATE', 'not_an_event']), { ok: true })
  t.notOk(s.wants('CHANNEL_EXECUTE'))
  t.notOk(s.wants('CHANNEL_STATE'))
  t.ok(s.wants('CHANNEL_EXECUTE_COMPLETE'), 'a longer name is another type')
  t.same(s.subscribe(['plain']), { ok: false, error: '-ERR no keywords supplied' })
  t.same(s.unsubscribe(['nonsense']), { ok: false, error: '-ERR no keywords supplied' })
  t.same(s.subscribe(['CHANNEL_EXECUTE']), { ok: true, format: undefined }, 'the format word is optional')
  t.ok(s.wants('CHANNEL_EXECUTE'))
  t.same(s.clear(), { ok: true })
  t.notOk(s.wants('CHANNEL_ANSWER'))
  t.same(s.clear(), { ok: false, error: '-ERR not listening for events' })

  const all = new EventSubscription()
  all.subscribe(['json', 'ALL'])
  t.ok(all.wants('CUSTOM', 'anything') && all.wants('HEARTBEAT'), 'ALL sends everything')
  all.unsubscribe(['HEARTBEAT'])
  t.notOk(all.wants('HEARTBEAT'), 'nixing one type out of ALL')
  t.ok(all.wants('CHANNEL_ANSWER'), 'keeps the others')
  all.unsubscribe(['ALL'])
  t.notOk(all.wants('CHANNEL_ANSWER'))
})

t.test('server: the handshake leaves in one packet and asks for what Switchboard reads', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  const reader = new CommandReader()
  const first = await new Promise<string[]>((resolve) => {
    const s = connect(h.port, '127.0.0.1')
    s.on('error', () => {})
    s.once('data', (chunk: Buffer) => {
      const lines = reader.push(chunk).map((c) => c.line)
      s.write(connectReply([['Event-Name', 'CHANNEL_DATA'], ['Unique-ID', '22222222-2222-2222-2222-222222222222']]))
      for (const line of lines.slice(1)) s.write(`Content-Type: command/reply\nReply-Text: +OK ${line.split(' ')[0]}\n\n`)
      resolve(lines)
    })
  })
  t.same(first, ['connect', 'myevents', `event plain ${DEFAULT_EXTRA_EVENTS.join(' ')}`, `nixevent ${DEFAULT_DROPPED_EVENTS.join(' ')}`, 'linger'], 'all five in the first read')
  const ch = await h.nextChannel()
  t.equal(ch.uuid, '22222222-2222-2222-2222-222222222222')
  ch.close()
})

t.test('server: a refused subscription is logged, the call goes on', async (t) => {
  const h = await startOutbound({ subscriptions: { extra: ['NO_SUCH_EVENT'], drop: [] } })
  t.teardown(h.close)
  const sock = connect(h.port, '127.0.0.1')
  sock.on('error', () => {})
  const reader = new CommandReader()
  sock.on('data', (chunk: Buffer) => {
    for (const c of reader.push(chunk)) {
      if (c.line === 'connect') sock.write(connectReply([['Event-Name', 'CHANNEL_DATA'], ['Unique-ID', '33333333-3333-3333-3333-333333333333']]))
      else if (c.line.startsWith('event')) sock.write('Content-Type: command/reply\nReply-Text: -ERR no keywords supplied\n\n')
      else sock.write(`Content-Type: command/reply\nReply-Text: +OK\n\n`)
    }
  })
  const ch = await h.nextChannel()
  t.equal(ch.uuid, '33333333-3333-3333-3333-333333333333')
  ch.close()
})

t.test('server: an event in the same read as the setup replies reaches the channel', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  const sock = connect(h.port, '127.0.0.1')
  sock.on('error', () => {})
  sock.once('data', (chunk: Buffer) => {
    const n = new CommandReader().push(chunk).length
    const uuid = '44444444-4444-4444-4444-444444444444'
    const event = `Event-Name: CHANNEL_HANGUP\nUnique-ID: ${uuid}\nHangup-Cause: ORIGINATOR_CANCEL\n`
    // Connect reply, the setup replies and a hangup event, all in one write.
    sock.write(
      connectReply([['Event-Name', 'CHANNEL_DATA'], ['Unique-ID', uuid]]) +
        'Content-Type: command/reply\nReply-Text: +OK\n\n'.repeat(n - 1) +
        `Content-Length: ${Buffer.byteLength(event)}\nContent-Type: text/event-plain\n\n${event}`,
    )
  })
  const ch = await h.nextChannel()
  t.equal(ch.state, 'hungup', 'the early CHANNEL_HANGUP was handed to the channel')
  t.equal(ch.hangupCause, 'ORIGINATOR_CANCEL')
  ch.close()
})

t.test('simulator: with the default subscriptions a call carries no dropped type, and CHANNEL_EXECUTE comes back on request', async (t) => {
  const { h, sim } = await startServerWithSimulator(t)
  const call = sim.call({})
  const ch = await h.nextChannel()
  const names: string[] = []
  ch.on('event', (e) => names.push(e.name))
  await ch.answer()
  await ch.playback('a.wav')
  await ch.subscribe(['CHANNEL_EXECUTE'])
  await ch.playback('b.wav')
  await ch.hangup()
  await call.done
  t.same(names.filter((n) => n === 'CHANNEL_EXECUTE').length, 1, 'only after subscribe')
  for (const d of DEFAULT_DROPPED_EVENTS) if (d !== 'CHANNEL_EXECUTE') t.notOk(names.includes(d), `${d} not sent`)
  t.ok(names.includes('CHANNEL_ANSWER') && names.includes('CHANNEL_HANGUP_COMPLETE'))
  await t.rejects(ch.subscribe(['TWO WORDS']), /one word/)
})
