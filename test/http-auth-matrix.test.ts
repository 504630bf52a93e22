import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { createApiToken, ROLES, type Role } from '../src/http/auth/tokens.ts'

// Generated from the assembled server's route table: a new route that forgets to declare
// its roles, or lets the wrong role in, fails here without anyone writing a test for it.
const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-auth-matrix-'))
const sb = await startSwitchboard({ DATA_DIR: dataDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent' }, silentLogger())
t.teardown(async () => { await sb.stop(); await rm(dataDir, { recursive: true, force: true }) })

const tokens = {} as Record<Role, string>
for (const role of ROLES) tokens[role] = await createApiToken(sb.pool, { id: `matrix-${role}`, name: role, role })

const fill = (url: string) => url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000').replace(/\*$/, 'x')

t.test('every route declares its roles', async (t) => {
  const routes = sb.http.routeList
  t.ok(routes.length > 5, `${routes.length} routes in the table`)
  for (const r of routes) t.ok(r.roles !== null, `${r.method} ${r.url} declares roles`)
})

t.test('no token → 401, wrong role → 403, for every protected route', async (t) => {
  for (const r of sb.http.routeList) {
    if (r.roles === 'public' || r.roles === null) continue
    const url = fill(r.url)
    const anon = await sb.http.inject({ method: r.method as 'GET', url })
    t.equal(anon.statusCode, 401, `${r.method} ${r.url} without a token`)
    t.equal(anon.headers['content-type'], 'application/problem+json; charset=utf-8', 'as problem details')
    const bad = await sb.http.inject({ method: r.method as 'GET', url, headers: { authorization: 'Bearer sb_notavalidtokenatall' } })
    t.equal(bad.statusCode, 401, `${r.method} ${r.url} with an unknown token`)
    const denied = ROLES.find((role) => !(r.roles as readonly string[]).includes(role))
    if (denied) {
      const res = await sb.http.inject({ method: r.method as 'GET', url, headers: { authorization: `Bearer ${tokens[denied]}` } })
      t.equal(res.statusCode, 403, `${r.method} ${r.url} as ${denied}`)
      t.notMatch(res.body, /at .*\.ts:\d+/, 'no stack trace leaked')
    }
  }
})

t.test('public routes answer without a token', async (t) => {
  for (const url of ['/health', '/ready', '/metrics', '/docs/json']) {
    const res = await sb.http.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
  }
})

t.test('token cache: a revoked token is 401 within the cache TTL, at once on the revoking node', async (t) => {
  const { revokeApiToken } = await import('../src/http/auth/tokens.ts')
  const { PRINCIPAL_CACHE_TTL_MS } = await import('../src/http/auth/principal-cache.ts')
  const asUser = (token: string) => sb.http.inject({ method: 'GET', url: '/api/recordings?limit=1', headers: { authorization: `Bearer ${token}` } })
  const elsewhere = await createApiToken(sb.pool, { id: 'cache-a', name: 'a', role: 'qa' })
  t.equal((await asUser(elsewhere)).statusCode, 200)
  await revokeApiToken(sb.pool, elsewhere) // as if revoked by another node: this node's cache still has it
  t.equal((await asUser(elsewhere)).statusCode, 200, 'accepted for at most the TTL (documented revocation delay)')
  await new Promise((r) => setTimeout(r, PRINCIPAL_CACHE_TTL_MS + 100))
  t.equal((await asUser(elsewhere)).statusCode, 401, 'refused after the TTL')
  t.equal((await asUser(elsewhere)).statusCode, 401, 'and stays refused (negative answers are not cached)')
  const here = await createApiToken(sb.pool, { id: 'cache-b', name: 'b', role: 'qa' })
  t.equal((await asUser(here)).statusCode, 200)
  await revokeApiToken(sb.pool, here, sb.http.principalCache)
  t.equal((await asUser(here)).statusCode, 401, 'revoked through this node: refused at once')
})

t.test('PrincipalCache: TTL, token expiry, no negative caching, one query per burst', async (t) => {
  const { PrincipalCache } = await import('../src/http/auth/principal-cache.ts')
  const principal = { userId: 'u', name: 'U', role: 'qa' as const, employeeId: null }
  let lookups = 0
  let answer: { principal: typeof principal; tokenExpiresAt: Date | null } | null = { principal, tokenExpiresAt: null }
  const cache = new PrincipalCache(async () => { lookups++; await new Promise((r) => setTimeout(r, 5)); return answer }, 150)
  const burst = await Promise.all(Array.from({ length: 50 }, () => cache.get('h1')))
  t.ok(burst.every((p) => p?.userId === 'u'))
  t.equal(lookups, 1, '50 concurrent requests, one lookup')
  await cache.get('h1')
  t.equal(lookups, 1, 'cached')
  answer = null // revoked
  t.equal((await cache.get('h1'))?.userId, 'u', 'within the TTL')
  await new Promise((r) => setTimeout(r, 170))
  t.equal(await cache.get('h1'), null, 'after the TTL')
  await cache.get('h1')
  t.equal(lookups, 3, 'unknown tokens are looked up every time')
  answer = { principal, tokenExpiresAt: new Date(Date.now() + 40) }
  t.ok(await cache.get('h2'))
  await new Promise((r) => setTimeout(r, 60))
  answer = null
  t.equal(await cache.get('h2'), null, 'an entry never outlives the token\'s own expiry')
  answer = { principal, tokenExpiresAt: new Date(Date.now() - 1) }
  t.equal(await cache.get('h3'), null, 'an expired token is refused')
  const off = new PrincipalCache(async () => { lookups++; return { principal, tokenExpiresAt: null } }, 0)
  const before = lookups
  await off.get('x'); await off.get('x')
  t.equal(lookups - before, 2, 'ttl 0 = no cache')
})
