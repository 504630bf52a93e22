import t from 'tap'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { SseClient, type SseMessage } from './support/sse-client.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { screenPopRoutes } from '../src/http/plugins/screen-pop.ts'
import { clientsRoutes } from '../src/http/plugins/clients.ts'
import { ScreenPopHub, type OfferPayload } from '../src/screen-pop/hub.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { buildDirectory, type ClientInput, type Employee } from '../src/crm/directory.ts'
import { silentLogger } from '../src/log.ts'

// Screen pop end to end: a real call through the wire simulator rings an agent; the agent's
// real SSE connection receives the offer with the client card loaded from Postgres, then
// answered and ended. An unknown number gets the create form, and the form's POST makes
// the number known.
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

// The client's history: a previous call with a stored recording, an open callback, ERP attributes.
const prevCall = randomUUID()
const recId = randomUUID()
await db.pool.query(`INSERT INTO employees (id, name, role, group_id, extension) VALUES ('mgr-1', 'Анна', 'manager', 'sales-1', '1001'), ('col-1', 'Борис', 'manager', 'sales-1', '1002')`)
await db.pool.query(`INSERT INTO clients (id, name, segment, kind, assigned_manager_id, attributes) VALUES ('c-romashka', 'ООО Ромашка', 'A', 'client', 'mgr-1', '{"orders": 3, "receivables": 12000}')`)
await db.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74951234567', 'c-romashka')`)
await db.pool.query(`INSERT INTO calls (uuid, direction, caller, did, client_id, agent_id, started_at, ended_at, outcome, counted) VALUES
  ($1, 'inbound', '+74951234567', '+74951230000', 'c-romashka', 'mgr-1', '2026-11-20T10:00:00Z', '2026-11-20T10:05:00Z', 'answered', true),
  ($2, 'inbound', '+79031112233', '+74951230000', NULL, NULL, '2026-11-21T10:00:00Z', '2026-11-21T10:01:00Z', 'abandoned', true)`, [prevCall, randomUUID()])
await db.pool.query(`INSERT INTO recordings (id, call_uuid, client_id, agent_id, spool_path, state, duration_ms) VALUES ($1, $2, 'c-romashka', 'mgr-1', '/spool/x.wav', 'stored', 300000)`, [recId, prevCall])
await db.pool.query(`INSERT INTO callbacks (client_id, phone, reason) VALUES ('c-romashka', '+74951234567', 'abandoned'), (NULL, '+79031112233', 'abandoned')`)

const h = await startCallHarness(db, {
  employees, clients, ready: ['mgr-1', 'col-1'], at: AT, timeScale: 0.05,
  configure: (cfg) => { for (const q of cfg.queues) q.wrapUpSec = 0; cfg.screenPop.maxStreamsPerEmployee = 2 },
})
t.teardown(() => h.close())
const directory = buildDirectory({ clients, employees, groups: h.config.groups }, { defaultRegion: 'RU' })
const hub = new ScreenPopHub({ events: h.events, pool: db.pool, log: silentLogger(), config: () => h.config })
hub.start()
const app = await buildHttpApp({
  log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [],
  plugins: [screenPopRoutes({ hub, pool: db.pool, config: () => h.config }), clientsRoutes({ pool: db.pool, config: () => h.config, directory: () => directory })],
})
const base = await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(async () => { hub.stop(); await app.close() })

const anna = await createApiToken(db.pool, { id: 'u-anna', name: 'Анна', role: 'agent', employeeId: 'mgr-1' })
const boris = await createApiToken(db.pool, { id: 'u-boris', name: 'Борис', role: 'agent', employeeId: 'col-1' })
const unlinked = await createApiToken(db.pool, { id: 'u-x', name: 'X', role: 'agent' })
const supervisor = await createApiToken(db.pool, { id: 'u-sup', name: 'Sup', role: 'supervisor' })
const qa = await createApiToken(db.pool, { id: 'u-qa', name: 'QA', role: 'qa' })
const auth = (token: string) => ({ authorization: `Bearer ${token}` })
const open = async (token: string, query = '') => {
  const c = await SseClient.connect(`${base}/api/screen-pop/stream${query}`, auth(token))
  if (c.status === 200) await c.next((m) => m.event === 'ready')
  return c
}
const ofCall = (uuid: string, event: string) => (m: SseMessage) => m.event === event && (m.data as { callUuid?: string; call?: { uuid: string } }).callUuid === uuid
  || (m.event === event && (m.data as OfferPayload).call?.uuid === uuid)

t.test('known client: offer with the card from Postgres, then answered and ended, on the agent\'s own stream', async (t) => {
  const agentStream = await open(anna)
  const watching = await open(supervisor, '?employeeId=mgr-1')
  const other = await open(boris)
  t.teardown(() => { agentStream.close(); watching.close(); other.close() })
  const call = h.sim.call({
    callerIdNumber: '84951234567', destination: '+74951230000', source: 'sofia',
    bridgeTargets: { 'user/1001': { answerAfterMs: 1000, hangupAfterMs: 20_000 } },
  })
  const offer = await agentStream.next(ofCall(call.uuid, 'offer'))
  const p = offer.data as OfferPayload
  t.equal(offer.id, `${call.uuid}:mgr-1`)
  t.same(p.call, { uuid: call.uuid, caller: '+74951234567', did: '+74951230000', direction: 'inbound', queueId: null, sourceTag: 'site-main', offeredAt: p.call.offeredAt })
  t.same(p.ivrPath, [], 'no IVR on this DID')
  t.equal(p.employeeId, 'mgr-1')
  const card = p.card!
  t.equal(card.unknown, false)
  if (card.unknown) return
  t.same(card.client, { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', inn: null, region: null, tz: null, attributes: { orders: 3, receivables: 12000 } })
  t.same(card.phones, ['+74951234567'])
  t.same(card.manager, { id: 'mgr-1', name: 'Анна', extension: '1001', mobile: null, groupId: 'sales-1' })
  t.same(card.recentCalls.map((c) => c.uuid), [prevCall], 'history without the call ringing now')
  t.equal(card.recentCalls[0].startedAt, '2026-11-20T10:00:00.000Z')
  t.same(card.recordings, [{ id: recId, callUuid: prevCall, durationMs: 300000, createdAt: card.recordings[0].createdAt, agentId: 'mgr-1' }])
  t.same(card.openCallbacks.map((b) => [b.phone, b.reason, b.state]), [['+74951234567', 'abandoned', 'open']])
  const seen = await watching.next(ofCall(call.uuid, 'offer'))
  t.same(seen.data, offer.data, 'a supervisor watching the agent sees the same pop')
  const answered = await agentStream.next(ofCall(call.uuid, 'answered'))
  t.same(answered.data, { callUuid: call.uuid, employeeId: 'mgr-1', at: (answered.data as { at: string }).at })
  await call.done
  const ended = await agentStream.next(ofCall(call.uuid, 'ended'))
  t.equal((ended.data as { outcome: string }).outcome, 'answered')
  const order = agentStream.messages.filter((m) => m.event !== 'ready').map((m) => m.event)
  t.same(order, ['offer', 'answered', 'ended'], 'in call order')
  t.equal(other.messages.filter((m) => m.event !== 'ready').length, 0, 'the colleague\'s phone did not ring: no pop for them')
})

t.test('unknown number: create form with the number\'s history; the form\'s POST makes it a client', async (t) => {
  const annaStream = await open(anna)
  const borisStream = await open(boris)
  t.teardown(() => { annaStream.close(); borisStream.close() })
  // Unknown → sales queue (kindRoutes.unknown) → group sales-1: Анна or Борис rings first.
  const call = h.sim.call({
    callerIdNumber: '89031112233', destination: '+74951230000', source: 'sofia',
    bridgeTargets: { 'user/1001': { answerAfterMs: 500, hangupAfterMs: 18_000 }, 'user/1002': { answerAfterMs: 500, hangupAfterMs: 18_000 } },
  })
  const offer = await Promise.race([annaStream.next(ofCall(call.uuid, 'offer')), borisStream.next(ofCall(call.uuid, 'offer'))])
  const p = offer.data as OfferPayload
  t.equal(p.call.queueId, 'sales')
  t.ok(p.card?.unknown, 'unknown number')
  if (!p.card?.unknown) return
  t.equal(p.card.phone, '+79031112233')
  t.equal(p.card.recentCalls.length, 1, 'the number\'s earlier call')
  t.same(p.card.openCallbacks.map((b) => b.phone), ['+79031112233'])
  t.same(p.card.createForm.fields.phone, { required: true, value: '+79031112233' })
  t.equal(p.card.createForm.url, '/api/clients')
  await call.done

  const listener = new pg.Client({ connectionString: db.url })
  await listener.connect()
  t.teardown(() => listener.end())
  const notified = new Promise<string>((resolve) => listener.on('notification', (m) => resolve(m.payload ?? '')))
  await listener.query('LISTEN switchboard_directory')
  t.equal(directory.identify('+79031112233').kind, 'unidentified')
  const post = (body: unknown, token = anna) => app.inject({ method: 'POST', url: '/api/clients', headers: auth(token), payload: body as object })
  const created = await post({ name: 'ИП Петров', segment: 'B', phone: '8 (903) 111-22-33', attributes: { source: 'screen pop' } })
  t.equal(created.statusCode, 201, created.body)
  const id = created.json().client.id as string
  t.match(id, /^sb-/)
  t.equal(created.headers.location, `/api/clients/${id}/card`)
  t.same(created.json().phones, ['+79031112233'], 'stored in E.164')
  t.equal(await notified, `client:${id}`, 'every node\'s directory is told to reload')
  const known = directory.identify('+79031112233')
  t.equal(known.kind === 'client' && known.client.id, id, 'this node knows the number at once')
  const card = await app.inject({ method: 'GET', url: '/api/screen-pop/card?phone=%2B79031112233', headers: auth(anna) })
  t.equal(card.json().unknown, false)
  t.equal(card.json().client.name, 'ИП Петров')
  t.same(card.json().client.attributes, { source: 'screen pop' })

  const dup = await post({ name: 'Кто-то', phone: '+74951234567' })
  t.equal(dup.statusCode, 409)
  t.match(dup.json().detail, /already belongs to client c-romashka/)
  for (const bad of [{ name: 'X', phone: 'not a phone' }, { name: '   ', phone: '+79035550000' }, { phone: '+79035550000' }, { name: 'X', phone: '+79035550000', segment: 'Z' }, { name: 'X', phone: '+79035550000', extra: 1 }]) {
    t.equal((await post(bad)).statusCode, 400, JSON.stringify(bad))
  }
  t.equal((await post({ name: 'X', phone: '+79035550000' }, qa)).statusCode, 403, 'QA does not create clients')
})

t.test('stream and card access rules, validation', async (t) => {
  const denied = await SseClient.connect(`${base}/api/screen-pop/stream?employeeId=col-1`, auth(anna))
  t.equal(denied.status, 403, 'an agent cannot watch a colleague')
  const noEmployee = await SseClient.connect(`${base}/api/screen-pop/stream`, auth(unlinked))
  t.equal(noEmployee.status, 400)
  t.match(noEmployee.body, /not linked to an employee/)
  t.equal((await SseClient.connect(`${base}/api/screen-pop/stream`, auth(qa))).status, 403)
  t.equal((await SseClient.connect(`${base}/api/screen-pop/stream`)).status, 401)
  const a = await open(anna)
  const b = await open(anna)
  const third = await SseClient.connect(`${base}/api/screen-pop/stream`, auth(anna))
  t.equal(third.status, 429, 'screenPop.maxStreamsPerEmployee')
  a.close(); b.close()
  await new Promise((r) => setTimeout(r, 200))
  t.equal(hub.streamCount, 0, 'closed streams are forgotten')

  const card = (q: string, token = anna) => app.inject({ method: 'GET', url: `/api/screen-pop/card${q}`, headers: auth(token) })
  t.equal((await card('?clientId=c-romashka')).json().client.name, 'ООО Ромашка')
  t.equal((await card('?phone=84951234567')).json().client.id, 'c-romashka', 'any notation')
  t.equal((await card('')).statusCode, 400, 'neither')
  t.equal((await card('?phone=84951234567&clientId=c-romashka')).statusCode, 400, 'both')
  t.equal((await card('?phone=abc')).statusCode, 400)
  t.equal((await card('?clientId=nobody')).statusCode, 404)
  t.equal((await card('?clientId=c-romashka', qa)).statusCode, 403)
  const unknown = (await card('?phone=%2B79990001122')).json()
  t.same({ unknown: unknown.unknown, phone: unknown.phone, calls: unknown.recentCalls.length }, { unknown: true, phone: '+79990001122', calls: 0 })
})

t.test('the pop goes out without the card when Postgres is too slow', async (t) => {
  const events = new (await import('../src/events/bus.ts')).EventBus()
  // A pool whose queries never answer within the timeout.
  const slowPool = { query: () => new Promise(() => undefined) } as unknown as typeof db.pool
  const slow = new ScreenPopHub({ events, pool: slowPool, log: silentLogger(), config: () => ({ ...h.config, screenPop: { ...h.config.screenPop, cardTimeoutMs: 50 } }) })
  slow.start()
  t.teardown(() => slow.stop())
  const got: Array<{ event: string; data: unknown }> = []
  slow.subscribe('e1', { send: (event, data) => { got.push({ event, data }); return true }, closed: new Promise(() => undefined), close: () => undefined })
  const base = { callUuid: randomUUID(), direction: 'inbound' as const, caller: '+74951234567', did: '+74951230000', clientId: null, at: new Date().toISOString() }
  events.emit('call.offered', { ...base, employeeId: 'e1', queueId: null, ivrPath: [] })
  events.emit('call.answered', { ...base, employeeId: 'e1', queueId: null })
  await new Promise((r) => setTimeout(r, 300))
  t.same(got.map((g) => g.event), ['offer', 'answered'], 'still in call order')
  t.same({ card: (got[0].data as OfferPayload).card, error: (got[0].data as OfferPayload).cardError }, { card: null, error: 'timeout' })
})
