// Issue 13 (seed 004): the employee directory API — find colleagues by name (Cyrillic,
// any case, ё = е), group, extension or mobile in any notation, with their presence.
// Real Postgres, the real DirectoryStore loading it, the real HTTP app on a port.
import t from 'tap'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { employeesRoutes } from '../src/http/plugins/employees.ts'
import { DirectoryStore } from '../src/crm/directory-store.ts'
import { PresenceStore } from '../src/acd/presence.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { createApiToken, ROLES } from '../src/http/auth/tokens.ts'
import { silentLogger } from '../src/log.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
const log = silentLogger()
const config = await loadSwitchboardFile(EXAMPLE_CONFIG)

const people: Array<[string, string, string, string | null, string | null, string | null]> = [
  ['e-anna', 'Анна Петрова', 'manager', 'sales-1', '1001', '+79161234567'],
  ['e-petr', 'Пётр Ёлкин', 'agent', 'sales-1', '1002', null],
  ['e-olga', 'Ольга Петровская', 'agent', 'sales-2', '2001', '89131112233'],
  ['e-john', 'John Smith', 'supervisor', 'sales-2', '2002', null],
  ['e-sec', 'Секретарь Приёмной', 'secretary', null, '100', null],
]
for (const [id, name, role, group, ext, mobile] of people) {
  await db.pool.query('INSERT INTO employees (id, name, role, group_id, extension, mobile) VALUES ($1, $2, $3, $4, $5, $6)', [id, name, role, group, ext, mobile])
}
const directory = new DirectoryStore({ pool: db.pool, databaseUrl: db.url, log, config: () => config })
await directory.start()
t.teardown(() => directory.stop())
const presence = new PresenceStore(db.pool, log)
await presence.set('e-anna', 'ready')
await presence.set('e-olga', 'on_call', 'call x')

const app = await buildHttpApp({
  log, pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [employeesRoutes({ directory: () => directory.current(), presence: (id) => presence.get(id), config: () => config })],
})
const base = await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
const tokens = Object.fromEntries(await Promise.all(ROLES.map(async (role) => [role, await createApiToken(db.pool, { id: `u-${role}`, name: role, role })])))

interface View { id: string; name: string; groupId: string | null; groupName: string | null; extension: string | null; mobile: string | null; presence: string }
const search = async (qs: string, role = 'agent') => {
  const res = await fetch(`${base}/api/employees?${qs}`, { headers: { authorization: `Bearer ${tokens[role]}` } })
  return { status: res.status, body: await res.json() as { items: View[]; total: number; detail?: string } }
}
const ids = (r: { body: { items: View[] } }) => r.body.items.map((e) => e.id)

t.test('name search: substring, any case, Cyrillic, ё = е, every word', async (t) => {
  t.same(ids(await search(`q=${encodeURIComponent('анна')}`)), ['e-anna'])
  t.same(ids(await search(`q=${encodeURIComponent('ПЕТРОВ')}`)), ['e-anna', 'e-olga'], 'substring of two surnames, sorted by name')
  t.same(ids(await search(`q=${encodeURIComponent('петр')}`)), ['e-anna', 'e-olga', 'e-petr'], 'Пётр matches петр (ё = е)')
  t.same(ids(await search(`q=${encodeURIComponent('ёлкин пётр')}`)), ['e-petr'], 'words in any order')
  t.same(ids(await search(`q=${encodeURIComponent('приемной')}`)), ['e-sec'], 'ё in the name, е in the query')
  t.same(ids(await search('q=smith')), ['e-john'], 'Latin too')
  t.same(ids(await search(`q=${encodeURIComponent('анна иванова')}`)), [], 'every word must match')
})

t.test('group, extension, mobile in any notation; presence now', async (t) => {
  const group = await search('group=sales-2')
  t.same(ids(group), ['e-olga', 'e-john'], 'sorted by name, Russian collation (Cyrillic first)')
  t.same(group.body.items.map((e) => [e.id, e.presence]), [['e-olga', 'on_call'], ['e-john', 'offline']], 'presence with each, offline when unknown')
  t.equal(group.body.items[0].groupName, 'Продажи — группа 2')
  const ext = await search('extension=1001')
  t.match(ext.body.items, [{ id: 'e-anna', name: 'Анна Петрова', extension: '1001', mobile: '+79161234567', presence: 'ready' }])
  for (const m of ['8 (916) 123-45-67', '+7 916 123 4567', '79161234567']) {
    t.same(ids(await search(`mobile=${encodeURIComponent(m)}`)), ['e-anna'], `mobile ${m}`)
  }
  t.same(ids(await search(`mobile=${encodeURIComponent('+7 913 111-22-33')}`)), ['e-olga'], 'a mobile stored as 8913… was normalised at load')
  t.same(ids(await search(`group=sales-1&q=${encodeURIComponent('петр')}`)), ['e-anna', 'e-petr'], 'filters combine')
  t.same(ids(await search(`group=sales-2&q=${encodeURIComponent('петр')}`)), ['e-olga'])
  t.same(ids(await search('state=ready')), ['e-anna'], 'only who is ready (for transfers)')
  const limited = await search('limit=2')
  t.equal(limited.body.items.length, 2)
  t.equal(limited.body.total, 5, 'total tells how many matched')
})

t.test('bad input', async (t) => {
  const bad = await search(`mobile=${encodeURIComponent('not a phone')}`)
  t.equal(bad.status, 400)
  t.match(bad.body.detail, /cannot be normalised to E\.164/)
  t.equal((await search('limit=0')).status, 400)
  t.equal((await search('limit=100000')).status, 400)
  t.equal((await search(`q=${'я'.repeat(101)}`)).status, 400, 'q is bounded')
  t.equal((await search('foo=1')).status, 400, 'unknown parameters refused')
  t.same(ids(await search('extension=9999')), [], 'unknown extension: empty list')
})

t.test('one employee; roles', async (t) => {
  const one = await fetch(`${base}/api/employees/e-olga`, { headers: { authorization: `Bearer ${tokens.qa}` } })
  t.equal(one.status, 200)
  t.match(await one.json(), { id: 'e-olga', name: 'Ольга Петровская', groupId: 'sales-2', mobile: '+79131112233', presence: 'on_call' })
  const missing = await fetch(`${base}/api/employees/nobody`, { headers: { authorization: `Bearer ${tokens.admin}` } })
  t.equal(missing.status, 404)
  t.match(missing.headers.get('content-type'), /application\/problem\+json/)
  for (const role of ROLES) t.equal((await search('q=a', role)).status, 200, `${role} may search`)
  t.equal((await fetch(`${base}/api/employees`)).status, 401, 'not without a token')
})

t.test('a directory reload (import on any node) is seen by the next search', async (t) => {
  await db.pool.query(`INSERT INTO employees (id, name, role, group_id, extension) VALUES ('e-new', 'Новый Сотрудник', 'agent', 'sales-1', '1009')`)
  await directory.reload('test')
  t.same(ids(await search(`q=${encodeURIComponent('новый')}`)), ['e-new'])
})
