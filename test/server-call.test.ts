import t from 'tap'
import { writeFaultConfig } from './support/faults.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { waitFor } from './support/pipeline.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'

// The whole server as `npm start` builds it (embedded Postgres, filesystem store, real
// ffmpeg), with the wire simulator playing FreeSWITCH against its ESL port.
t.test('a call through the assembled server: CDR written, recording stored, metrics exposed', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-server-call-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  // The example config, with the offices open round the clock: this test runs on the system clock,
  // and the sales queue is only reached while the Moscow office is open.
  const config = await writeFaultConfig(dataDir)
  const sb = await startSwitchboard({ DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent', SWITCHBOARD_CONFIG: config }, silentLogger())
  let stopped = false
  t.teardown(async () => { if (!stopped) await sb.stop() })

  // 1/5 speed: the caller's 4 s of patience must stay longer than call set-up on a loaded CI machine.
  const sim = new FsSimulator({ port: sb.eslPort, host: '127.0.0.1', timeScale: 0.2 })
  // An unknown caller on the main DID: sales queue; nobody is ready, so the caller waits and hangs up.
  const call = sim.call({ callerIdNumber: '79161234567', destination: '+74951230000', hangupAtMs: 4000 })
  const result = await call.done
  t.ok(result.commands.some((c) => c.headers['execute-app-name'] === 'answer'), 'answered')
  t.ok(result.commands.some((c) => c.headers['execute-app-name'] === 'record_session'), 'recorded from answer')

  const cdr = await waitFor('CDR', async () => (await sb.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [call.uuid])).rows[0])
  t.equal(cdr.outcome, 'abandoned', 'caller gave up waiting')
  t.equal(cdr.queue_id, 'sales', 'unknown caller → sales queue (seed 001)')
  const rec = await waitFor('recording', async () => (await sb.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [call.uuid])).rows[0], 30_000)
  t.ok(await sb.store.stat(rec.object_key), 'stored in the filesystem object store under DATA_DIR')
  const cb = await sb.pool.query('SELECT reason FROM callbacks WHERE call_uuid = $1', [call.uuid])
  t.same(cb.rows, [{ reason: 'abandoned' }], 'an abandoned call becomes a callback task')

  // The job counts its outcome right after it wrote the row: poll the scrape endpoint like Prometheus would.
  const metrics = await waitFor('metrics', async () => {
    const text = await (await fetch(`${sb.httpUrl}/metrics`)).text()
    // the backlog gauge follows the spool scan (every second here): wait until a scan saw the spool empty
    return /switchboard_recordings_processed_total\{outcome="stored"\} 1/.test(text) && /switchboard_recordings_backlog 0/.test(text) && text
  })
  t.match(metrics, /switchboard_calls_total 1/, 'call counted in metrics')
  t.match(metrics, /switchboard_recordings_backlog 0/, 'backlog gauge exported')

  // The auth layer is live: a token is needed for anything but the public routes.
  const token = await createApiToken(sb.pool, { id: 'qa-1', name: 'QA', role: 'qa' })
  t.ok(token.startsWith('sb_'))
  stopped = true
  await sb.stop()
})
