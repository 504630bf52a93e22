// Config activations reach other nodes through LISTEN/NOTIFY: two ConfigVersions ("nodes"),
// each with its own pool, on one real Postgres. Node A activates / rolls back; node B's
// listeners get the new config once, without restart; B's listener survives its connection
// being killed and catches what was activated while it was away.
import t from 'tap'
import { createPool } from '../src/db/pool.ts'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { silentLogger } from '../src/log.ts'
import { validateSwitchboardFile, type SwitchboardFile } from '../src/config/switchboard-file.ts'
import { ConfigVersions } from '../src/config/versions.ts'

const log = silentLogger()
const wk = { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' }
const doc = (unknownQueue: string) => ({
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk }],
  queues: ['sales', 'production', 'finance'].map((id) => ({ id, name: id })),
  routing: { kindRoutes: { unknown: unknownQueue, client: 'sales' } },
})
const fileConfig = validateSwitchboardFile(doc('sales'))

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

let db: TestDatabase
t.before(async () => { db = await startTestDatabase() })
t.teardown(async () => { await db?.close() })

t.test('an activation on node A is applied on node B (once), a rollback too; B reconnects after its connection dies', async (t) => {
  const poolB = createPool(db.url, log)
  const a = new ConfigVersions({ pool: db.pool, databaseUrl: db.url, log, fallback: () => fileConfig })
  const b = new ConfigVersions({ pool: poolB, databaseUrl: db.url, log, fallback: () => fileConfig, minBackoffMs: 50, maxBackoffMs: 200 })
  const seenA: number[] = []
  const seenB: Array<{ version: number; unknown: string }> = []
  a.onChange((_c, v) => seenA.push(v))
  b.onChange((c: SwitchboardFile, v) => seenB.push({ version: v, unknown: c.routing.kindRoutes.unknown ?? '' }))
  await a.start(null)
  await b.start(null)
  t.teardown(async () => { await a.stop(); await b.stop(); await poolB.end() })
  await until('both listening', () => a.listening && b.listening)

  const v1 = (await a.propose(doc('production'), 'admin')).version
  await a.activate(v1, 'admin')
  await until('B applies v1', () => seenB.length === 1)
  t.same(seenB[0], { version: v1, unknown: 'production' }, 'B got the activated config')
  t.equal(b.runningVersion, v1)

  const v2 = (await a.propose(doc('finance'), 'admin')).version
  await a.activate(v2, 'admin')
  await until('B applies v2', () => seenB.length === 2)
  t.same(seenB[1], { version: v2, unknown: 'finance' })

  await a.rollback('admin')
  await until('B applies the rollback', () => seenB.length === 3)
  t.same(seenB[2], { version: v1, unknown: 'production' }, 'the rollback reached B as well')

  // B activates: A follows; B's own NOTIFY does not apply it twice on B
  await b.activate(v2, 'admin')
  await until('A applies v2 from B', () => seenA.at(-1) === v2)
  await new Promise((r) => setTimeout(r, 300))
  t.same(seenB.map((x) => x.version), [v1, v2, v1, v2], 'each version applied once on B, its own activation included')
  t.same(seenA, [v1, v2, v1, v2], 'A: its own three plus the one from B, once each')

  // B's LISTEN connection is killed; meanwhile A activates v1: B reconnects and catches up
  await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'switchboard-config-listener' AND pid <> pg_backend_pid()`)
  await a.activate(v1, 'admin')
  await until('B catches up after reconnecting', () => seenB.at(-1)?.version === v1, 15_000)
  await until('both listening again', () => a.listening && b.listening, 15_000)
  t.equal(b.runningVersion, v1)
})

t.test('without a databaseUrl nothing listens, and activations still apply locally', async (t) => {
  const c = new ConfigVersions({ pool: db.pool, log, fallback: () => fileConfig })
  const seen: number[] = []
  c.onChange((_x, v) => seen.push(v))
  await c.start(null)
  t.equal(c.listening, false)
  const v = (await c.propose(doc('finance'), 'admin')).version
  await c.activate(v, 'admin')
  t.same(seen, [v])
  await c.stop()
})
