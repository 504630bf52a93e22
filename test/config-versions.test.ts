// Config versions on the real HTTP app and a real embedded Postgres: invalid proposals
// name the field, the dry run replays recorded calls through old and new config,
// activate + rollback are audited, roles are enforced, the file is the fallback.
import t from 'tap'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { silentLogger } from '../src/log.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { validateSwitchboardFile } from '../src/config/switchboard-file.ts'
import { ConfigVersions, diffPaths } from '../src/config/versions.ts'
import { configRoutes } from '../src/config/http.ts'
import { buildDirectory } from '../src/crm/directory.ts'

const log = silentLogger()
const wk = { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' }
const doc = (unknownQueue: string, extra: Record<string, unknown> = {}) => ({
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk }],
  groups: [{ id: 'g1', name: 'Sales 1' }],
  dids: { '+74951230000': { source: 'site', noIvr: true, officeId: 'msk' } },
  ivr: [{ id: 'main', prompt: 'ivr/main.wav', options: { '1': { label: 'Sales', action: 'queue', target: 'sales' } } }],
  queues: ['sales', 'production', 'finance', 'callcentre'].map((id) => ({ id, name: id })),
  routing: { kindRoutes: { unknown: unknownQueue, client: 'sales' } },
  ...extra,
})
const fileConfig = validateSwitchboardFile(doc('sales'))
const directory = buildDirectory({
  clients: [{ id: 'k1', name: 'Known', segment: 'A', kind: 'client', assignedManagerId: 'm1', phones: ['+74950000001'] }],
  employees: [{ id: 'm1', name: 'Manager', role: 'manager', groupId: 'g1' }],
  groups: fileConfig.groups,
}, { defaultRegion: 'RU' })

let db: TestDatabase
let app: FastifyInstance
let versions: ConfigVersions
const tokens: Record<string, string> = {}
t.before(async () => {
  db = await startTestDatabase()
  versions = new ConfigVersions({ pool: db.pool, log, fallback: () => fileConfig, directory: () => directory })
  app = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [configRoutes({ versions })] })
  for (const role of ['admin', 'supervisor', 'qa'] as const) tokens[role] = await createApiToken(db.pool, { id: `u-${role}`, name: role, role })
  // Recorded calls: Wednesday 2025-06-04 12:00 Moscow; 5 unknown callers, 2 from the known client.
  const at = new Date('2025-06-04T09:00:00Z')
  for (let i = 0; i < 7; i++) {
    const caller = i < 5 ? `+7916000000${i}` : '84950000001'
    await db.pool.query(`INSERT INTO calls (uuid, direction, caller, did, started_at) VALUES ($1, 'inbound', $2, '+74951230000', $3)`,
      [randomUUID(), caller, new Date(at.getTime() + i * 60_000)])
  }
  await db.pool.query(`INSERT INTO calls (uuid, direction, caller, did, started_at) VALUES ($1, 'outbound', '+74951230000', '+74951230000', now())`, [randomUUID()])
})
t.teardown(async () => { await app?.close(); await db?.close() })

const auth = (role: string) => ({ authorization: `Bearer ${tokens[role]}` })
const req = (method: 'GET' | 'POST', url: string, role?: string, payload?: unknown) =>
  app.inject({ method, url, headers: role ? auth(role) : {}, ...(payload === undefined ? {} : { payload: payload as object }) })

t.test('with no version the file config is served', async (t) => {
  const r = await req('GET', '/api/config', 'supervisor')
  t.equal(r.statusCode, 200)
  t.match(r.json(), { version: null, source: 'file', document: { routing: { kindRoutes: { unknown: 'sales' } } } })
  t.match(await versions.loadActive(), { version: null, source: 'file' })
})

t.test('an invalid proposal is a 400 naming the field; nothing is stored', async (t) => {
  const bad = doc('sales')
  ;(bad.queues[1] as Record<string, unknown>).strategy = 'random'
  const r = await req('POST', '/api/config/versions', 'admin', bad)
  t.equal(r.statusCode, 400)
  const p = r.json()
  t.match(p, { code: 'config_invalid', detail: /^queues\[1\]\.strategy: must be one of/ })
  t.equal(p.problems[0].path, 'queues[1].strategy')
  const ref = await req('POST', '/api/config/versions', 'admin', doc('nowhere'))
  t.equal(ref.statusCode, 400)
  t.match(ref.json(), { detail: 'routing.kindRoutes.unknown: unknown queue "nowhere"' })
  const notObject = await app.inject({ method: 'POST', url: '/api/config/versions', headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: '[1,2]' })
  t.equal(notObject.statusCode, 400)
  t.equal((await db.pool.query('SELECT 1 FROM config_versions')).rowCount, 0)
})

t.test('propose → dry run → activate → propose → activate → rollback, every step audited', async (t) => {
  const v1 = await req('POST', '/api/config/versions?comment=first', 'admin', doc('sales'))
  t.equal(v1.statusCode, 201, v1.body)
  t.match(v1.json(), { version: 1, valid: true, changedPaths: [], dryRun: { baseline: 'file', calls: 7, changed: 0, unchanged: 7 } })

  const a1 = await req('POST', '/api/config/versions/1/activate', 'admin')
  t.equal(a1.statusCode, 200, a1.body)
  t.same(a1.json(), { version: 1, previousVersion: null, changedPaths: [], changed: true })

  const v2 = await req('POST', '/api/config/versions?comment=unknown%20callers%20to%20the%20call%20centre', 'admin', doc('callcentre'))
  t.equal(v2.statusCode, 201, v2.body)
  const dry = v2.json().dryRun
  t.same(v2.json().changedPaths, ['routing.kindRoutes'])
  t.match(dry, { baseline: 'active', baselineVersion: 1, calls: 7, changed: 5, unchanged: 2, errors: 0 })
  t.equal(dry.changes.length, 1)
  t.match(dry.changes[0], { before: /^queue:sales/, after: /^queue:callcentre/, count: 5 })
  t.equal(dry.examples.length, 5)
  t.match(dry.examples[0], { did: '+74951230000', before: /queue:sales/, after: /queue:callcentre/ })
  t.ok(dry.examples[0].reasons.length > 0)

  const seen: number[] = []
  versions.onChange((_cfg, v) => seen.push(v))
  t.match((await req('POST', '/api/config/versions/2/activate', 'admin')).json(), { version: 2, previousVersion: 1, changedPaths: ['routing.kindRoutes'] })
  t.match((await req('GET', '/api/config', 'admin')).json(), { version: 2, source: 'db', document: { routing: { kindRoutes: { unknown: 'callcentre' } } } })
  t.same((await req('POST', '/api/config/versions/2/activate', 'admin')).json(), { version: 2, previousVersion: 2, changedPaths: [], changed: false }, 'activating the active version is a no-op')

  const rb = await req('POST', '/api/config/rollback', 'admin')
  t.equal(rb.statusCode, 200, rb.body)
  t.same(rb.json(), { version: 1, previousVersion: 2, changedPaths: ['routing.kindRoutes'], changed: true })
  t.match(await versions.loadActive(), { version: 1, source: 'db', config: { routing: { kindRoutes: { unknown: 'sales' } } } })
  t.same(seen, [2, 1])
  const again = await req('POST', '/api/config/rollback', 'admin')
  t.equal(again.statusCode, 409, 'version 1 was the first one activated')
  t.match(again.json(), { code: 'config_conflict' })

  const list = (await req('GET', '/api/config/versions', 'supervisor')).json().versions
  t.match(list, [{ version: 2, active: false, comment: 'unknown callers to the call centre' }, { version: 1, active: true, author: 'u-admin', activatedBy: 'u-admin' }])
  const one = (await req('GET', '/api/config/versions/2', 'admin')).json()
  t.match(one, { version: 2, dryRun: { changed: 5 }, document: { routing: { kindRoutes: { unknown: 'callcentre' } } } })

  const audit = await db.pool.query(`SELECT actor, action, subject, details FROM audit_log WHERE action LIKE 'config.%' ORDER BY id`)
  t.same(audit.rows.map((r) => [r.actor, r.action, r.subject, r.details.changedPaths]), [
    ['u-admin', 'config.activate', 'config:1', []],
    ['u-admin', 'config.activate', 'config:2', ['routing.kindRoutes']],
    ['u-admin', 'config.rollback', 'config:1', ['routing.kindRoutes']],
  ])
  t.match(audit.rows[2].details, { version: 1, previousVersion: 2 })
  t.match(await verifyAuditChain(db.pool), { ok: true }, 'config changes are links of the audit hash chain')
})

t.test('rollback walks back through the activation history', async (t) => {
  // history so far: 1, 2, (rollback) 1. Activate 2 then 3: rollbacks go 3 → 2 → 1.
  await versions.activate(2, 'ops')
  const v3 = await versions.propose(doc('production'), 'ops', 'third')
  await versions.activate(v3.version, 'ops')
  t.equal((await versions.rollback('ops')).version, 2)
  t.equal((await versions.rollback('ops')).version, 1)
  await t.rejects(versions.rollback('ops'), { code: 'config_conflict' })
})

t.test('roles, unknown versions, prompt files', async (t) => {
  t.equal((await req('GET', '/api/config', 'qa')).statusCode, 403)
  t.equal((await req('GET', '/api/config')).statusCode, 401)
  t.equal((await req('POST', '/api/config/versions', 'supervisor', doc('sales'))).statusCode, 403)
  t.equal((await req('POST', '/api/config/rollback', 'supervisor')).statusCode, 403)
  t.equal((await req('POST', '/api/config/versions/999/activate', 'admin')).statusCode, 404)

  const prompts = await mkdtemp(path.join(tmpdir(), 'sb-prompts-'))
  t.teardown(() => rm(prompts, { recursive: true, force: true }))
  const strict = new ConfigVersions({ pool: db.pool, log, promptsDir: prompts })
  await t.rejects(strict.propose(doc('sales'), 'ops'), { code: 'config_invalid', message: /^ivr\[0\]\.prompt: prompt file not found/ })
  await mkdir(path.join(prompts, 'ivr'))
  await writeFile(path.join(prompts, 'ivr', 'main.wav'), 'RIFF')
  await writeFile(path.join(prompts, 'after-hours.wav'), 'RIFF')
  const ok = await strict.propose(doc('sales'), 'ops')
  t.ok(ok.version > 0)
})

t.test('diffPaths', async (t) => {
  t.same(diffPaths({ a: 1, b: { c: 1, d: [1] } }, { a: 1, b: { c: 2, d: [1] }, e: 1 }), ['b.c', 'e'])
  t.same(diffPaths({ q: [1, 2] }, { q: [1, 3] }), ['q'])
})
