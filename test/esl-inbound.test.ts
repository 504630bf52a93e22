// Inbound ESL client against the port-8021 simulator and the captured inbound session.
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { silentLogger } from '../src/log.ts'
import { InboundClient } from '../src/esl/inbound-client.ts'
import { InboundSimulator } from './support/esl-inbound-sim.ts'
import { replayInbound } from './support/esl-trace.ts'
import { until } from './support/esl-harness.ts'

t.test('auth, api, bgapi (BACKGROUND_JOB by Job-UUID), -ERR, exit', async (t) => {
  const sim = new InboundSimulator({ password: 'secret' })
  const port = await sim.listen()
  t.teardown(() => sim.close())
  const client = new InboundClient({ port, password: 'secret', logger: silentLogger() })
  await client.start()
  t.match(await client.api('status'), /is ready/)
  const body = await client.bgapi('originate {origination_caller_id_number=74951112233}loopback/8002/default &park()')
  t.match(body, /^\+OK [0-9a-f-]{36}/)
  const bg = sim.commands.find((c) => c.line.startsWith('bgapi'))!
  t.ok(bg.headers['job-uuid'], 'Job-UUID header sent')
  await t.rejects(client.api('no_such_command'), { code: 'esl_command_failed', message: /Command not found/ })
  t.equal(await client.api('uuid_kill 1234'), '+OK\n')
  await client.stop()
  t.equal(sim.commands.at(-1)!.line, 'exit')
})

t.test('wrong password rejects start() and does not retry', async (t) => {
  const sim = new InboundSimulator({ password: 'secret' })
  const port = await sim.listen()
  t.teardown(() => sim.close())
  const client = new InboundClient({ port, password: 'nope', logger: silentLogger(), reconnect: { minMs: 10 } })
  await t.rejects(client.start(), { code: 'esl_command_failed' })
  await new Promise((r) => setTimeout(r, 60))
  t.equal(sim.connections, 1)
})

t.test('timeouts: api never answered, bgapi job never reported', async (t) => {
  const sim = new InboundSimulator({ neverAnswer: ['api'], bgapiDelayMs: 10_000 })
  const port = await sim.listen()
  t.teardown(() => sim.close())
  const client = new InboundClient({ port, password: 'ClueCon', logger: silentLogger(), limits: { commandTimeoutMs: 100 }, reconnect: { minMs: 20 } })
  await client.start()
  await t.rejects(client.bgapi('originate x &park()', 50), { code: 'timeout' })
  await t.rejects(client.api('status'), { code: 'timeout' })
  // The socket was closed on the timeout; the client reconnects by itself.
  await until(() => client.connected && sim.connections >= 2, 3000, 'reconnect')
  await client.stop()
})

t.test('reconnects with backoff after FreeSWITCH drops; fails fast while down', async (t) => {
  const sim = new InboundSimulator()
  const port = await sim.listen()
  t.teardown(() => sim.close())
  const client = new InboundClient({ port, password: 'ClueCon', logger: silentLogger(), reconnect: { minMs: 20, maxMs: 100 } })
  const events: string[] = []
  client.on('connected', () => events.push('connected'))
  client.on('disconnected', () => events.push('disconnected'))
  await client.start()
  sim.dropAll()
  await until(() => !client.connected, 2000, 'disconnect noticed')
  await t.rejects(client.api('status'), { code: 'unavailable' })
  await until(() => client.connected, 3000, 'reconnected')
  t.match(await client.api('status'), /ready/)
  t.same(events, ['connected', 'disconnected', 'connected'])
  await client.stop()
})

t.test('replay of the captured inbound session (inbound-api.jsonl)', async (t) => {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const replayed = new Promise<Awaited<ReturnType<typeof replayInbound>>>((resolve) => server.once('connection', (s) => resolve(replayInbound('inbound-api', s))))
  const client = new InboundClient({ port, password: 'ClueCon', logger: silentLogger(), events: ['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_HANGUP_COMPLETE', 'RECORD_START', 'RECORD_STOP'] })
  const seen: string[] = []
  client.on('event', (e) => seen.push(e.name))
  await client.start()
  t.match(await client.api('status'), /^UP 0 years/)
  t.equal(await client.api('show calls as json'), '{"row_count": 0}\n')
  // The capture's Job-UUID differs from ours: the BACKGROUND_JOB never matches, so time-box it.
  await t.rejects(client.bgapi('originate {origination_caller_id_number=74951112233}loopback/8002/default &park()', 300), { code: 'timeout' })
  t.match(await client.api('hupall NORMAL_CLEARING'), /hangup all channels/)
  await t.rejects(client.api('no_such_command'), { message: /no_such_command Command not found/ })
  await client.stop()
  const r = await replayed
  t.ok(r.complete, 'whole capture replayed')
  t.ok(seen.includes('BACKGROUND_JOB') && seen.includes('CHANNEL_HANGUP_COMPLETE'))
  t.equal(r.commands[0].line, 'auth ClueCon')
})
