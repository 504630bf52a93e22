import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decideWithWebhook } from '../src/routing/decision-webhook.ts'
import { fixedClock } from '../src/routing/types.ts'
import { baseConfig, directory, presence, PHONES, MON_10_MSK } from './routing-fixture.ts'

const dir = directory()
const pres = presence({ m1: 'ready', m2: 'ready' })

/** Real HTTP server; the test sets what it answers. */
async function backOffice() {
  const state = { reply: (_body: any, res: import('node:http').ServerResponse) => { res.end('{}') }, requests: [] as any[] }
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += d })
    req.on('end', () => { const parsed = JSON.parse(body); state.requests.push(parsed); state.reply(parsed, res) })
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/route`
  return { state, url, close: () => new Promise<void>(r => { server.closeAllConnections(); server.close(() => r()) }) }
}
const json = (v: unknown) => (_b: any, res: import('node:http').ServerResponse) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)) }

t.test('webhook decides; facts and proposal are posted', async t => {
  const h = await backOffice(); t.teardown(h.close)
  const cfg = baseConfig(c => { c.routing.decisionWebhook = { url: h.url, timeoutMs: 500 } })
  const facts = { caller: PHONES.supplier, did: '+74951230000', time: MON_10_MSK }
  h.state.reply = json({ kind: 'queue', queueId: 'finance', reason: 'debtor: send to finance' })
  const r = await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)
  t.match(r, { decidedBy: 'webhook', decision: { kind: 'queue', queueId: 'finance', priority: 5, sourceTag: 'site', caller: { kind: 'client', clientId: 'sup' } } })
  t.match(r.decision.reasons[0], /decided by webhook in .* ms: debtor: send to finance/)
  const sent = h.state.requests[0]
  t.match(sent, { facts: { caller: PHONES.supplier, did: '+74951230000', time: '2025-03-03T07:00:00.000Z' }, caller: { kind: 'client' }, proposal: { kind: 'queue', queueId: 'production' } })

  h.state.reply = json({ kind: 'direct', targets: [{ employeeId: 'm2' }, { employeeId: 'm1', ringSec: 15, role: 'supervisor' }] })
  t.match((await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)).decision, {
    kind: 'direct', fallbackQueueId: 'production', targets: [{ employeeId: 'm2', ringSec: 30, role: 'manager' }, { employeeId: 'm1', ringSec: 15, role: 'supervisor' }],
  })
  h.state.reply = json({ kind: 'ivr', menuId: 'main' })
  t.match((await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)).decision, { kind: 'ivr', menuId: 'main' })
  h.state.reply = json({ kind: 'reject' })
  t.match((await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)).decision, { kind: 'reject', reason: 'rejected by decision webhook' })
  h.state.reply = json({ kind: 'after-hours' })
  t.match((await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)).decision, { kind: 'after-hours', createCallback: true })
})

t.test('fallbacks to the built-in rules', async t => {
  const h = await backOffice(); t.teardown(h.close)
  const cfg = baseConfig(c => { c.routing.decisionWebhook = { url: h.url, timeoutMs: 150 } })
  const facts = { caller: PHONES.clientA, did: '+74951230000', time: MON_10_MSK }
  const rows: Array<[string, (b: any, res: import('node:http').ServerResponse) => void, string]> = [
    ['timeout (hangs)', () => {}, 'timeout'],
    ['slow answer', (_b, res) => setTimeout(() => json({ kind: 'reject' })(_b, res), 400), 'timeout'],
    ['HTTP 500', (_b, res) => { res.writeHead(500); res.end('boom') }, 'error'],
    ['garbage', (_b, res) => { res.writeHead(200); res.end('not json') }, 'invalid'],
    ['wrong shape', json({ kind: 'queue' }), 'invalid'],
    ['unknown kind', json({ kind: 'teleport', to: 'mars' }), 'invalid'],
    ['unknown queue', json({ kind: 'queue', queueId: 'nope' }), 'invalid'],
    ['unknown menu', json({ kind: 'ivr', menuId: 'nope' }), 'invalid'],
    ['unknown employee', json({ kind: 'direct', targets: [{ employeeId: 'ghost' }] }), 'invalid'],
    ['unknown fallback queue', json({ kind: 'direct', targets: [{ employeeId: 'm1' }], fallbackQueueId: 'x' }), 'invalid'],
    ['deferred', json({ decision: 'builtin', reason: 'no opinion' }), 'deferred'],
  ]
  for (const [name, reply, fallback] of rows) {
    h.state.reply = reply
    const started = performance.now()
    const r = await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), cfg)
    t.ok(performance.now() - started < 150 + 100, `${name}: bounded by the timeout`)
    t.match(r, { decidedBy: 'builtin', fallback, decision: { kind: 'direct', targets: [{ employeeId: 'm1', role: 'manager' }] } }, name)
    t.match(r.decision.reasons.at(-1), /decision webhook/, `${name}: reason recorded`)
  }
  const refused = baseConfig(c => { c.routing.decisionWebhook = { url: 'http://127.0.0.1:1/route', timeoutMs: 300 } })
  t.match(await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), refused), { decidedBy: 'builtin', fallback: 'error' })
  t.match(await decideWithWebhook(facts, dir, pres, fixedClock(MON_10_MSK), baseConfig()), { decidedBy: 'builtin', fallback: 'not_configured', decision: { kind: 'direct' } })
})
