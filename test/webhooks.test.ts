import t from 'tap'
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Registry } from 'prom-client'
import { parse as parseYaml } from 'yaml'
import { startTestDatabase } from './support/db.ts'
import { waitFor } from './support/pipeline.ts'
import { addRecording, bearer, makeTokens, seedDirectory, tempFsStore } from './recordings-access.fixtures.ts'
import { Receiver, signatureValid } from './webhooks.fixtures.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { validateSwitchboardFile, WEBHOOK_EVENTS, type SwitchboardFile } from '../src/config/switchboard-file.ts'
import { ConfigError } from '../src/errors.ts'
import { EventBus, type SwitchboardEvents } from '../src/events/bus.ts'
import { silentLogger } from '../src/log.ts'
import { startWebhooks } from '../src/webhooks/index.ts'
import { DeliveryWorker, backoffMs } from '../src/webhooks/worker.ts'
import { postWebhook } from '../src/webhooks/http-post.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { webhooksRoutes } from '../src/http/plugins/webhooks.ts'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'

const SECRET = 'crm-secret-0123456789'
const ERP_SECRET = 'erp-secret-0123456789'
const exampleDoc = parseYaml(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>
function configWith(patch: Record<string, unknown>): SwitchboardFile {
  return validateSwitchboardFile({ ...structuredClone(exampleDoc), ...patch })
}

const db = await startTestDatabase()
t.teardown(() => db.close())
await seedDirectory(db.pool)
const tokens = await makeTokens(db.pool)
const rx = await new Receiver().start()
const erp = await new Receiver().start()
t.teardown(() => rx.close())
t.teardown(() => erp.close())

const hooks = { maxAttempts: 4, backoff: { baseMs: 60, maxMs: 400 }, timeoutMs: 300, pollMs: 100, allowList: ['127.0.0.1'] }
const crmEndpoint = { id: 'crm', url: `${rx.url}/hooks`, events: [...WEBHOOK_EVENTS], secret: SECRET }
let cfg = configWith({ webhooks: { ...hooks, endpoints: [crmEndpoint] } })
const events = new EventBus()
const wh = startWebhooks({ pool: db.pool, events, log: silentLogger(), config: () => cfg, node: 'node-a' })
t.teardown(() => wh.stop())
const store = await tempFsStore()
const app = await buildHttpApp({
  log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [webhooksRoutes({ pool: db.pool, store, log: silentLogger(), signer: wh.signer, onRedeliver: () => wh.worker.wake() })],
})
t.teardown(() => app.close())

const at = () => new Date().toISOString()
const base = (callUuid: string) => ({ callUuid, direction: 'inbound' as const, caller: '+74951234567', did: '+74951112233', clientId: 'c1', at: at() })
function ended(callUuid: string, over: Partial<SwitchboardEvents['call.ended']> = {}): SwitchboardEvents['call.ended'] {
  return {
    ...base(callUuid), outcome: 'answered', counted: true, agentId: 'm1', queueId: null, billsec: 40, talkSec: 35, answeredAt: at(), connectedAt: at(),
    hangupCause: 'NORMAL_CLEARING', csat: null, ivrPath: [{ menuId: 'main', label: 'Sales', digit: '1', at: at() }], startedAt: at(), recordingIds: [], ...over,
  }
}
async function deliveryOf(eventType: string, callUuid: string, endpoint = 'crm') {
  const r = await db.pool.query<{ id: string; state: string; attempts: number; last_status: number | null; last_error: string | null; locked_by: string | null }>(
    `SELECT d.id, d.state, d.attempts, d.last_status, d.last_error, d.locked_by FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
      WHERE e.type = $1 AND e.data #>> '{call,uuid}' = $2 AND d.endpoint_id = $3`, [eventType, callUuid, endpoint])
  return r.rows[0]
}
const parse = (body: string) => JSON.parse(body) as { id: string; type: string; occurredAt: string; data: Record<string, any>; record?: Record<string, any> }

t.test('an event from the bus is written to the outbox and POSTed, signed', async (t) => {
  const call = randomUUID()
  const before = rx.requests.length
  events.emit('call.started', { ...base(call), decision: 'manager', reasons: ['own manager'], sourceTag: 'site' })
  await wh.outbox.flush()
  const d = await waitFor('delivered', async () => { const x = await deliveryOf('call.started', call); return x?.state === 'delivered' && x })
  t.equal(d.attempts, 1)
  const got = rx.requests.slice(before).filter((r) => r.headers['x-switchboard-delivery'] === d.id)
  t.equal(got.length, 1, 'one request')
  const req = got[0]
  t.equal(req.path, '/hooks')
  t.equal(req.headers['x-switchboard-event'], 'call.started')
  t.equal(req.headers['content-type'], 'application/json')
  t.ok(signatureValid(SECRET, req.headers['x-switchboard-signature'], req.body), 'HMAC-SHA256(secret, t + "." + body) recomputed by the receiver')
  t.notOk(signatureValid('another-secret-123456', req.headers['x-switchboard-signature'], req.body), 'another secret does not verify')
  t.notOk(signatureValid(SECRET, req.headers['x-switchboard-signature'], req.body.replace('Acme', 'Acmf')), 'an altered body does not verify')
  const body = parse(req.body)
  t.equal(body.type, 'call.started')
  t.equal(body.data.call.uuid, call)
  t.equal(body.data.call.decision, 'manager')
  t.same(body.data.client, { id: 'c1', name: 'Acme Trading', consoleUrl: 'http://127.0.0.1:8080/console/clients/c1' }, 'enriched from Postgres, with the deep link')
  t.equal(body.data.call.callerCardUrl, 'http://127.0.0.1:8080/console/clients/by-phone/%2B74951234567', 'deep link by phone number')
})

t.test('recording.stored and recording.failed carry the recording facts; only a stored one gets a download link', async (t) => {
  const stored = await addRecording(db.pool, store, { clientId: 'c1', agentId: 'a1', size: 3210 })
  const broken = await addRecording(db.pool, store, { clientId: 'c2', agentId: 'a2', state: 'quarantined', withObject: false })
  await db.pool.query(`UPDATE recordings SET failure_reason = 'empty: no audio frames' WHERE id = $1`, [broken.id])
  events.emit('recording.stored', { recordingId: stored.id, callUuid: stored.callUuid, legUuid: null })
  events.emit('recording.failed', { recordingId: broken.id, callUuid: broken.callUuid, legUuid: null, reason: 'empty: no audio frames' })
  await wh.outbox.flush()
  const find = (type: string, id: string) => rx.requests.map((r) => parse(r.body)).find((b) => b.type === type && b.data.recording?.id === id)
  const s1 = await waitFor('stored webhook', async () => find('recording.stored', stored.id))
  t.match(s1.data.recording, { id: stored.id, callUuid: stored.callUuid, codec: 'opus', channels: 2, durationMs: 60_000, bytes: 3210, sha256: stored.sha256, consoleUrl: `http://127.0.0.1:8080/console/recordings/${stored.id}` })
  t.match(s1.data.recording.downloadUrl, /\/api\/links\/recordings\/.+\/audio\?exp=\d+&by=webhook%3Acrm&sig=[0-9a-f]{64}$/)
  t.same(s1.data.agent, { id: 'a1', name: 'Anton Agent' })
  t.equal(s1.data.client.name, 'Acme Trading')
  t.equal(s1.data.call.direction, 'inbound')
  const f1 = await waitFor('failed webhook', async () => find('recording.failed', broken.id))
  t.equal(f1.data.recording.failureReason, 'empty: no audio frames')
  t.equal(f1.data.recording.state, 'quarantined')
  t.notOk(f1.data.recording.downloadUrl, 'no audio to download')
  t.equal(f1.data.client.id, 'c2')
})

t.test('timeout, 5xx and a redirect are retried with backoff; the redirect is not followed', async (t) => {
  const call = randomUUID()
  rx.script.push('500', 'timeout', 'redirect')
  events.emit('call.answered', { ...base(call), employeeId: 'a1', queueId: 'sales' })
  await wh.outbox.flush()
  const d = await waitFor('delivered after retries', async () => { const x = await deliveryOf('call.answered', call); return x?.state === 'delivered' && x }, 15_000)
  t.equal(d.attempts, 4, '3 failures + 1 success')
  const got = rx.requests.filter((r) => r.headers['x-switchboard-delivery'] === d.id)
  t.same(got.map((r) => r.headers['x-switchboard-attempt']), ['1', '2', '3', '4'])
  t.ok(got.every((r) => r.body === got[0].body), 'the same body each time')
  t.ok(got.every((r) => signatureValid(SECRET, r.headers['x-switchboard-signature'], r.body)), 'every attempt signed')
  t.equal(rx.requests.filter((r) => r.path === '/elsewhere').length, 0, 'redirect target never requested')
  // backoff: base·2^(n−1) with ±10 % jitter; the gaps are at least that (the timeout adds its 300 ms)
  t.ok(got[1].at - got[0].at >= 60 * 0.9, `gap 1 ${got[1].at - got[0].at} ms`)
  t.ok(got[2].at - got[1].at >= 300 + 120 * 0.9, `gap 2 ${got[2].at - got[1].at} ms (timeout + backoff)`)
  t.ok(got[3].at - got[2].at >= 240 * 0.9, `gap 3 ${got[3].at - got[2].at} ms`)
  t.equal(backoffMs(10, { baseMs: 60, maxMs: 400 }, () => 0.5), 400, 'capped at maxMs')
})

t.test('after maxAttempts a delivery is a dead letter; an admin lists and redelivers it', async (t) => {
  const call = randomUUID()
  rx.fallback = '500'
  events.emit('call.ended', ended(call, { counted: false }))
  await wh.outbox.flush()
  const d = await waitFor('dead letter', async () => { const x = await deliveryOf('call.ended', call); return x?.state === 'dead' && x }, 15_000)
  t.equal(d.attempts, 4)
  t.equal(d.last_status, 500)
  t.match(d.last_error, /HTTP 500: receiver says 500/)
  t.equal(rx.requests.filter((r) => r.headers['x-switchboard-delivery'] === d.id).length, 4, 'exactly maxAttempts requests')
  await new Promise((r) => setTimeout(r, 500))
  t.equal(rx.requests.filter((r) => r.headers['x-switchboard-delivery'] === d.id).length, 4, 'nothing more after it died')

  const list = await app.inject({ method: 'GET', url: '/api/webhooks/dead-letters', headers: bearer(tokens.admin) })
  t.equal(list.statusCode, 200)
  const dead = list.json<{ items: Array<{ id: string; state: string; lastStatus: number; eventType: string }> }>().items
  t.ok(dead.some((x) => x.id === d.id && x.state === 'dead' && x.lastStatus === 500 && x.eventType === 'call.ended'), 'listed')
  t.equal((await app.inject({ method: 'GET', url: '/api/webhooks/dead-letters', headers: bearer(tokens.supervisor) })).statusCode, 403, 'admins only')
  t.equal((await app.inject({ method: 'POST', url: `/api/webhooks/deliveries/${d.id}/redeliver`, headers: bearer(tokens.legal) })).statusCode, 403)
  t.equal((await app.inject({ method: 'POST', url: `/api/webhooks/deliveries/${randomUUID()}/redeliver`, headers: bearer(tokens.admin) })).statusCode, 404)
  const one = await app.inject({ method: 'GET', url: `/api/webhooks/deliveries/${d.id}`, headers: bearer(tokens.admin) })
  t.equal(one.json<{ data: { call: { uuid: string } } }>().data.call.uuid, call, 'one delivery with its event data')

  rx.fallback = 'ok'
  const again = await app.inject({ method: 'POST', url: `/api/webhooks/deliveries/${d.id}/redeliver`, headers: bearer(tokens.admin) })
  t.equal(again.statusCode, 202)
  const after = await waitFor('redelivered', async () => { const x = await deliveryOf('call.ended', call); return x?.state === 'delivered' && x }, 10_000)
  t.equal(after.attempts, 1, 'a fresh set of attempts')
  const reqs = rx.requests.filter((r) => r.headers['x-switchboard-delivery'] === d.id)
  t.equal(reqs.length, 5, 'sent once more, same delivery id (receivers deduplicate)')
  const pending = await app.inject({ method: 'GET', url: '/api/webhooks/deliveries?state=delivered&limit=2', headers: bearer(tokens.admin) })
  t.equal(pending.json<{ items: unknown[]; next: string | null }>().items.length, 2)
  t.ok(pending.json<{ next: string | null }>().next, 'a cursor for the next page')
  const audit = await db.pool.query(`SELECT actor, details FROM audit_log WHERE action = 'webhook.redeliver' AND subject = $1`, [`webhook_delivery:${d.id}`])
  t.equal(audit.rows[0]?.actor, 'u-admin', 'redelivery audited')
  t.ok((await verifyAuditChain(db.pool)).ok)
})

t.test('ERP endpoint: one record per counted call, retried after the ERP fails', async (t) => {
  cfg = configWith({ webhooks: { ...hooks, endpoints: [crmEndpoint, { id: 'erp', url: `${erp.url}/calls`, events: ['call.ended'], format: 'erp', countedOnly: true, secret: ERP_SECRET }] } })
  const short = randomUUID()
  const counted = randomUUID()
  const recId = randomUUID()
  erp.script.push('503')
  events.emit('call.ended', ended(short, { direction: 'fmc', counted: false, talkSec: 9, clientId: null }))
  events.emit('call.ended', ended(counted, { direction: 'fmc', caller: '+79161112233', counted: true, talkSec: 47, agentId: 'm1', recordingIds: [recId] }))
  await wh.outbox.flush()
  const d = await waitFor('ERP delivered', async () => { const x = await deliveryOf('call.ended', counted, 'erp'); return x?.state === 'delivered' && x }, 10_000)
  t.equal(d.attempts, 2, 'first attempt got 503, the retry went through')
  t.notOk(await deliveryOf('call.ended', short, 'erp'), 'a call under 15 s (not counted) is not sent to the ERP')
  t.ok(await waitFor('crm got both', async () => (await deliveryOf('call.ended', short))?.state === 'delivered'), 'the CRM endpoint still gets every call')
  const got = erp.requests.filter((r) => r.headers['x-switchboard-delivery'] === d.id)
  t.equal(got.length, 2)
  t.equal(got[1].headers['x-switchboard-event'], 'erp.call')
  t.ok(signatureValid(ERP_SECRET, got[1].headers['x-switchboard-signature'], got[1].body), 'signed with the ERP secret')
  const rec = parse(got[1].body).record!
  t.same({ ...rec, startedAt: undefined, answeredAt: undefined, endedAt: undefined }, {
    recordType: 'call', callUuid: counted, direction: 'fmc', manager: { id: 'm1', name: 'Maria Manager' }, client: { id: 'c1', name: 'Acme Trading' },
    caller: '+79161112233', callee: null, talkSec: 47, counted: true, outcome: 'answered',
    recordingLinks: [`http://127.0.0.1:8080/console/recordings/${recId}`], startedAt: undefined, answeredAt: undefined, endedAt: undefined,
  }, 'manager, client, direction, talk time, counted flag, recording link')
  t.ok(rec.startedAt && rec.endedAt, 'start and end times')
  cfg = configWith({ webhooks: { ...hooks, endpoints: [crmEndpoint] } })
})

t.test('two nodes share the outbox: every delivery is sent exactly once', async (t) => {
  const other = new DeliveryWorker({ pool: db.pool, log: silentLogger(), webhooks: () => cfg.webhooks, signer: wh.signer, node: 'node-b' })
  other.start()
  t.teardown(() => other.stop())
  const calls = Array.from({ length: 30 }, () => randomUUID())
  const before = rx.requests.length
  for (const c of calls) events.emit('call.started', { ...base(c), decision: 'queue', reasons: [], sourceTag: null })
  await wh.outbox.flush()
  await waitFor('all 30 delivered', async () => {
    const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
      WHERE d.state = 'delivered' AND e.data #>> '{call,uuid}' = ANY($1::text[])`, [calls])
    return r.rows[0].n === 30
  }, 15_000)
  const ids = rx.requests.slice(before).map((r) => r.headers['x-switchboard-delivery'])
  t.equal(ids.length, 30, '30 requests')
  t.equal(new Set(ids).size, 30, 'no delivery sent twice')
})

t.test('disabled endpoints get nothing; an event nobody wants writes nothing', async (t) => {
  cfg = configWith({ webhooks: { ...hooks, endpoints: [{ ...crmEndpoint, enabled: false }] } })
  const call = randomUUID()
  events.emit('call.started', { ...base(call), decision: 'queue', reasons: [], sourceTag: null })
  await wh.outbox.flush()
  t.equal((await db.pool.query(`SELECT 1 FROM webhook_events WHERE data #>> '{call,uuid}' = $1`, [call])).rowCount, 0)
  cfg = configWith({ webhooks: { ...hooks, endpoints: [crmEndpoint] } })
})

t.test('old delivered events leave the outbox; dead letters stay', async (t) => {
  await db.pool.query(`UPDATE webhook_deliveries SET delivered_at = now() - interval '40 days' WHERE state = 'delivered'`)
  await db.pool.query(`UPDATE webhook_events SET created_at = now() - interval '40 days'`)
  const dead = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE state <> 'delivered'`)).rows[0].n
  const removed = await wh.worker.cleanup()
  t.ok(removed > 0, `${removed} delivered deliveries removed`)
  t.equal((await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries`)).rows[0].n, dead, 'what is not delivered stays')
  t.equal((await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_events e WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)`)).rows[0].n, 0, 'no orphan events')
})

t.test('config validation: http(s) only, forbidden ranges unless allowed, one secret, errors name the field', async (t) => {
  const bad = (endpoint: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    try {
      configWith({ webhooks: { ...extra, endpoints: [{ id: 'x', events: ['call.ended'], secret: SECRET, ...endpoint }] } })
      return null
    } catch (err) {
      t.ok(err instanceof ConfigError)
      return (err as Error).message
    }
  }
  t.match(bad({ url: 'ftp://crm.example.com/in' }), /webhooks\.endpoints\[0\]\.url: only http and https/)
  t.match(bad({ url: 'file:///etc/passwd' }), /webhooks\.endpoints\[0\]\.url: only http and https/)
  t.match(bad({ url: 'http://169.254.169.254/latest/meta-data' }), /webhooks\.endpoints\[0\]\.url: 169\.254\.169\.254 is in a forbidden/)
  t.match(bad({ url: 'http://10.1.2.3/hooks' }), /forbidden/)
  t.equal(bad({ url: 'http://10.1.2.3/hooks' }, { allowList: ['10.0.0.0/8'] }), null, 'allowed by CIDR')
  t.equal(bad({ url: 'http://10.1.2.3/hooks' }, { allowPrivateTargets: true }), null, 'allowed by allowPrivateTargets')
  t.match(bad({ url: 'http://[::1]:8080/' }), /forbidden/)
  t.match(bad({ url: 'http://[::ffff:127.0.0.1]/' }), /forbidden/, 'IPv4-mapped loopback')
  t.match(bad({ url: 'http://localhost:9000/' }), /loopback name/)
  t.match(bad({ url: 'http://user:pw@crm.example.com/' }), /credentials/)
  t.equal(bad({ url: 'https://crm.example.com/hooks' }), null, 'a public name is fine')
  t.match(bad({ url: 'https://crm.example.com/hooks', secret: undefined }), /webhooks\.endpoints\[0\]\.secret: give exactly one of secret or secretEnv/)
  t.match(bad({ url: 'https://crm.example.com/hooks', events: ['call.exploded'] }), /webhooks\.endpoints\[0\]\.events/)
  t.match(bad({ url: 'https://crm.example.com/hooks' }, { allowList: ['10.0.0.0/99'] }), /webhooks\.allowList\[0\]/)
  t.match(bad({ url: 'https://erp.example.com/', format: 'erp', events: ['call.started'] }), /format erp/)
  t.match(bad({ url: 'https://crm.example.com/hooks' }, { backoff: { baseMs: 5000, maxMs: 10 } }), /webhooks\.backoff\.maxMs/)
  const defaults = configWith({}).webhooks
  t.same({ maxAttempts: defaults.maxAttempts, timeoutMs: defaults.timeoutMs, allowPrivateTargets: defaults.allowPrivateTargets }, { maxAttempts: 8, timeoutMs: 5000, allowPrivateTargets: false })
})

t.test('a host name that resolves to a forbidden address is refused when connecting', async (t) => {
  const port = new URL(rx.url).port
  const before = rx.requests.length
  const refused = await postWebhook(`http://localhost:${port}/hooks`, {}, '{}', { timeoutMs: 2000, policy: { allowPrivateTargets: false, allowList: [] } })
  t.equal(refused.ok, false)
  t.match(refused.error, /forbidden/)
  t.equal(rx.requests.length, before, 'no request reached the receiver')
  const allowed = await postWebhook(`http://localhost:${port}/hooks`, {}, '{}', { timeoutMs: 2000, policy: { allowPrivateTargets: false, allowList: ['localhost'] } })
  t.equal(allowed.ok, true, 'allowed by host name')
  const gone = await postWebhook('http://127.0.0.1:1/none', {}, '{}', { timeoutMs: 2000, policy: { allowPrivateTargets: true, allowList: [] } })
  t.equal(gone.ok, false)
  t.match(gone.error, /ECONNREFUSED/, 'connection errors are failures too')
})

t.test('an event emitted while Postgres is down is written once it is back, then delivered', async (t) => {
  const call = randomUUID()
  await db.stopServer()
  events.emit('call.started', { ...base(call), decision: 'queue', reasons: [], sourceTag: null })
  await new Promise((r) => setTimeout(r, 1_000))
  await db.restart()
  await wh.outbox.flush()
  const d = await waitFor('delivered after the outage', async () => { const x = await deliveryOf('call.started', call).catch(() => undefined); return x?.state === 'delivered' && x }, 20_000)
  t.equal(d.attempts, 1)
  t.ok(rx.requests.some((r) => r.headers['x-switchboard-delivery'] === d.id))
})
