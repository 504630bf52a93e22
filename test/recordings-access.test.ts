import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { startTestDatabase } from './support/db.ts'
import { accessApp, addRecording, bearer, makeTokens, seedDirectory, tempFsStore, type Rec, type Tokens } from './recordings-access.fixtures.ts'
import type { Role } from '../src/http/auth/tokens.ts'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
const store = await tempFsStore()
await seedDirectory(db.pool)
const tokens: Tokens = await makeTokens(db.pool)
const app: FastifyInstance = await accessApp(db.pool, store)
t.teardown(() => app.close())

// 30 recordings over 30 hours, newest first = r[29]
const base = Date.parse('2025-03-01T00:00:00Z')
const recs: Rec[] = []
for (let i = 0; i < 30; i++) {
  recs.push(await addRecording(db.pool, store, {
    createdAt: new Date(base + i * 3_600_000),
    clientId: i % 3 === 0 ? 'c1' : i % 3 === 1 ? 'c2' : null,
    agentId: i % 2 === 0 ? 'a1' : 'a2',
    direction: i % 5 === 0 ? 'outbound' : 'inbound',
    caller: i % 3 === 1 ? '+78121112233' : '+74951234567',
    callee: i % 5 === 0 ? '+79990001122' : '7101',
    did: i % 4 === 0 ? '+74951112233' : '+74959990000',
    sourceTag: i % 4 === 0 ? 'yandex' : 'site',
    queueId: i % 2 === 0 ? 'sales' : 'support',
    outcome: i % 7 === 0 ? 'abandoned' : 'answered',
    csat: i % 10 === 0 ? null : (i % 10) + 1,
    durationMs: 10_000 + i * 10_000,
    metrics: { durationMs: 10_000 + i * 10_000, overtalkMs: i * 100, channels: [{ talkMs: i * 1000, silenceMs: 0, talk: [] }, { talkMs: i * 1000, silenceMs: 0, talk: [] }], silences: [] },
  }))
}
const newestFirst = [...recs].reverse()

async function get(url: string, role: Role | null = 'qa', headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers: { ...(role ? bearer(tokens[role]) : {}), ...headers } })
}
async function search(qs: string, role: Role = 'qa'): Promise<{ items: Array<{ id: string }>; nextCursor: string | null }> {
  const res = await get(`/api/recordings?${qs}`, role)
  if (res.statusCode !== 200) throw new Error(`search ${qs} → ${res.statusCode} ${res.body}`)
  return res.json()
}
const ids = (pred: (i: number) => boolean) => newestFirst.filter((_, k) => pred(29 - k)).map((r) => r.id)

t.test('role matrix: 401 without token, 403 wrong role, 2xx right role, for every route', async (t) => {
  const hold = (await app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens.legal), payload: { scope: 'recording', id: recs[0].id, reason: 'matrix', caseRef: 'CASE-MATRIX' } })).json<{ id: number }>()
  const r = recs[1].id
  const routes: Array<{ method: 'GET' | 'POST' | 'DELETE'; url: string; roles: Role[]; payload?: () => unknown; ok: number[] }> = [
    { method: 'GET', url: '/api/recordings', roles: ['qa', 'supervisor', 'legal', 'admin'], ok: [200] },
    { method: 'GET', url: `/api/recordings/${r}`, roles: ['qa', 'supervisor', 'legal', 'admin'], ok: [200] },
    { method: 'GET', url: `/api/recordings/${r}/audio`, roles: ['qa', 'supervisor', 'legal', 'admin'], ok: [200] },
    { method: 'GET', url: `/api/recordings/${r}/download-url`, roles: ['qa', 'supervisor', 'legal', 'admin'], ok: [409] }, // filesystem store: no presigned URLs
    { method: 'POST', url: `/api/recordings/${r}/verify`, roles: ['qa', 'supervisor', 'legal', 'admin'], ok: [200] },
    { method: 'GET', url: `/api/recordings/${r}/audit`, roles: ['legal', 'admin'], ok: [200] },
    { method: 'GET', url: '/api/audit/verify', roles: ['legal', 'admin'], ok: [200] },
    { method: 'GET', url: '/api/clients/c1/card', roles: ['agent', 'qa', 'supervisor', 'legal', 'admin'], ok: [200] },
    { method: 'GET', url: '/api/legal-holds', roles: ['legal', 'admin'], ok: [200] },
    { method: 'GET', url: `/api/legal-holds/${hold.id}`, roles: ['legal', 'admin'], ok: [200] },
    { method: 'POST', url: '/api/legal-holds', roles: ['legal'], payload: () => ({ scope: 'recording', id: r, reason: 'matrix', caseRef: 'CASE-MATRIX' }), ok: [201] },
    { method: 'DELETE', url: `/api/legal-holds/${hold.id}`, roles: ['legal'], payload: () => ({ reason: 'matrix done' }), ok: [200] },
    { method: 'GET', url: '/api/retention/preview', roles: ['legal', 'admin'], ok: [200] },
    { method: 'POST', url: '/api/exports', roles: ['legal', 'admin'], payload: () => ({ callUuid: recs[2].callUuid }), ok: [200] },
  ]
  const all: Role[] = ['agent', 'qa', 'supervisor', 'legal', 'admin']
  for (const route of routes) {
    const anon = await app.inject({ method: route.method, url: route.url, payload: route.payload?.() as object })
    t.equal(anon.statusCode, 401, `${route.method} ${route.url} without token`)
    t.match(anon.headers['content-type'], /^application\/problem\+json/)
    for (const role of all) {
      const res = await app.inject({ method: route.method, url: route.url, headers: bearer(tokens[role]), payload: route.payload?.() as object })
      if (route.roles.includes(role)) {
        // DELETE of an already-lifted hold answers 409: the first allowed role lifts it
        const expect = route.method === 'DELETE' ? [200, 409] : route.ok
        t.ok(expect.includes(res.statusCode), `${route.method} ${route.url} as ${role} → ${res.statusCode} ${res.statusCode >= 300 ? res.body.slice(0, 200) : ''}`)
      } else {
        t.equal(res.statusCode, 403, `${route.method} ${route.url} as ${role} is forbidden`)
      }
    }
  }
  // leave no hold behind for the later tests
  const active = (await app.inject({ method: 'GET', url: '/api/legal-holds?active=true', headers: bearer(tokens.admin) })).json<{ holds: Array<{ id: number }> }>().holds
  for (const h of active) t.equal((await app.inject({ method: 'DELETE', url: `/api/legal-holds/${h.id}`, headers: bearer(tokens.legal), payload: { reason: 'cleanup' } })).statusCode, 200)
})

t.test('search: filters', async (t) => {
  const all = await search('limit=200')
  t.same(all.items.map((i) => i.id), newestFirst.map((r) => r.id), 'everything, time desc')
  t.same((await search('clientId=c1&limit=200')).items.map((i) => i.id), ids((i) => i % 3 === 0), 'clientId')
  t.same((await search('clientName=acm&limit=200')).items.map((i) => i.id), ids((i) => i % 3 === 0), 'client name prefix, case-insensitive')
  t.same((await search('clientName=ac&limit=200')).items.map((i) => i.id), ids((i) => i % 3 === 0), 'prefix "ac" matches Acme and Acorn (no recordings)')
  t.same((await search(`clientName=${encodeURIComponent('Beta%_')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 3 === 1), 'LIKE wildcards in the prefix are data')
  t.same((await search(`clientName=${encodeURIComponent('%')}&limit=200`)).items, [], '% alone matches no name starting with %')
  t.same((await search('inn=7807654321&limit=200')).items.map((i) => i.id), ids((i) => i % 3 === 1), 'INN')
  t.same((await search(`clientPhone=${encodeURIComponent('+74957654321')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 3 === 0), 'any phone of the client')
  t.same((await search(`clientPhone=${encodeURIComponent('8 (495) 765-43-21')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 3 === 0), 'phone normalised to E.164')
  t.same((await search(`phone=${encodeURIComponent('+79990001122')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 5 === 0), 'callee phone')
  t.same((await search(`phone=${encodeURIComponent('+78121112233')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 3 === 1), 'caller phone')
  t.same((await search('agent=a2&limit=200')).items.map((i) => i.id), ids((i) => i % 2 === 1), 'agent')
  t.same((await search('queue=sales&limit=200')).items.map((i) => i.id), ids((i) => i % 2 === 0), 'queue')
  t.same((await search(`did=${encodeURIComponent('+74951112233')}&limit=200`)).items.map((i) => i.id), ids((i) => i % 4 === 0), 'DID')
  t.same((await search('source=yandex&limit=200')).items.map((i) => i.id), ids((i) => i % 4 === 0), 'source tag')
  t.same((await search('direction=outbound&limit=200')).items.map((i) => i.id), ids((i) => i % 5 === 0), 'direction')
  t.same((await search('outcome=abandoned&limit=200')).items.map((i) => i.id), ids((i) => i % 7 === 0), 'outcome')
  t.same((await search('from=2025-03-01T10:00:00Z&to=2025-03-01T12:00:00Z')).items.map((i) => i.id), [recs[11].id, recs[10].id], 'date range [from, to)')
  t.same((await search('minDurationMs=250000&maxDurationMs=270000')).items.map((i) => i.id), [recs[26].id, recs[25].id, recs[24].id], 'duration')
  t.same((await search('csatMin=9&csatMax=10&limit=200')).items.map((i) => i.id), ids((i) => i % 10 >= 8), 'CSAT range')
  // talk = 2*i s - overtalk i*100 ms; silence = duration - talk
  t.same((await search('minTalkMs=50000&limit=200')).items.map((i) => i.id), ids((i) => 2000 * i - 100 * i >= 50_000), 'talk min')
  t.same((await search('maxSilenceMs=60000&limit=200')).items.map((i) => i.id), ids((i) => 10_000 + 10_000 * i - (1900 * i) <= 60_000), 'silence max')
  t.same((await search('minOvertalkMs=2800&limit=200')).items.map((i) => i.id), [recs[29].id, recs[28].id], 'overtalk')
  t.same((await search('legalHold=true&limit=200')).items.map((i) => i.id), [], 'none held yet (matrix hold lifted)')
  const combo = await search('agent=a1&queue=sales&direction=inbound&clientId=c1&limit=200')
  t.same(combo.items.map((i) => i.id), ids((i) => i % 6 === 0 && i % 5 !== 0), 'filters combine with AND')
  const item = (await search(`callUuid=${recs[3].callUuid}`)).items[0] as Record<string, unknown>
  t.match(item, { id: recs[3].id, clientName: 'Acme Trading', agentName: 'Boris Agent', direction: 'inbound', queueId: 'support', csat: 4, talkMs: 5700, silenceMs: 34_300, overtalkMs: 300, bytes: 4096, sha256: recs[3].sha256 })
})

t.test('search: keyset pagination is complete, ordered and stable under inserts', async (t) => {
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page: { items: Array<{ id: string }>; nextCursor: string | null } = await search(`limit=7${cursor ? `&cursor=${cursor}` : ''}`)
    seen.push(...page.items.map((i) => i.id))
    cursor = page.nextCursor
    pages++
    if (pages === 2) await addRecording(db.pool, store, { createdAt: new Date(base + 100 * 3_600_000), clientId: null }) // newer than everything: must not shift later pages
  } while (cursor)
  t.equal(pages, 5)
  t.same(seen, newestFirst.map((r) => r.id), 'every recording once, time desc')
  // identical created_at: id breaks the tie
  const same = new Date(base - 86_400_000)
  const twins = [await addRecording(db.pool, store, { createdAt: same, clientId: 'c3' }), await addRecording(db.pool, store, { createdAt: same, clientId: 'c3' }), await addRecording(db.pool, store, { createdAt: same, clientId: 'c3' })]
  const p1 = await search('clientId=c3&limit=2')
  const p2 = await search(`clientId=c3&limit=2&cursor=${p1.nextCursor}`)
  t.same([...p1.items, ...p2.items].map((i) => i.id), twins.map((x) => x.id).sort().reverse())
  t.equal(p2.nextCursor, null)
})

t.test('search by client-name prefix: merged per-client top-N, keyset pages, other filters', async (t) => {
  await db.pool.query(`INSERT INTO clients (id, name, segment, kind) VALUES ('c4', 'ACME Second', 'B', 'client')`)
  type Known = { id: string; at: number; agent: string }
  const more: Known[] = []
  for (let i = 0; i < 8; i++) {
    const at = base + i * 4 * 3_600_000 + 1_800_000 // between two of c1's recordings
    const agent = i % 2 === 0 ? 'a1' : 'a2'
    more.push({ id: (await addRecording(db.pool, store, { createdAt: new Date(at), clientId: 'c4', agentId: agent })).id, at, agent })
  }
  const c1: Known[] = recs.map((r, i) => ({ id: r.id, at: base + i * 3_600_000, agent: i % 2 === 0 ? 'a1' : 'a2' })).filter((_, i) => i % 3 === 0)
  const expected = [...c1, ...more].sort((x, y) => y.at - x.at)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page: { items: Array<{ id: string }>; nextCursor: string | null } = await search(`clientName=acme&limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    seen.push(...page.items.map((i) => i.id))
    cursor = page.nextCursor
    pages++
  } while (cursor && pages < 20)
  t.same(seen, expected.map((r) => r.id), 'both Acme clients, merged time desc, every recording once')
  t.equal(pages, Math.ceil(expected.length / 3))
  const withAgent = (await search('clientName=acme&agent=a2&limit=200')).items.map((i) => i.id)
  t.same(withAgent, expected.filter((r) => r.agent === 'a2').map((r) => r.id), 'prefix + agent')
  const firstTwo = await search('clientName=acme&limit=2')
  t.same(firstTwo.items.map((i) => i.id), expected.slice(0, 2).map((r) => r.id))
  t.ok(firstTwo.nextCursor, 'a next page')
  // leave the directory as the later tests expect it
  await db.pool.query(`DELETE FROM recordings WHERE client_id = 'c4'`)
  await db.pool.query(`DELETE FROM clients WHERE id = 'c4'`)
})

t.test('search: strict query, bad input → 400 problem details, SQL characters are data', async (t) => {
  for (const qs of ['bogus=1', 'limit=201', 'limit=0', 'direction=sideways', 'csatMin=11', 'from=yesterday', 'cursor=not-a-cursor', `cursor=${Buffer.from('1.x').toString('base64url')}`, 'inn=12%27%3B--', 'from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z']) {
    const res = await get(`/api/recordings?${qs}`)
    t.equal(res.statusCode, 400, qs)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.notMatch(res.body, /at .*\.ts:\d+/, 'no stack trace')
  }
  for (const evil of ["x' OR '1'='1", 'a1; DROP TABLE recordings; --', "c1') OR true --", '\\', '%%']) {
    for (const field of ['agent', 'clientId', 'queue', 'outcome', 'clientName', 'phone']) {
      const res = await get(`/api/recordings?${field}=${encodeURIComponent(evil)}`)
      t.equal(res.statusCode, 200, `${field}=${evil}`)
      t.same(res.json().items, [], `${field}=${evil} matches nothing`)
    }
  }
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM recordings')).rows[0].n > 30, true, 'table still there')
  const long = await get(`/api/recordings?clientName=${'a'.repeat(5000)}`)
  t.equal(long.statusCode, 414, 'oversized query → 414')
  const tooLongField = await get(`/api/recordings?clientName=${'a'.repeat(300)}`)
  t.equal(tooLongField.statusCode, 400, 'over-long filter value → 400')
})

t.test('search is audited', async (t) => {
  const before = (await db.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'search' AND actor = 'u-supervisor'`)).rows[0].n
  await search('agent=a1', 'supervisor')
  const rows = (await db.pool.query(`SELECT details FROM audit_log WHERE action = 'search' AND actor = 'u-supervisor' ORDER BY id`)).rows
  t.equal(rows.length, before + 1)
  t.match(rows[rows.length - 1].details, { filters: { agent: 'a1' }, page: 'first' })
})

t.test('ids: unknown → 404, malformed or path-like → 400/404, nothing leaks', async (t) => {
  const unknown = await get('/api/recordings/00000000-0000-4000-8000-000000000000')
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), { code: 'not_found', status: 404 })
  for (const bad of ['not-a-uuid', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e', "1'%20OR%201=1", '00000000-0000-4000-8000-00000000000g']) {
    for (const suffix of ['', '/audio', '/audit', '/download-url']) {
      const res = await get(`/api/recordings/${bad}${suffix}`, 'admin')
      t.ok([400, 404].includes(res.statusCode), `${bad}${suffix} → ${res.statusCode}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.notMatch(res.body, /root:|\/etc\/|stack|\.ts:/)
    }
  }
  t.equal((await get('/api/clients/nope/card', 'agent')).statusCode, 404)
  t.equal((await get('/api/clients/..%2F..%2Fx/card', 'agent')).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/api/recordings/00000000-0000-4000-8000-000000000000/verify', headers: bearer(tokens.qa) })).statusCode, 404)
})

t.test('client card', async (t) => {
  const res = await get('/api/clients/c1/card', 'agent')
  t.equal(res.statusCode, 200)
  const card = res.json()
  t.match(card.client, { id: 'c1', name: 'Acme Trading', inn: '7701234567', segment: 'A' })
  t.same(card.phones, ['+74951234567', '+74957654321'])
  t.match(card.manager, { id: 'm1', name: 'Maria Manager', group: 'sales' })
  t.equal(card.recentCalls.length, 10)
  t.equal(card.recordings.length, 10)
  t.equal(card.recordings[0].id, recs[27].id, 'newest first')
  const csats = recs.map((_, i) => i).filter((i) => i % 3 === 0 && i % 10 !== 0).map((i) => (i % 10) + 1)
  t.equal(card.csat.count, csats.length)
  t.equal(card.csat.average, Math.round(csats.reduce((a, b) => a + b, 0) / csats.length * 100) / 100)
  await db.pool.query(`INSERT INTO callbacks (client_id, phone, reason) VALUES ('c1', '+74951234567', 'after_hours')`)
  const again = (await get('/api/clients/c1/card?recent=3', 'qa')).json()
  t.equal(again.callbacks.length, 1)
  t.equal(again.recordings.length, 3)
  t.equal((await get('/api/clients/c1/card?bogus=1', 'qa')).statusCode, 400)
})

t.test('legal hold over HTTP: validation, client scope, lift, audit', async (t) => {
  const post = (payload: unknown, role: Role = 'legal') => app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens[role]), payload: payload as object })
  t.equal((await post({ scope: 'call', id: 'not-a-uuid', reason: 'x', caseRef: 'C' })).statusCode, 400)
  t.equal((await post({ scope: 'client', id: 'c404', reason: 'x', caseRef: 'C' })).statusCode, 404)
  t.equal((await post({ scope: 'planet', id: 'c1', reason: 'x', caseRef: 'C' })).statusCode, 400)
  t.equal((await post({ scope: 'client', id: 'c2', reason: '', caseRef: 'C' })).statusCode, 400, 'reason required')
  t.equal((await post({ scope: 'client', id: 'c2', reason: 'x', caseRef: 'C', extra: 1 })).statusCode, 400, 'strict body')
  const res = await post({ scope: 'client', id: 'c2', reason: 'court order 12', caseRef: 'CASE-77' })
  t.equal(res.statusCode, 201)
  const hold = res.json()
  t.equal(hold.recordings, 10)
  const held = await search('legalHold=true&limit=200', 'legal')
  t.same(held.items.map((i) => i.id).sort(), ids((i) => i % 3 === 1).sort())
  // a new recording of a held client is held from the start
  const later = await addRecording(db.pool, store, { clientId: 'c2' })
  t.equal((await get(`/api/recordings/${later.id}`, 'legal')).json().legalHold, true)
  const lift = await app.inject({ method: 'DELETE', url: `/api/legal-holds/${hold.id}`, headers: bearer(tokens.legal), payload: { reason: 'case closed' } })
  t.equal(lift.statusCode, 200)
  t.match(lift.json(), { liftedBy: 'u-legal', liftReason: 'case closed', recordings: 11 })
  t.equal((await search('legalHold=true&limit=200', 'legal')).items.length, 0)
  t.equal((await app.inject({ method: 'DELETE', url: `/api/legal-holds/${hold.id}`, headers: bearer(tokens.legal), payload: { reason: 'again' } })).statusCode, 409)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/legal-holds/999999', headers: bearer(tokens.legal), payload: { reason: 'x' } })).statusCode, 404)
  const entries = (await get(`/api/recordings/${later.id}/audit`, 'legal')).json().entries as Array<{ action: string }>
  t.same(entries.map((e) => e.action).filter((a) => a.startsWith('legal_hold')), ['legal_hold.off'], 'held at creation by the trigger (the client hold\'s entry covers it), released with an entry')
})

t.test('retention preview is a dry run', async (t) => {
  const old = await addRecording(db.pool, store, { createdAt: new Date('2020-01-01T00:00:00Z'), retentionUntil: new Date('2021-01-01T00:00:00Z') })
  const res = await get('/api/retention/preview', 'admin')
  t.equal(res.statusCode, 200)
  const report = res.json()
  t.equal(report.dryRun, true)
  t.ok(report.candidates.some((c: { id: string }) => c.id === old.id))
  t.same(report.deleted, [])
  t.equal((await db.pool.query('SELECT state FROM recordings WHERE id = $1', [old.id])).rows[0].state, 'stored')
  t.ok(await store.stat(old.key), 'object still there')
  const future = (await get('/api/retention/preview?at=2030-01-01T00:00:00Z&limit=1000', 'legal')).json()
  t.ok(future.candidates.length > report.candidates.length, 'preview at a later date sees more')
})

t.test('tamper check over HTTP detects a modified object', async (t) => {
  const rec = await addRecording(db.pool, store, { size: 10_000 })
  const ok = await app.inject({ method: 'POST', url: `/api/recordings/${rec.id}/verify`, headers: bearer(tokens.qa) })
  t.match(ok.json(), { ok: true, actualSha256: rec.sha256 })
  const { writeFile } = await import('node:fs/promises')
  const tampered = Buffer.from(rec.body)
  tampered[5000] ^= 0xff
  await writeFile(`${(store as unknown as { root: string }).root}/${rec.key}`, tampered)
  const bad = await app.inject({ method: 'POST', url: `/api/recordings/${rec.id}/verify`, headers: bearer(tokens.qa) })
  t.equal(bad.statusCode, 200)
  t.match(bad.json(), { ok: false, reason: 'sha256 differs', expectedSha256: rec.sha256 })
  const actions = (await db.pool.query(`SELECT action FROM audit_log WHERE recording_id = $1 ORDER BY id`, [rec.id])).rows.map((r) => r.action)
  t.same(actions, ['verify.ok', 'verify.mismatch'])
})

t.test('the audit chain written by all of the above verifies', async (t) => {
  const res = await get('/api/audit/verify', 'legal')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { ok: true })
  t.ok(res.json().checked > 50)
  t.same(await verifyAuditChain(db.pool), res.json())
})

t.test('security: helmet headers and a 429 from the rate limit', async (t) => {
  const limited = await accessApp(db.pool, store, { rateLimit: { max: 3, timeWindowMs: 60_000 } })
  t.teardown(() => limited.close())
  const codes: number[] = []
  let last
  for (let i = 0; i < 5; i++) {
    last = await limited.inject({ method: 'GET', url: '/api/clients/c1/card', headers: bearer(tokens.agent) })
    codes.push(last.statusCode)
  }
  t.same(codes, [200, 200, 200, 429, 429])
  t.match(last!.headers['content-type'], /^application\/problem\+json/)
  t.match(last!.json(), { status: 429, code: 'rate_limited' })
  t.ok(last!.headers['retry-after'])
  const first = await limited.inject({ method: 'GET', url: '/api/audit/verify', headers: bearer(tokens.admin) })
  t.equal(first.statusCode, 429, 'limit is per client, across routes')
  t.equal(first.headers['x-content-type-options'], 'nosniff')
  t.ok(first.headers['content-security-policy'])
  t.ok(first.headers['strict-transport-security'])
})
