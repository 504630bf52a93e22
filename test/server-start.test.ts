import t from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ROOT, startServerProcess } from './support/process.ts'

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('npm start on embedded defaults: /health and /ready 200, clean stop without orphan Postgres', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-start-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const started = Date.now()
  const server = startServerProcess({ DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'info' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const listening = await server.waitForLog((l) => l.msg === 'HTTP listening')
  const url = String(listening.url)
  t.ok(Date.now() - started < 60_000, 'serving within 60 s')

  const health = await fetch(`${url}/health`)
  t.equal(health.status, 200, '/health 200')
  const ready = await fetch(`${url}/ready`)
  const readyBody = await ready.json() as { status: string; checks: Array<{ name: string; ok: boolean }> }
  t.equal(ready.status, 200, '/ready 200')
  t.same(readyBody.checks.map((c) => c.name).sort(), ['freeswitch_inbound', 'object_store', 'postgres', 'spool_disk'], 'ready checks Postgres, the object store, the spool disk and (when configured) FreeSWITCH\'s event socket')
  t.ok(Number(listening.esl_port) > 0, 'outbound ESL listener up')
  t.ok(readyBody.checks.every((c) => c.ok), 'every readiness check ok')

  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /process_resident_memory_bytes/, 'Prometheus default metrics')
  const docs = await fetch(`${url}/docs/json`)
  t.equal(docs.status, 200, 'OpenAPI document served')
  const missing = await fetch(`${url}/no-such-route`)
  t.equal(missing.status, 404)
  t.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8', 'problem details')

  const pid = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0])
  t.ok(isAlive(pid), 'embedded Postgres runs while the server runs')
  server.child.kill('SIGTERM')
  t.equal(await server.exit, 0, 'exit code 0 on SIGTERM')
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100))
  t.notOk(isAlive(pid), 'no orphan Postgres after stop')
  t.notOk(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'Postgres shut down cleanly (pid file removed)')

  // Restart on the same data dir after a kill -9: the orphaned postmaster is stopped and reused data works.
  const again = startServerProcess({ DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0' })
  t.teardown(() => { again.child.kill('SIGKILL') })
  await again.waitForLog((l) => l.msg === 'HTTP listening')
  const pid2 = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0])
  again.child.kill('SIGKILL')
  await again.exit
  t.ok(isAlive(pid2), 'kill -9 leaves the postmaster behind (as it would in production)')
  const third = startServerProcess({ DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0' })
  t.teardown(() => { third.child.kill('SIGKILL') })
  await third.waitForLog((l) => l.msg === 'HTTP listening')
  t.ok(third.logs.some((l) => String(l.msg).includes('orphaned embedded Postgres')), 'the next start stops the orphan and takes over')
  third.child.kill('SIGTERM')
  t.equal(await third.exit, 0)
})

t.test('an invalid environment value stops start-up naming the variable', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-badenv-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const server = startServerProcess({ DATA_DIR: dataDir, PORT: 'eighty' })
  t.equal(await server.exit, 1, 'exit code 1')
  const fatal = server.logs.find((l) => l.level === 60)
  t.match(String(fatal?.msg), /PORT/, 'message names PORT')
})

t.test('an invalid config file stops start-up naming the field', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-badcfg-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const cfg = path.join(dataDir, 'switchboard.yaml')
  // The shipped example with one value broken: the error must point at that field.
  const example = await readFile(path.join(ROOT, 'config', 'switchboard.example.yaml'), 'utf8')
  const broken = example.replace(/strategy: [a-z-]+/, 'strategy: loudest-first')
  t.not(broken, example, 'the example config has a queue strategy to break')
  await writeFile(cfg, broken)
  const server = startServerProcess({ DATA_DIR: dataDir, SWITCHBOARD_CONFIG: cfg })
  t.equal(await server.exit, 1, 'exit code 1')
  const fatal = server.logs.find((l) => l.level === 60)
  t.match(String(fatal?.msg), /queues\[\d+\]\.strategy/, 'message names the field path')
})
