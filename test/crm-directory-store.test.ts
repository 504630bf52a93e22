// DirectoryStore against a real embedded Postgres: two stores ("two nodes") on one
// database; an import on one is seen by the other through LISTEN/NOTIFY; the listener
// survives a Postgres restart and reloads when it is back.
import t from 'tap'
import { Readable } from 'node:stream'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { silentLogger } from '../src/log.ts'
import { importClients, importEmployees } from '../src/crm/import.ts'
import { DirectoryStore } from '../src/crm/directory-store.ts'
import { validateSwitchboardFile } from '../src/config/switchboard-file.ts'

const log = silentLogger()
const wk = { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' }
const config = validateSwitchboardFile({
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk }],
  groups: [{ id: 'g1', name: 'Sales 1', supervisorId: 'sup1' }],
  queues: ['sales', 'production', 'finance'].map((id) => ({ id, name: id })),
  routing: { unidentifiedSegment: 'B' },
})

let db: TestDatabase
t.before(async () => { db = await startTestDatabase() })
t.teardown(async () => { await db?.close() })

const text = (s: string) => Readable.from([s])
const until = async (what: string, cond: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

t.test('a second node sees an import through NOTIFY, and again after Postgres restarts', async (t) => {
  const opts = { pool: db.pool, log, defaultRegion: 'RU', config }
  await importEmployees(text('id,name,role,group,mobile\nm1,Manager,manager,g1,+79160000001\nsup1,Boss,supervisor,g1,\n'), opts)
  await importClients(text('client_id,name,segment,manager_id,phone\nk1,First,A,m1,+74950000001\n'), opts)

  const mk = () => new DirectoryStore({ pool: db.pool, databaseUrl: db.url, log, config: () => config, minBackoffMs: 50, maxBackoffMs: 500 })
  const nodeA = mk()
  const nodeB = mk()
  t.teardown(async () => { await nodeA.stop(); await nodeB.stop() })
  t.equal(nodeB.current().stats.clients, 0, 'empty before start')
  await nodeA.start()
  await nodeB.start()
  t.ok(nodeB.listening)
  t.match(nodeB.current().identify('+74950000001'), { kind: 'client', client: { id: 'k1', segment: 'A', assignedManagerId: 'm1' } })
  t.same(nodeB.current().groups.get('g1'), { id: 'g1', name: 'Sales 1', supervisorId: 'sup1' }, 'groups come from the config file')
  t.equal(nodeB.current().offices.get('msk')?.tz, 'Europe/Moscow')

  // "node A" imports; node B has nothing to do with it but must see it.
  const changes: string[] = []
  nodeB.onChange((_s, stats) => changes.push(stats.trigger))
  const loadsBefore = nodeB.loadCount
  const report = await importClients(text('client_id,name,segment,phone\nk2,Second,,+74950000002\nk1,First,A,+74950000003\n'), opts)
  await until('node B reload', () => nodeB.loadCount > loadsBefore)
  t.same(changes, [`notify:${report.runId}`])
  const snap = nodeB.current()
  t.match(snap.identify('+74950000002'), { kind: 'client', client: { id: 'k2', segment: 'B' } }, 'NULL segment → routing.unidentifiedSegment')
  t.match(snap.identify('+74950000003'), { kind: 'client', client: { id: 'k1' } })
  t.same(snap.identify('+74950000001'), { kind: 'unidentified' }, 'the pruned phone is gone')
  t.match(snap.identify('+79160000001'), { kind: 'employee', employee: { id: 'm1' } })

  // Postgres goes away: both keep serving the last snapshot; the listener reconnects
  // with backoff when it is back and reloads (the NOTIFY sent meanwhile could be missed).
  await db.stopServer()
  await until('listener notices the outage', () => !nodeB.listening)
  t.match(nodeB.current().identify('+74950000002'), { kind: 'client' }, 'still serving during the outage')
  await db.restart()
  const afterRestart = nodeB.loadCount
  await until('listener reconnects and reloads', () => nodeB.listening && nodeB.loadCount > afterRestart, 30_000)
  t.equal(changes.at(-1), 'reconnect')
  const loads = nodeB.loadCount
  await importClients(text('client_id,name,segment,phone\nk3,Third,C,+74950000004\n'), opts)
  await until('reload after restart', () => nodeB.loadCount > loads)
  t.match(nodeB.current().identify('+74950000004'), { kind: 'client', client: { id: 'k3' } })
})

t.test('reloads requested during a load are coalesced into one more load', async (t) => {
  const store = new DirectoryStore({ pool: db.pool, databaseUrl: db.url, log, config: () => config })
  const first = store.reload('a')
  const second = store.reload('b')
  const third = store.reload('c')
  await Promise.all([first, second, third])
  t.equal(store.loadCount, 2, 'one load plus one coalesced follow-up')
  t.equal(store.stats()?.trigger, 'c')
  await store.stop()
})
