// The CRM routes on the real fastify app (auth, problem details, OpenAPI) against a real
// embedded Postgres: streamed imports as admin, 401/403, oversized and garbage bodies,
// the client card by phone.
import t from 'tap'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { Readable } from 'node:stream'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { silentLogger } from '../src/log.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { crmRoutes } from '../src/crm/http.ts'
import { validateSwitchboardFile } from '../src/config/switchboard-file.ts'

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crm')
const read = (name: string) => readFileSync(path.join(fixtures, name))
const wk = { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' }
const config = validateSwitchboardFile({
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk }, { id: 'nsk', name: 'Новосибирск', tz: 'Asia/Novosibirsk', hours: wk }],
  groups: [{ id: 'g1', name: 'Sales 1' }, { id: 'g2', name: 'Sales 2' }],
  queues: ['sales', 'production', 'finance'].map((id) => ({ id, name: id })),
})

let db: TestDatabase
let app: FastifyInstance
const tokens: Record<string, string> = {}
t.before(async () => {
  db = await startTestDatabase()
  const log = silentLogger()
  app = await buildHttpApp({
    log, pool: db.pool, registry: new Registry(), readiness: [],
    plugins: [crmRoutes({ pool: db.pool, log, config: () => config, maxImportBytes: 64 * 1024 })],
  })
  for (const role of ['admin', 'qa', 'agent'] as const) tokens[role] = await createApiToken(db.pool, { id: `u-${role}`, name: role, role })
})
t.teardown(async () => { await app?.close(); await db?.close() })

const auth = (role: string) => ({ authorization: `Bearer ${tokens[role]}` })
const post = (type: string, body: string | Buffer | Readable, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/api/crm/import?type=${type}`, headers, payload: body })

/** POST with Transfer-Encoding: chunked over a real socket; write errors after an early answer are expected. */
async function chunkedPost(chunks: string[]): Promise<{ status: number; body: string }> {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const url = new URL('/api/crm/import?type=clients', address)
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...auth('admin'), 'content-type': 'text/csv', connection: 'close' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code !== 'EPIPE' && (err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
    const write = (i: number) => {
      if (i >= chunks.length) { req.end(); return }
      req.write(chunks[i], () => setImmediate(write, i + 1))
    }
    write(0)
  })
}

t.test('admin imports employees then clients (CSV) and gets the report', async (t) => {
  const e = await post('employees', read('employees.csv'), { ...auth('admin'), 'content-type': 'text/csv' })
  t.equal(e.statusCode, 200, e.body)
  t.match(e.json(), { kind: 'employees', state: 'succeeded', rows: { read: 9, imported: 5, rejected: 4 } })
  const c = await post('clients', read('clients.csv'), { ...auth('admin'), 'content-type': 'text/csv; charset=utf-8' })
  t.equal(c.statusCode, 200, c.body)
  const r = c.json()
  t.match(r, { kind: 'clients', format: 'csv', delimiter: ';', rows: { read: 12, imported: 7, rejected: 5 }, phones: { imported: 7, rejected: 2 } })
  t.same(r.problems.map((p: { line: number; code: string }) => `${p.line}:${p.code}`),
    ['7:missing_id', '8:bad_segment', '9:bad_kind', '10:unknown_manager', '11:bad_phone', '12:duplicate_phone', '13:bad_tz'])
  const run = await db.pool.query('SELECT actor, state FROM import_runs WHERE id = $1', [r.runId])
  t.same(run.rows[0], { actor: 'u-admin', state: 'succeeded' })
})

t.test('JSON array and JSON Lines bodies (a streamed body without Content-Length too)', async (t) => {
  const a = await post('clients', read('clients.json'), { ...auth('admin'), 'content-type': 'application/json' })
  t.equal(a.statusCode, 200, a.body)
  t.match(a.json(), { format: 'json', rows: { read: 5, imported: 3, rejected: 2 } })
  const chunks = read('clients.jsonl').toString().match(/[\s\S]{1,17}/g)!
  const l = await post('clients', Readable.from(chunks), { ...auth('admin'), 'content-type': 'application/x-ndjson' })
  t.equal(l.statusCode, 200, l.body)
  t.match(l.json(), { format: 'jsonl', rows: { read: 5, imported: 3, rejected: 2 } })
})

t.test('roles: qa 403, no token 401, agent may not import', async (t) => {
  const csv = 'client_id,name\nq1,Q\n'
  t.equal((await post('clients', csv, { ...auth('qa'), 'content-type': 'text/csv' })).statusCode, 403)
  t.equal((await post('clients', csv, { ...auth('agent'), 'content-type': 'text/csv' })).statusCode, 403)
  const anon = await post('clients', csv, { 'content-type': 'text/csv' })
  t.equal(anon.statusCode, 401)
  t.equal(anon.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(await db.pool.query(`SELECT 1 FROM clients WHERE id = 'q1'`).then((r) => r.rowCount), 0, 'nothing imported')
})

t.test('oversized and garbage bodies get a clear 4xx', async (t) => {
  const big = 'client_id,name,phone\n' + Array.from({ length: 4000 }, (_, i) => `b${i},Big ${i},+7495${String(i).padStart(7, '0')}`).join('\n')
  const tooBig = await post('clients', big, { ...auth('admin'), 'content-type': 'text/csv' })
  t.equal(tooBig.statusCode, 413)
  t.match(tooBig.json(), { code: 'payload_too_large', status: 413 })
  // Without Content-Length (chunked, real socket) the importer counts while it reads.
  const streamed = await chunkedPost(big.match(/[\s\S]{1,4096}/g)!)
  t.equal(streamed.status, 413)
  t.match(JSON.parse(streamed.body), { code: 'payload_too_large' })

  const binary = await post('clients', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x41, 0x42]), { ...auth('admin'), 'content-type': 'text/csv' })
  t.equal(binary.statusCode, 400)
  t.match(binary.json(), { code: 'import_invalid', detail: /UTF-8|binary/ })
  const badJson = await post('clients', '[{"client_id":"x1"},\n{"client_id": nope}]', { ...auth('admin'), 'content-type': 'application/json' })
  t.equal(badJson.statusCode, 400)
  t.match(badJson.json(), { code: 'import_invalid', line: 2, detail: /line 2: invalid JSON/ })
  const notCsv = await post('clients', 'hello world\nthis is not an export\n', { ...auth('admin'), 'content-type': 'text/csv' })
  t.equal(notCsv.statusCode, 400)
  t.match(notCsv.json(), { detail: /not a CSV header/ })
  const octet = await post('clients', 'x', { ...auth('admin'), 'content-type': 'application/octet-stream' })
  t.equal(octet.statusCode, 415)
  const empty = await app.inject({ method: 'POST', url: '/api/crm/import', headers: auth('admin') })
  t.equal(empty.statusCode, 400)
  const badType = await post('suppliers', 'a,b\n', { ...auth('admin'), 'content-type': 'text/csv' })
  t.equal(badType.statusCode, 400)
})

t.test('client card by phone: any notation, 404 and 400 as problem details', async (t) => {
  const ok = await app.inject({ method: 'GET', url: `/api/clients/by-phone/${encodeURIComponent('8 (495) 111-00-02')}`, headers: auth('agent') })
  t.equal(ok.statusCode, 200, ok.body)
  t.same(ok.json(), {
    id: 'c1', name: 'ООО "Ромашка"', inn: '7701000001', segment: 'A', kind: 'client', region: 'Москва', tz: 'Europe/Moscow',
    phone: '+74951110002', phones: ['+74951110001', '+74951110002'], attributes: { industry: 'retail' },
    updatedAt: ok.json().updatedAt,
    manager: { id: 'm1', name: 'Иван Петров', extension: '101', mobile: '+79161000001', groupId: 'g1' },
  })
  const e164 = await app.inject({ method: 'GET', url: `/api/clients/by-phone/${encodeURIComponent('+74951110001')}`, headers: auth('qa') })
  t.equal(e164.json().id, 'c1')
  const missing = await app.inject({ method: 'GET', url: '/api/clients/by-phone/84950000000', headers: auth('agent') })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { code: 'not_found', status: 404 })
  const bad = await app.inject({ method: 'GET', url: '/api/clients/by-phone/abc', headers: auth('agent') })
  t.equal(bad.statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: '/api/clients/by-phone/84951110001' })).statusCode, 401)
})

t.test('the routes are in the OpenAPI document', async (t) => {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.ok(doc.paths['/api/crm/import']?.post)
  t.ok(doc.paths['/api/clients/by-phone/{phone}']?.get)
})
