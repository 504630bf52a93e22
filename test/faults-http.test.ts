/**
 * Fault suite — hostile HTTP, generated from the assembled server's route table (so a new
 * route is covered without anyone writing a test for it), over real TCP to the listening
 * server. For every route, as a role that is allowed on it: malformed JSON, a body far over
 * the limit, path traversal and SQL-significant strings in every path parameter and in a
 * query string, a bogus content type. Every answer must be a 4xx (or a 2xx where the input
 * is legitimately harmless), never a 5xx; errors are problem details; nothing leaks a stack
 * trace, a file path or a SQL error text. Range headers on the audio stream are attacked
 * separately. Figures: `# FAULTS http: …`.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { request } from 'node:http'
import { startTestDatabase } from './support/db.ts'
import { writeFaultConfig, figures } from './support/faults.ts'
import { spoolRecording, waitFor } from './support/pipeline.ts'
import { Spool } from '../src/recordings/spool.ts'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { createApiToken, ROLES, type Role } from '../src/http/auth/tokens.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
const dir = await mkdtemp(path.join(tmpdir(), 'sb-faults-http-'))
const sb = await startSwitchboard({
  DATABASE_URL: db.url, DATA_DIR: dir, SPOOL_DIR: path.join(dir, 'spool'), SWITCHBOARD_CONFIG: await writeFaultConfig(dir),
  PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent',
}, silentLogger())
t.teardown(async () => { await sb.stop(); await rm(dir, { recursive: true, force: true }) })

const tokens = {} as Record<Role, string>
for (const role of ROLES) tokens[role] = await createApiToken(sb.pool, { id: `hostile-${role}`, name: role, role })
const base = new URL(sb.httpUrl)

interface Answer { status: number; body: string; headers: Record<string, string | string[] | undefined>; ms: number }
/** Raw HTTP over TCP (fetch would normalise away the hostile bits of a path). */
function raw(method: string, pathAndQuery: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  const started = Date.now()
  return new Promise<Omit<Answer, 'ms'>>((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, method, path: pathAndQuery, headers }, (res) => {
      // An event stream (SSE) never ends: its status and headers are the answer.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.destroy()
        resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers })
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => { size += c.length; if (size < 256 * 1024) chunks.push(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server may cut an oversized upload before reading it all: that is a refusal, not a failure.
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve({ status: 413, body: '', headers: {} })
      else reject(err)
    })
    req.setTimeout(15_000, () => { req.destroy(); resolve({ status: 599, body: `no answer within 15 s to ${method} ${pathAndQuery.slice(0, 80)}`, headers: {} }) })
    if (body !== undefined) req.end(body)
    else req.end()
  }).then((a) => ({ ...a, ms: Date.now() - started }))
}

const LEAKS = [/\bat [^\s]+ \(.*:\d+:\d+\)/, /node_modules/, /\/work\/|\/src\/[a-z-]+\.ts/, /syntax error at or near/i, /violates .* constraint/i, /pg_|relation "/]
const TRAVERSAL = ['..%2F..%2F..%2Fetc%2Fpasswd', '..%5C..%5Cwindows', '%00', '....//....//etc/passwd', '%2e%2e%2f']
const SQLISH = [`'%20OR%201%3D1--`, `1%3BDROP%20TABLE%20calls`, `%22%3B--`, `%27)%20UNION%20SELECT%20*%20FROM%20users--`]

// Range first: the hostile sweep below ends in the rate limiter (429) for this client, as it should.
t.test('hostile Range headers on the audio stream: 416 or a valid partial/full answer, never 5xx', async (t) => {
  const streamRoute = sb.http.routeList.find((r) => r.method === 'GET' && /recordings\/:[A-Za-z]+\/(audio|stream)/.test(r.url))
  t.ok(streamRoute, `a recording stream route exists (${streamRoute?.url})`)
  if (!streamRoute) return
  // A real stored recording, so the Range parser is reached (not just a 404 before it).
  const rec = await spoolRecording(new Spool(path.join(dir, 'spool')), { channels: 2, segments: [[{ kind: 'tone', ms: 3000 }], [{ kind: 'noise', ms: 3000 }]] })
  await sb.pipeline.enqueue(rec.recordingId)
  await waitFor('recording stored', async () => (await sb.pool.query(`SELECT 1 FROM recordings WHERE id = $1 AND state = 'stored'`, [rec.recordingId])).rowCount, 60_000)
  const url = streamRoute.url.replace(/:[A-Za-z]+/, rec.recordingId)
  const whole = await raw('GET', url, { authorization: `Bearer ${tokens.qa}` })
  t.equal(whole.status, 200, 'the recording streams without a Range')
  for (const range of ['bytes=-', 'bytes=999999999999-', 'bytes=5-1', 'bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17,18-19,20-21', 'chars=0-10', 'bytes=' + '0-1,'.repeat(2000), 'bytes=-0', 'bytes=0--1']) {
    const res = await raw('GET', url, { authorization: `Bearer ${tokens.qa}`, range })
    t.ok(res.status < 500, `Range ${range.slice(0, 40)} → ${res.status}`)
  }
})

t.test('every route × hostile input: a 4xx (never 5xx), problem details, nothing leaked', async (t) => {
  const counts = { requests: 0, status4xx: 0, status2xx: 0, status5xx: 0, leaks: 0 }
  const slow: Array<[number, string]> = []
  const check = (what: string, res: Answer) => {
    counts.requests++
    slow.push([res.ms, what])
    if (res.status >= 500) { counts.status5xx++; t.fail(`${what} → ${res.status}: ${res.body.slice(0, 300)}`) }
    else if (res.status >= 400) counts.status4xx++
    else counts.status2xx++
    for (const leak of LEAKS) {
      if (leak.test(res.body)) { counts.leaks++; t.fail(`${what} leaks ${leak}: ${res.body.slice(0, 300)}`) }
    }
    if (res.status >= 400 && res.status !== 413 && res.body) {
      if (!String(res.headers['content-type']).startsWith('application/problem+json')) t.fail(`${what} → ${res.status} is not problem details (${res.headers['content-type']})`)
    }
  }
  for (const r of sb.http.routeList) {
    if (r.roles === null || r.url.startsWith('/docs')) continue
    const role = r.roles === 'public' ? null : (r.roles as readonly Role[]).includes('admin') ? 'admin' : (r.roles as readonly Role[])[0]!
    const auth: Record<string, string> = role ? { authorization: `Bearer ${tokens[role]}` } : {}
    const params = r.url.match(/:[A-Za-z]+/g) ?? []
    const hasBody = ['POST', 'PUT', 'PATCH'].includes(r.method)
    const fillWith = (v: string) => r.url.replace(/:[A-Za-z]+/g, v).replace(/\*$/, v)
    const what = (x: string) => `${r.method} ${r.url} ${x}`

    for (const v of [...(params.length || r.url.endsWith('*') ? [...TRAVERSAL, ...SQLISH] : [])]) {
      check(what(`param=${v}`), await raw(r.method, fillWith(v), { ...auth, ...(hasBody ? { 'content-type': 'application/json' } : {}) }, hasBody ? '{}' : undefined))
    }
    const url = fillWith('00000000-0000-4000-8000-000000000000')
    for (const q of SQLISH) check(what(`?q=${q}`), await raw(r.method, `${url}?q=${q}&limit=${q}&from=${q}`, { ...auth, ...(hasBody ? { 'content-type': 'application/json' } : {}) }, hasBody ? '{}' : undefined))
    if (hasBody) {
      check(what('malformed JSON'), await raw(r.method, url, { ...auth, 'content-type': 'application/json' }, '{"a": [1, 2,, }'))
      check(what('JSON of the wrong shape'), await raw(r.method, url, { ...auth, 'content-type': 'application/json' }, '[["__proto__", {"polluted": true}]]'))
      check(what('prototype pollution'), await raw(r.method, url, { ...auth, 'content-type': 'application/json' }, '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'))
      check(what('10 MB body'), await raw(r.method, url, { ...auth, 'content-type': 'application/json' }, Buffer.alloc(10 * 1024 * 1024, 0x61)))
      check(what('bogus content type'), await raw(r.method, url, { ...auth, 'content-type': 'application/x-evil' }, '<<<>>>'))
    }
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.comment(figures('http', { routes: sb.http.routeList.length, ...counts }))
  t.comment(`slowest: ${slow.sort((a, b) => b[0] - a[0]).slice(0, 5).map(([ms, w]) => `${ms} ms ${w}`).join('; ')}`)
  t.equal(counts.status5xx, 0, 'no 5xx')
  t.equal(counts.leaks, 0, 'nothing leaked')
})
