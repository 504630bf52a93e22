// The console's server side (issue 10): sign-in session cookie, QA reviews, the review
// context, and the static shell — against real Postgres and a real fastify app.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { addRecording, bearer, makeTokens, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { silentLogger } from '../src/log.ts'
import { recordingsRoutes } from '../src/http/plugins/recordings.ts'
import { sessionRoutes } from '../src/http/plugins/session.ts'
import { qaReviewRoutes } from '../src/http/plugins/qa-review.ts'
import { CONSOLE_CSP, consoleRoutes } from '../src/http/plugins/console.ts'
import { revokeApiToken } from '../src/http/auth/tokens.ts'
import { buildWeb } from '../scripts/build-web.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool)
const tokens = await makeTokens(db.pool)
const store = await tempFsStore()
const webDir = await mkdtemp(path.join(tmpdir(), 'sb-web-'))
t.teardown(() => rm(webDir, { recursive: true, force: true }))
const built = await buildWeb({ outDir: webDir })
const log = silentLogger()
const app = await buildHttpApp({
  log, pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [recordingsRoutes({ pool: db.pool, store, log }), sessionRoutes(), qaReviewRoutes({ pool: db.pool }), consoleRoutes({ log, dir: webDir })],
})
await app.ready()
t.teardown(() => app.close())

const rec = await addRecording(db.pool, store, {})
const cookieOf = (setCookie: string | string[] | undefined) => String(Array.isArray(setCookie) ? setCookie[0] : setCookie)

t.test('POST /api/session: a valid token sets the HttpOnly SameSite=Strict cookie and returns the principal', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/api/session', payload: { token: tokens.qa } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { userId: 'u-qa', name: 'User qa', role: 'qa', employeeId: null })
  const c = cookieOf(res.headers['set-cookie'])
  t.match(c, new RegExp(`^sb_token=${tokens.qa.replace(/[+/=]/g, '\\$&')}; `), 'the token in the cookie')
  t.match(c, /; Path=\//)
  t.match(c, /; HttpOnly/)
  t.match(c, /; SameSite=Strict/)
  t.notMatch(c, /Max-Age|Expires/, 'a browser-session cookie')
  t.notMatch(c, /Secure/, 'no Secure flag over plain http')
  t.equal(res.headers['cache-control'], 'no-store')

  const bad = await app.inject({ method: 'POST', url: '/api/session', payload: { token: 'sb_unknownunknownunknown' } })
  t.equal(bad.statusCode, 401)
  t.equal(bad.json().code, 'unauthorized')
  t.notOk(bad.headers['set-cookie'], 'no cookie for a refused token')
  for (const payload of [{ token: 'short' }, { token: 'has spaces in it ok' }, { token: tokens.qa, extra: 1 }, {}]) {
    t.equal((await app.inject({ method: 'POST', url: '/api/session', payload })).statusCode, 400, `400 for ${JSON.stringify(payload).slice(0, 40)}`)
  }
})

t.test('the cookie authenticates reads only; GET /api/session; DELETE expires it; a revoked token is refused', async (t) => {
  const cookie = `sb_token=${tokens.qa}`
  const who = await app.inject({ method: 'GET', url: '/api/session', headers: { cookie } })
  t.equal(who.statusCode, 200)
  t.equal(who.json().role, 'qa')
  t.equal((await app.inject({ method: 'GET', url: '/api/session' })).statusCode, 401, 'no cookie, no token: 401')
  t.equal((await app.inject({ method: 'GET', url: '/api/session', headers: bearer(tokens.legal) })).json().role, 'legal', 'a bearer token works too')
  t.equal((await app.inject({ method: 'GET', url: `/api/recordings/${rec.id}/qa`, headers: { cookie } })).statusCode, 200, 'reads ride on the cookie')
  const write = await app.inject({ method: 'PUT', url: `/api/recordings/${rec.id}/qa`, headers: { cookie }, payload: { score: 10 } })
  t.equal(write.statusCode, 401, 'a change with the cookie alone is refused (no CSRF through the cookie)')

  const out = await app.inject({ method: 'DELETE', url: '/api/session' })
  t.equal(out.statusCode, 204)
  t.match(cookieOf(out.headers['set-cookie']), /^sb_token=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict/)

  const { createApiToken } = await import('../src/http/auth/tokens.ts')
  const doomed = await createApiToken(db.pool, { id: 'u-doomed', name: 'Doomed', role: 'qa' })
  t.equal((await app.inject({ method: 'POST', url: '/api/session', payload: { token: doomed } })).statusCode, 200)
  await revokeApiToken(db.pool, doomed, app.principalCache)
  t.equal((await app.inject({ method: 'POST', url: '/api/session', payload: { token: doomed } })).statusCode, 401, 'revoked: sign-in refused')
  t.equal((await app.inject({ method: 'GET', url: '/api/session', headers: { cookie: `sb_token=${doomed}` } })).statusCode, 401, 'revoked: its cookie refused')
})

t.test('QA review: save, version conflict, validation, roles, audit', async (t) => {
  const url = `/api/recordings/${rec.id}/qa`
  t.same((await app.inject({ method: 'GET', url, headers: bearer(tokens.qa) })).json(), { recordingId: rec.id, review: null }, 'nothing yet')
  const first = await app.inject({ method: 'PUT', url, headers: bearer(tokens.qa), payload: { score: 87, notes: 'Good greeting', rubric: [{ criterion: 'Greeting', score: 9 }], expectedVersion: 0 } })
  t.equal(first.statusCode, 200)
  t.match(first.json(), { recordingId: rec.id, score: 87, notes: 'Good greeting', rubric: [{ criterion: 'Greeting', score: 9 }], reviewer: 'u-qa', version: 1 })
  const got = (await app.inject({ method: 'GET', url, headers: bearer(tokens.supervisor) })).json()
  t.equal(got.review.score, 87, 'a supervisor reads it back')

  const stale = await app.inject({ method: 'PUT', url, headers: bearer(tokens.supervisor), payload: { score: 50, expectedVersion: 0 } })
  t.equal(stale.statusCode, 409, 'a second "first review" is a conflict, not an overwrite')
  t.equal(stale.json().code, 'qa_review_conflict')
  t.equal(stale.json().currentVersion, 1)
  const second = await app.inject({ method: 'PUT', url, headers: bearer(tokens.supervisor), payload: { score: 60, notes: 'Reviewed again', expectedVersion: 1 } })
  t.equal(second.statusCode, 200)
  t.match(second.json(), { score: 60, version: 2, reviewer: 'u-supervisor', rubric: [] })
  t.equal((await app.inject({ method: 'PUT', url, headers: bearer(tokens.qa), payload: { score: 61, expectedVersion: 1 } })).statusCode, 409, 'stale version')
  const blind = await app.inject({ method: 'PUT', url, headers: bearer(tokens.admin), payload: { score: null } })
  t.match(blind.json(), { score: null, version: 3, notes: '' }, 'without expectedVersion the last write wins; a null score clears it')

  const bad: Array<[unknown, string]> = [
    [{ score: 101 }, 'score above 100'], [{ score: -1 }, 'negative score'], [{ score: 50.5 }, 'fractional score'], [{ notes: 'x' }, 'score missing'],
    [{ score: 1, rubric: [{ criterion: 'Greeting', score: 11 }] }, 'rubric item above 10'], [{ score: 1, rubric: [{ criterion: '', score: 1 }] }, 'empty criterion'],
    [{ score: 1, rubric: Array.from({ length: 31 }, () => ({ criterion: 'c', score: 1 })) }, '31 rubric items'],
    [{ score: 1, notes: 'x'.repeat(10_001) }, 'notes too long'], [{ score: 1, reviewer: 'someone-else' }, 'unknown field'],
  ]
  for (const [payload, why] of bad) t.equal((await app.inject({ method: 'PUT', url, headers: bearer(tokens.qa), payload: payload as object })).statusCode, 400, why)
  const missing = await app.inject({ method: 'PUT', url: `/api/recordings/${randomUUID()}/qa`, headers: bearer(tokens.qa), payload: { score: 1 } })
  t.equal(missing.statusCode, 404, 'unknown recording')
  t.equal((await app.inject({ method: 'GET', url: '/api/recordings/not-a-uuid/qa', headers: bearer(tokens.qa) })).statusCode, 400)
  for (const role of ['legal', 'agent'] as const) {
    t.equal((await app.inject({ method: 'GET', url, headers: bearer(tokens[role]) })).statusCode, 403, `${role} may not read reviews`)
    t.equal((await app.inject({ method: 'PUT', url, headers: bearer(tokens[role]), payload: { score: 1 } })).statusCode, 403, `${role} may not write reviews`)
  }
  const audit = (await db.pool.query(`SELECT actor, details FROM audit_log WHERE recording_id = $1 AND action = 'qa_review' ORDER BY id`, [rec.id])).rows
  t.same(audit.map((a) => [a.actor, a.details.score, a.details.version]), [['u-qa', 87, 1], ['u-supervisor', 60, 2], ['u-admin', null, 3]], 'every saved review audited, refused ones not')
})

t.test('review context: call with IVR path and CSAT, legs, holds for legal only', async (t) => {
  const callUuid = randomUUID()
  const ivr = [{ menuId: 'main', label: 'Sales', digit: '1', at: new Date().toISOString() }]
  const r = await addRecording(db.pool, store, { callUuid, csat: 7 })
  await db.pool.query('UPDATE calls SET ivr_path = $2, billsec = 42 WHERE uuid = $1', [callUuid, JSON.stringify(ivr)])
  const t0 = new Date(Date.now() - 60_000)
  await db.pool.query(`INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at) VALUES ($1, $2, 'caller', 'sofia/x', NULL, $3, $3), ($4, $2, 'agent', 'user/7101', 'a1', $5, $5)`,
    [randomUUID(), callUuid, t0, randomUUID(), new Date(t0.getTime() + 5000)])
  const asQa = await app.inject({ method: 'GET', url: `/api/recordings/${r.id}/context`, headers: bearer(tokens.qa) })
  t.equal(asQa.statusCode, 200)
  const c = asQa.json()
  t.match(c.call, { uuid: callUuid, csat: 7, billsec: 42, clientId: 'c1', ivrPath: ivr })
  t.same(c.legs.map((l: { party: string; employeeName: string | null }) => [l.party, l.employeeName]), [['caller', null], ['agent', 'Anton Agent']], 'legs in order, with the employee name')
  t.equal(c.holds, null, 'qa does not see hold details')
  t.same(c.pausedSpans, [])
  t.same((await app.inject({ method: 'GET', url: `/api/recordings/${r.id}/context`, headers: bearer(tokens.legal) })).json().holds, [], 'legal sees none yet')
  const hold = await app.inject({ method: 'POST', url: '/api/legal-holds', headers: bearer(tokens.legal), payload: { scope: 'call', id: callUuid, reason: 'dispute', caseRef: 'CASE-9' } })
  t.equal(hold.statusCode, 201)
  const held = (await app.inject({ method: 'GET', url: `/api/recordings/${r.id}/context`, headers: bearer(tokens.legal) })).json().holds
  t.match(held, [{ scope: 'call', target: callUuid, caseRef: 'CASE-9', reason: 'dispute', createdBy: 'u-legal' }], 'a call-scope hold covers the recording')
  t.equal((await app.inject({ method: 'GET', url: `/api/recordings/${r.id}/context`, headers: bearer(tokens.agent) })).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: `/api/recordings/${randomUUID()}/context`, headers: bearer(tokens.qa) })).statusCode, 404)
})

t.test('the console shell: SPA deep links, CSP, cached hashed assets, 304, missing asset', async (t) => {
  const redirect = await app.inject({ method: 'GET', url: '/console' })
  t.equal(redirect.statusCode, 302)
  t.equal(redirect.headers.location, '/console/')
  const home = await app.inject({ method: 'GET', url: '/console/' })
  t.equal(home.statusCode, 200)
  t.match(home.headers['content-type'], /^text\/html/)
  t.equal(home.headers['cache-control'], 'no-cache')
  t.equal(home.headers['content-security-policy'], CONSOLE_CSP)
  t.notMatch(String(home.headers['content-security-policy']), /upgrade-insecure-requests|unsafe-eval/)
  t.match(home.body, `/console/assets/${built.js}`, 'index names the hashed bundle')
  for (const deep of ['/console/clients/c1', '/console/clients/by-phone/+74951234567', '/console/clients/by-phone/%2B74951234567', `/console/recordings/${rec.id}`, '/console/recordings?clientName=Acme', '/console/live']) {
    const res = await app.inject({ method: 'GET', url: deep })
    t.equal(res.statusCode, 200, `${deep} → the app`)
    t.equal(res.body, home.body)
  }
  t.equal((await app.inject({ method: 'HEAD', url: '/console/recordings/x' })).statusCode, 200, 'HEAD works')
  const again = await app.inject({ method: 'GET', url: '/console/', headers: { 'if-none-match': String(home.headers.etag) } })
  t.equal(again.statusCode, 304, 'revalidation of index.html')

  const js = await app.inject({ method: 'GET', url: `/console/assets/${built.js}` })
  t.equal(js.statusCode, 200)
  t.match(js.headers['content-type'], /^text\/javascript/)
  t.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.ok(js.body.length > 10_000, `bundle served (${js.body.length} bytes)`)
  t.equal((await app.inject({ method: 'GET', url: `/console/assets/${built.css}` })).headers['content-type'], 'text/css; charset=utf-8')
  const missing = await app.inject({ method: 'GET', url: '/console/assets/main-NOPE.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal((await app.inject({ method: 'GET', url: '/console/assets/../../package.json' })).statusCode, 404, 'no path traversal out of the build')
})

t.test('console not built: 503 with the command to run, or built on start', async (t) => {
  const empty = await mkdtemp(path.join(tmpdir(), 'sb-web-missing-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  const off = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [consoleRoutes({ log, dir: path.join(empty, 'nope'), buildIfMissing: false })] })
  t.teardown(() => off.close())
  const res = await off.inject({ method: 'GET', url: '/console/' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'console_unavailable', detail: /npm run build:web/ })
  const auto = await buildHttpApp({ log, pool: db.pool, registry: new Registry(), readiness: [], plugins: [consoleRoutes({ log, dir: path.join(empty, 'auto') })] })
  t.teardown(() => auto.close())
  const ok = await auto.inject({ method: 'GET', url: '/console/recordings' })
  t.equal(ok.statusCode, 200, 'a missing build is made on start')
  t.match(ok.body, /\/console\/assets\/main-[A-Z0-9]+\.js/i)
})
