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
