import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { waitFor } from './support/pipeline.ts'
import { LOST_BEFORE_HANDLING_CAUSE } from '../src/calls/lost-channel.ts'

// Issue 4: a socket that drops after FreeSWITCH said which call it carries (the `connect`
// reply) but before the channel was ready still leaves a CDR for that call.
const db = await startTestDatabase()
t.teardown(() => db.close())

t.test('socket dropped between the connect reply and myevents: a failed, uncounted CDR', async (t) => {
  const h = await startCallHarness(db, { employees: [], clients: [] })
  t.teardown(() => h.close())
  const port = (h.sim.opts as { port: number }).port
  // FreeSWITCH answers `connect` with the channel data, then the caller is gone before
  // `myevents` is answered: the simulator never answers it, and the socket is cut when it comes.
  const sim = new FsSimulator({ port, host: '127.0.0.1', neverAnswer: ['myevents'] })
  const call = sim.call({ callerIdNumber: '+74951112233', destination: '74950000000' })
  call.socket.on('data', (chunk: Buffer) => { if (chunk.toString('latin1').includes('myevents')) call.socket.destroy() })
  await call.done.catch(() => undefined)
  const row = await waitFor('the lost call\'s CDR', async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [call.uuid])).rows[0], 10_000)
  t.equal(row.outcome, 'failed')
  t.equal(row.hangup_cause, LOST_BEFORE_HANDLING_CAUSE)
  t.equal(row.counted, false, 'not counted: FreeSWITCH went on with the dialplan, the outcome is not ours')
  t.equal(row.direction, 'inbound')
  t.equal(row.caller, '+74951112233')
  t.match(JSON.stringify(row.route_reasons), /socket lost before the call was handled/)
  t.equal(row.node, 'test-node')
})

t.test('a socket dropped before the connect reply leaves no CDR and no session (no call is known)', async (t) => {
  const h = await startCallHarness(db, { employees: [], clients: [] })
  t.teardown(() => h.close())
  const port = (h.sim.opts as { port: number }).port
  const before = (await db.pool.query('SELECT count(*)::int AS n FROM calls')).rows[0].n
  const sim = new FsSimulator({ port, host: '127.0.0.1', neverAnswer: ['connect'] })
  const call = sim.call({})
  call.socket.on('data', () => call.socket.destroy())
  await call.done.catch(() => undefined)
  // an ordinary call afterwards still gets its CDR: the server is fine
  // the harness runs scripts 100× faster: 50 s of script = 0.5 s, well after the handshake (at 200 ms = 2 ms the caller could hang up before it)
  const ok = h.sim.call({ callerIdNumber: '+74951112244', hangupAtMs: 50_000 })
  await ok.done
  await waitFor('the ordinary call\'s CDR', async () => (await db.pool.query('SELECT 1 FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [ok.uuid])).rowCount, 10_000)
  const after = (await db.pool.query('SELECT count(*)::int AS n FROM calls')).rows[0].n
  t.equal(after - before, 1, 'only the ordinary call has a CDR')
  t.equal((await db.pool.query('SELECT 1 FROM calls WHERE uuid = $1', [call.uuid])).rowCount, 0)
})
