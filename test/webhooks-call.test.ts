// Issue 14 end to end: a real call through the wire simulator → EventBus → outbox →
// signed POSTs to a real local receiver; the recording.stored webhook's short-lived
// download link fetched without a token (valid / tampered / expired).
import t from 'tap'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { Receiver, signatureValid } from './webhooks.fixtures.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import { WEBHOOK_EVENTS } from '../src/config/switchboard-file.ts'
import { silentLogger } from '../src/log.ts'
import { startWebhooks } from '../src/webhooks/index.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { webhooksRoutes } from '../src/http/plugins/webhooks.ts'
import { verifyAuditChain } from '../src/recordings/access/audit.ts'

const SECRET = 'crm-secret-0123456789'
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]
const clients: ClientInput[] = [
  { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1', phones: ['+74951234567'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())
const rx = await new Receiver().start()
t.teardown(() => rx.close())

const h = await startCallHarness(db, {
  employees, clients, ready: ['mgr-1'], at: AT, timeScale: 0.05,
  configure: (c) => {
    c.webhooks = { ...c.webhooks, allowList: ['127.0.0.1'], backoff: { baseMs: 50, maxMs: 500 }, pollMs: 100, timeoutMs: 8000,
      endpoints: [{ id: 'crm', url: `${rx.url}/hooks`, events: [...WEBHOOK_EVENTS], secret: SECRET, enabled: true, format: 'switchboard', countedOnly: false }] }
  },
})
t.teardown(() => h.close())
const wh = startWebhooks({ pool: db.pool, events: h.events, log: silentLogger(), config: () => h.config, node: 'test-node' })
t.teardown(() => wh.stop())
const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [webhooksRoutes({ pool: db.pool, store: h.store, log: silentLogger(), signer: wh.signer })] })
await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
h.config.links.publicBaseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

type Body = { id: string; type: string; data: Record<string, any> }
const bodies = () => rx.requests.map((r) => ({ r, b: JSON.parse(r.body) as Body }))

t.test('a real call reaches the receiver as signed call and recording webhooks', async (t) => {
  rx.script.push('timeout') // call.started: no answer until the 8 s timeout, then retried
  const call = h.sim.call({
    callerIdNumber: '84951234567', destination: '+74951230000', source: 'sofia',
    bridgeTargets: { 'user/1001': { answerAfterMs: 1000, hangupAfterMs: 20_000 } },
  })
  await call.done
  // the receiver sat on the first request (call.started) for the whole call: the call did not wait
  const first = (await db.pool.query<{ state: string; attempts: number }>(
    `SELECT d.state, d.attempts FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE e.type = 'call.started' AND e.data #>> '{call,uuid}' = $1`, [call.uuid])).rows[0]
  t.same(first, { state: 'pending', attempts: 1 }, 'the call ended while its first webhook was still hanging')
  await waitFor('call and recording webhooks', async () => {
    const got = bodies().filter((x) => x.b.data.call?.uuid === call.uuid || x.b.data.recording?.callUuid === call.uuid)
    return got.filter((x) => x.b.type === 'recording.stored').length >= 2 && got.some((x) => x.b.type === 'call.ended')
  }, 45_000)
  const got = bodies().filter((x) => x.b.data.call?.uuid === call.uuid || x.b.data.recording?.callUuid === call.uuid)
  t.ok(got.every((x) => signatureValid(SECRET, x.r.headers['x-switchboard-signature'], x.r.body)), 'every request signed')
  t.ok(got.every((x) => x.r.headers['x-switchboard-event'] === x.b.type), 'event header = body type')
  const types = got.map((x) => x.b.type)
  for (const type of ['call.started', 'call.answered', 'call.ended', 'recording.stored']) t.ok(types.includes(type), `${type} delivered`)

  const ended = got.find((x) => x.b.type === 'call.ended')!.b.data
  t.equal(ended.call.outcome, 'answered')
  t.equal(ended.call.counted, true, '20 s conversation counted')
  t.ok(ended.call.talkSec >= 15, `talk time ${ended.call.talkSec} s`)
  t.same(ended.agent, { id: 'mgr-1', name: 'Анна' })
  t.equal(ended.client.id, 'c-romashka')
  t.equal(ended.client.name, 'ООО Ромашка')
  t.ok(Array.isArray(ended.call.ivrPath), 'IVR path')
  t.equal(ended.recordings.length, 2, 'both recordings of the call, with console links')
  t.ok(ended.recordings.every((r: { consoleUrl: string; id: string }) => r.consoleUrl === `${h.config.links.publicBaseUrl}/console/recordings/${r.id}`))

  const stored = got.filter((x) => x.b.type === 'recording.stored').map((x) => x.b.data)
  for (const s of stored) {
    const row = (await db.pool.query('SELECT sha256, codec, duration_ms, leg_uuid FROM recordings WHERE id = $1', [s.recording.id])).rows[0]
    t.equal(s.recording.sha256, row.sha256, 'SHA-256 as stored')
    t.equal(s.recording.codec, row.codec)
    t.equal(s.recording.durationMs, row.duration_ms)
    t.equal(s.recording.legUuid, row.leg_uuid)
    t.equal(s.client.id, 'c-romashka')
    t.match(s.recording.downloadUrl, new RegExp(`^${h.config.links.publicBaseUrl}/api/links/recordings/${s.recording.id}/audio\\?exp=\\d+&by=webhook%3Acrm&sig=[0-9a-f]{64}$`))
    const expiresIn = Date.parse(s.recording.downloadExpiresAt) - Date.now()
    t.ok(expiresIn > 0 && expiresIn <= 900_000, 'expires within 15 minutes')
  }

  // the link works without any token, and is audited under the webhook's name
  const link = stored[0].recording
  const res = await fetch(link.downloadUrl)
  t.equal(res.status, 200)
  const audio = Buffer.from(await res.arrayBuffer())
  t.equal(createHash('sha256').update(audio).digest('hex'), link.sha256, 'the stored audio, byte for byte')
  t.match(res.headers.get('content-disposition'), /attachment/)
  const audit = await db.pool.query(`SELECT actor, details FROM audit_log WHERE action = 'download_link' AND recording_id = $1`, [link.id])
  t.equal(audit.rowCount, 1)
  t.equal(audit.rows[0].actor, 'webhook:crm')
  const head = await fetch(link.downloadUrl, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(Number(head.headers.get('content-length')), audio.length, 'HEAD: the size, no body')
  t.equal((await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'download_link' AND recording_id = $1`, [link.id])).rowCount, 1, 'HEAD reads nothing: no download audited')
  t.ok((await verifyAuditChain(db.pool)).ok)

  // tampered: signature, expiry, subject, recording id → 403; expired but genuine → 410
  const u = new URL(link.downloadUrl)
  const variant = (f: (u: URL) => void) => { const v = new URL(u); f(v); return v.toString() }
  const sig = u.searchParams.get('sig')!
  const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0')
  t.equal((await fetch(variant((v) => v.searchParams.set('sig', flipped)))).status, 403, 'signature altered')
  t.equal((await fetch(variant((v) => v.searchParams.set('exp', String(Number(v.searchParams.get('exp')) + 3600))))).status, 403, 'expiry extended')
  t.equal((await fetch(variant((v) => v.searchParams.set('by', 'someone-else')))).status, 403, 'subject altered')
  t.equal((await fetch(variant((v) => { v.pathname = v.pathname.replace(link.id, stored[1].recording.id) }))).status, 403, 'another recording')
  t.equal((await fetch(variant((v) => v.searchParams.delete('sig')))).status, 400, 'no signature: rejected by the schema')
  const old = await wh.signer.recordingAudio(link.id, 'webhook:crm', Date.now() - 3_600_000)
  const expired = await fetch(old.url)
  t.equal(expired.status, 410, 'a genuine link past its expiry')
  t.equal((await expired.json() as { code: string }).code, 'link_expired')
  t.equal((await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'download_link' AND recording_id = $1`, [link.id])).rowCount, 1, 'refused requests read nothing and are not counted as downloads')
})
