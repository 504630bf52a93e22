import t from 'tap'
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLiveLookup } from '../src/crm/live-lookup.ts'

interface Harness { url: string; hits: Map<string, number>; bodies: string[]; mode: { path: string }; close(): Promise<void> }

/** A real ERP stand-in on 127.0.0.1:0. Behaviour chosen by the path. */
async function erp(): Promise<Harness> {
  const hits = new Map<string, number>()
  const bodies: string[] = []
  const mode = { path: '/ok' }
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url!, 'http://x')
    if (u.pathname === '/switch') u.pathname = mode.path // behaviour chosen by the test at run time
    hits.set(u.pathname, (hits.get(u.pathname) ?? 0) + 1)
    let body = ''
    req.on('data', d => { body += d })
    req.on('end', () => {
      if (body) bodies.push(body)
      const phone = u.searchParams.get('phone') ?? (body ? JSON.parse(body).phone : '')
      const json = (status: number, v: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)) }
      switch (u.pathname) {
        case '/ok': return json(200, { found: true, client: { id: 42, name: `Client ${phone}`, segment: 'A', kind: 'supplier', assignedManagerId: 7, region: 'Тюмень', extra: 'ignored' } })
        case '/minimal': return json(200, { found: true, client: { id: 'c1', name: 'Min' } })
        case '/none': return json(200, { found: false })
        case '/404': return json(404, { error: 'no such phone' })
        case '/500': return json(500, { error: 'SAP says no' })
        case '/garbage': res.writeHead(200); return res.end('<html>oops')
        case '/wrongshape': return json(200, { found: true, client: { name: 'no id' } })
        case '/slow': setTimeout(() => json(200, { found: false }), 150); return
        case '/slowbody': res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"found":'); setTimeout(() => res.end('false}'), 1000); return
        case '/hang': return // never answers
        default: return json(404, {})
      }
    })
  }
  const server: Server = createServer(handler)
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`, hits, bodies, mode,
    close: () => new Promise<void>(r => { server.closeAllConnections(); server.close(() => r()) }),
  }
}

// These cases check how answers are read, not the timeout: generous, so a loaded CI machine cannot turn them into timeouts.
const ANSWER_TIMEOUT_MS = 5_000

t.test('found / not found / 404, GET and POST, validated answer', async t => {
  const h = await erp(); t.teardown(h.close)
  const l = createLiveLookup({ url: `${h.url}/ok`, timeoutMs: ANSWER_TIMEOUT_MS })
  const r = await l.lookup('+73452000000')
  t.match(r, { kind: 'client', source: 'live', outcome: 'found', cached: false, client: { id: '42', name: 'Client +73452000000', segment: 'A', kind: 'supplier', assignedManagerId: '7', region: 'Тюмень' } })
  t.notOk('extra' in (r.kind === 'client' ? r.client : {}), 'unknown fields are not copied')
  t.match(await createLiveLookup({ url: `${h.url}/minimal`, timeoutMs: ANSWER_TIMEOUT_MS }).lookup('+73452000000'), { kind: 'client', client: { id: 'c1', segment: 'C', kind: 'client' } }, 'defaults')
  t.match(await createLiveLookup({ url: `${h.url}/none`, timeoutMs: ANSWER_TIMEOUT_MS }).lookup('+73452000000'), { kind: 'unidentified', outcome: 'not_found' })
  t.match(await createLiveLookup({ url: `${h.url}/404`, timeoutMs: ANSWER_TIMEOUT_MS }).lookup('+73452000000'), { kind: 'unidentified', outcome: 'not_found' })
  const post = createLiveLookup({ url: `${h.url}/ok`, method: 'POST', timeoutMs: ANSWER_TIMEOUT_MS })
  t.match(await post.lookup('+73452000001'), { kind: 'client' })
  t.same(JSON.parse(h.bodies.at(-1)!), { phone: '+73452000001' })
  t.match(await l.lookup('84951234567'), { kind: 'unidentified', outcome: 'bad_number' })
})

t.test('failures fall back to unidentified within the timeout', async t => {
  const h = await erp(); t.teardown(h.close)
  const rows: Array<[string, string]> = [['/500', 'error'], ['/garbage', 'invalid'], ['/wrongshape', 'invalid'], ['/hang', 'timeout'], ['/slow', 'timeout'], ['/slowbody', 'timeout']]
  for (const [path, outcome] of rows) {
    const l = createLiveLookup({ url: `${h.url}${path}`, timeoutMs: 100 })
    const started = performance.now()
    const r = await l.lookup('+73452000000')
    const ms = performance.now() - started
    t.match(r, { kind: 'unidentified', outcome }, path)
    t.ok(ms < 100 + 400, `${path} answered in ${ms.toFixed(0)} ms (timeout 100 ms; slack for a loaded machine)`)
  }
  const dead = createLiveLookup({ url: 'http://127.0.0.1:1/nothing', timeoutMs: 200 })
  t.match(await dead.lookup('+73452000000'), { kind: 'unidentified', outcome: 'error' }, 'connection refused')
})

t.test('slow but within the timeout still answers', async t => {
  const h = await erp(); t.teardown(h.close)
  t.match(await createLiveLookup({ url: `${h.url}/slow`, timeoutMs: 600 }).lookup('+73452000000'), { outcome: 'not_found' })
})

t.test('cache: positive and negative TTLs, bounded size', async t => {
  const h = await erp(); t.teardown(h.close)
  let now = 1_000_000
  const l = createLiveLookup({ url: `${h.url}/ok`, cacheTtlMs: 1000, now: () => now, cacheMax: 2 })
  await l.lookup('+73452000000')
  t.match(await l.lookup('+73452000000'), { kind: 'client', cached: true })
  t.equal(h.hits.get('/ok'), 1)
  now += 1001
  t.match(await l.lookup('+73452000000'), { cached: false })
  t.equal(h.hits.get('/ok'), 2, 'expired entry refetched')
  await l.lookup('+73452000001'); await l.lookup('+73452000002')
  t.match(await l.lookup('+73452000000'), { cached: false }, 'oldest evicted at cacheMax')
  const n = createLiveLookup({ url: `${h.url}/none`, negativeCacheTtlMs: 500, now: () => now })
  await n.lookup('+73452000000')
  t.match(await n.lookup('+73452000000'), { outcome: 'not_found', cached: true })
  now += 501
  t.match(await n.lookup('+73452000000'), { outcome: 'not_found', cached: false })
  t.equal(h.hits.get('/none'), 2)
  const f = createLiveLookup({ url: `${h.url}/500`, now: () => now })
  await f.lookup('+73452000000'); await f.lookup('+73452000000')
  t.equal(h.hits.get('/500'), 2, 'failures are not cached')
})

t.test('concurrency bound and coalescing', async t => {
  const h = await erp(); t.teardown(h.close)
  const l = createLiveLookup({ url: `${h.url}/slow`, timeoutMs: 1000, concurrency: 2 })
  const started = performance.now()
  const [a, b, a2, c] = await Promise.all([l.lookup('+73452000001'), l.lookup('+73452000002'), l.lookup('+73452000001'), l.lookup('+73452000003')])
  t.match(a, { outcome: 'not_found' }); t.match(b, { outcome: 'not_found' })
  t.equal(a2, a, 'same number shares one request')
  t.match(c, { kind: 'unidentified', outcome: 'busy' })
  t.equal(h.hits.get('/slow'), 2)
  t.match(l.stats(), { requests: 2, busy: 1, inFlight: 0 })
  t.ok(performance.now() - started < 1000)
})

t.test('circuit breaker: opens after N failures, half-open probe after cool-down', async t => {
  const h = await erp(); t.teardown(h.close)
  let now = 0
  h.mode.path = '/500'
  const l = createLiveLookup({ url: `${h.url}/switch`, failureThreshold: 3, coolDownMs: 5000, now: () => now, timeoutMs: 100 })
  for (let i = 0; i < 3; i++) t.match(await l.lookup(`+7345200000${i}`), { outcome: 'error' })
  t.equal(l.circuitState, 'open')
  t.match(await l.lookup('+73452000009'), { outcome: 'circuit_open' })
  t.equal(h.hits.get('/500'), 3, 'open circuit does not call the ERP')
  now += 5001
  t.match(await l.lookup('+73452000010'), { outcome: 'error' }, 'half-open probe fails')
  t.equal(h.hits.get('/500'), 4)
  t.equal(l.circuitState, 'open', 're-opened')
  t.match(await l.lookup('+73452000011'), { outcome: 'circuit_open' })
  now += 5001
  h.mode.path = '/hang'
  const probe = l.lookup('+73452000012')
  t.match(await l.lookup('+73452000013'), { outcome: 'circuit_open' }, 'only one probe while half-open')
  t.match(await probe, { outcome: 'timeout' })
  now += 5001
  h.mode.path = '/ok'
  t.match(await l.lookup('+73452000014'), { kind: 'client' }, 'successful probe')
  t.equal(l.circuitState, 'closed')
  t.match(await l.lookup('+73452000015'), { kind: 'client' })
  t.match(l.stats(), { circuit: 'closed', found: 2 })
})
