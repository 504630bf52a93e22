import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ROOT } from './support/process.ts'

async function runMigrate(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', CI: '1', ...env } })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const [code] = await once(child, 'exit')
  return { code: code as number | null, out }
}

t.test('npm run migrate applies every migration to the embedded Postgres, then reports up to date', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-migrate-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const first = await runMigrate({ DATA_DIR: dataDir })
  t.equal(first.code, 0, first.out.slice(-500))
  t.match(first.out, /applied \d+ migration\(s\)/)
  t.match(first.out, /0001_base-schema/)
  const second = await runMigrate({ DATA_DIR: dataDir })
  t.equal(second.code, 0)
  t.match(second.out, /database is up to date/, 'idempotent')
})

t.test('an unreachable DATABASE_URL fails with exit code 2', async (t) => {
  const r = await runMigrate({ DATABASE_URL: 'postgres://nobody:nothing@127.0.0.1:9/none' })
  t.equal(r.code, 2)
  t.match(r.out, /migration failed/)
})
