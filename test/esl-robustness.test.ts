// Hostile or broken peers: every failure closes that socket only, the server keeps serving.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { FsSimulator } from './support/fs-simulator.ts'
import { CommandReader, connectReply } from './support/esl-wire.ts'
import { startOutbound, until } from './support/esl-harness.ts'

type Harness = Awaited<ReturnType<typeof startOutbound>>

/** Connect as a fake FreeSWITCH; once the server sends `connect` (and, in the same packet, its setup commands), act. */
function rawPeer(port: number, onConnectCommand: (s: Socket, first: Buffer) => void): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    s.once('data', (first: Buffer) => onConnectCommand(s, first))
    s.on('close', () => resolve())
  })
}

const channelData: Array<[string, string]> = [
  ['Event-Name', 'CHANNEL_DATA'],
  ['Unique-ID', '11111111-1111-1111-1111-111111111111'],
  ['Caller-Caller-ID-Number', '74951234567'],
  ['Caller-Destination-Number', '7001'],
]

/** The server still handles an ordinary scripted call from start to end. */
async function normalCallWorks(t: { equal: (...args: any[]) => unknown }, h: Harness) {
  const sim = new FsSimulator({ port: h.port })
  const call = sim.call({ destination: '7001' })
  const ch = await h.nextChannel()
  await ch.answer()
  t.equal(await ch.playback('x.wav'), 'FILE PLAYED', 'a normal call still works')
  await ch.hangup()
  await call.done
  await until(() => h.server.sessionCount === 0, 2000, 'sessions to close')
}

t.test('malformed header line closes the socket, no channel, no crash', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  let channels = 0
  h.server.on('channel', () => channels++)
  await rawPeer(h.port, (s) => s.write('Content-Type: command/reply\nthis line has no colon\n\n'))
  await rawPeer(h.port, (s) => s.write('\u0000\u0001garbage \xff\xfe bytes\n\nmore'))
  t.equal(channels, 0)
  t.equal(h.server.sessionCount, 0)
  await normalCallWorks(t, h)
})

t.test('a bad %-escape (crashes modesl) is kept raw, the call goes on', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  const peer = rawPeer(h.port, (s, first) => {
    s.write(connectReply([...channelData, ['variable_x', 'x']]).replace('variable_x: x', 'variable_x: %ZZ%E0%A4%A'))
    // The setup commands (myevents, event, nixevent, linger) came with `connect`: +OK each, in order.
    const reader = new CommandReader()
    const answer = (d: Buffer) => {
      for (const c of reader.push(d)) if (c.line !== 'connect') s.write(`Content-Type: command/reply\nReply-Text: +OK ${c.line.split(' ')[0]}\n\n`)
    }
    answer(first)
    s.on('data', answer)
  })
  const ch = await h.nextChannel()
  t.equal(ch.channelData.vars.x, '%ZZ%E0%A4%A')
  t.equal(ch.channelData.callerIdNumber, '74951234567')
  ch.close()
  await peer
})

t.test('truncated frame: peer closes inside the connect reply', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  const reply = connectReply(channelData)
  await rawPeer(h.port, (s) => s.end(reply.slice(0, reply.length - 10)))
  await until(() => h.server.sessionCount === 0)
  t.pass('closed, logged, nothing leaked')
  await normalCallWorks(t, h)
})

t.test('oversized Content-Length and oversized header block close the socket', async (t) => {
  const h = await startOutbound({ limits: { maxHeaderBytes: 16 * 1024, maxBodyBytes: 64 * 1024 } })
  t.teardown(h.close)
  // A live channel that then receives an event announcing 1 GB.
  const sim = new FsSimulator({ port: h.port })
  const call = sim.call({})
  const ch = await h.nextChannel()
  const pending = ch.playback('long.wav')
  call.socket.write('Content-Length: 999999999\nContent-Type: text/event-plain\n\n')
  const end = await ch.ended
  t.match(end.reason, /Content-Length 999999999 exceeds/)
  await t.rejects(pending, { code: 'esl_protocol' })
  await call.done
  // Endless header without a blank line.
  await rawPeer(h.port, (s) => s.write('X-Junk: ' + 'a'.repeat(20 * 1024)))
  t.equal(h.server.sessionCount, 0)
  // Non-numeric Content-Length.
  await rawPeer(h.port, (s) => s.write('Content-Length: -5\nContent-Type: command/reply\n\n'))
  await normalCallWorks(t, h)
})

t.test('invalid JSON event closes the socket', async (t) => {
  const h = await startOutbound({ eventFormat: 'json' })
  t.teardown(h.close)
  const sim = new FsSimulator({ port: h.port })
  const call = sim.call({})
  const ch = await h.nextChannel()
  call.socket.write('Content-Length: 5\nContent-Type: text/event-json\n\n{nope')
  t.match((await ch.ended).reason, /invalid JSON/)
  await call.done
})

t.test('FreeSWITCH that never answers a command: TimeoutError, socket closed', async (t) => {
  const h = await startOutbound({ limits: { commandTimeoutMs: 150 } })
  t.teardown(h.close)
  const sim = new FsSimulator({ port: h.port, neverAnswer: ['sendmsg'] })
  const call = sim.call({})
  const ch = await h.nextChannel()
  const started = Date.now()
  await t.rejects(ch.answer(), { code: 'timeout', name: 'TimeoutError' })
  t.ok(Date.now() - started < 1000)
  await ch.ended
  await call.done
  // A peer that never answers `connect`: handshake times out, socket closed.
  const mute = new FsSimulator({ port: h.port, neverAnswer: ['connect'] })
  await mute.call({}).done
  await until(() => h.server.sessionCount === 0, 2000, 'handshake socket closed')
  t.equal(h.server.sessionCount, 0)
})

t.test('2,000 sockets opened and dropped quickly: no leak, normal call afterwards', async (t) => {
  const h = await startOutbound()
  t.teardown(h.close)
  let channels = 0
  h.server.on('channel', () => channels++)
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect(h.port, '127.0.0.1')
          s.on('error', () => resolve())
          s.on('close', () => resolve())
          // Half drop at once, half right after the server's `connect` command.
          if (i % 2) s.once('connect', () => s.destroy())
          else s.once('data', () => s.destroy())
        }),
      ),
    )
  }
  await until(() => h.server.sessionCount === 0, 5000, 'all sessions closed')
  t.equal(channels, 0)
  t.ok(h.server.stats.accepted >= 1900, `accepted ${h.server.stats.accepted}`)
  await normalCallWorks(t, h)
})

t.test('maxSessions bounds concurrent sockets', async (t) => {
  const h = await startOutbound({ maxSessions: 2 })
  t.teardown(h.close)
  const sim = new FsSimulator({ port: h.port })
  const a = sim.call({})
  const b = sim.call({})
  await h.nextChannel()
  await h.nextChannel()
  const c = sim.call({})
  await c.done
  t.equal(h.server.stats.rejected, 1)
  sim.closeAll()
  await Promise.all([a.done, b.done])
})
