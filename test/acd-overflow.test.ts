import t from 'tap'
import { acdFixture, answers, targets, queue, startTestDatabase, waitFor, type SimCall } from './acd-fixture.ts'

// ACD through the wire: max wait / max length overflow (queue, voicemail, callback offer) and announcements.
const db = await startTestDatabase()
t.teardown(() => db.close())
const { harness, call, cdr, waiting } = acdFixture(db)

t.test('max wait → overflow queue: the caller moves on and an agent there answers', async (t) => {
  const h = await harness(t, { maxWaitSec: 1, overflow: { action: 'queue', target: 'tq2' } }, { ready: ['o1'], extra: [queue({ id: 'tq2', groupIds: ['tg2'] })] })
  const c = call(h, '79030000061', { bridgeTargets: targets({ 'user/2101': answers(20, 200) }) })
  await c.done
  const row = await cdr(c.uuid)
  t.equal(row.queue_id, 'tq2')
  t.equal(row.agent_id, 'o1')
  t.equal(row.outcome, 'answered')
})

t.test('max wait → voicemail: the message is a stored recording linked to the call and the client', async (t) => {
  const h = await harness(t, { maxWaitSec: 1, overflow: { action: 'voicemail' } })
  // 1 s real = 20 s script time waiting, then a message until the caller hangs up.
  const c = call(h, '79160000002', { hangupAtMs: 40_000 })
  await c.done
  const vm = await waitFor('voicemail row', async () => (await db.pool.query('SELECT * FROM voicemails WHERE call_uuid = $1', [c.uuid])).rows[0], 5000, 50)
  t.equal(vm.client_id, 'cB')
  t.equal(vm.queue_id, 'tq')
  const rec = await waitFor('voicemail stored', async () => (await db.pool.query(`SELECT * FROM recordings WHERE id = $1 AND state = 'stored'`, [vm.recording_id])).rows[0], 40_000, 200)
  t.equal(rec.call_uuid, c.uuid)
  t.equal(rec.client_id, 'cB')
  t.ok(rec.duration_ms > 1000, `a message of ${rec.duration_ms} ms`)
  t.equal((await cdr(c.uuid)).outcome, 'voicemail')
})

t.test('max wait → callback offer: pressing 1 creates a callback task', async (t) => {
  const h = await harness(t, { maxWaitSec: 1, overflow: { action: 'callback-offer' } })
  const c = call(h, '79030000071', { dtmf: [{ atMs: 30_000, digits: '1' }] })
  await c.done
  const cb = (await db.pool.query('SELECT * FROM callbacks WHERE call_uuid = $1', [c.uuid])).rows
  t.equal(cb.length, 1)
  t.equal(cb[0].reason, 'requested')
  t.equal(cb[0].phone, '+79030000071')
  t.equal((await cdr(c.uuid)).outcome, 'callback_requested')
  const offer = c.commands.find((x) => x.headers['execute-app-name'] === 'play_and_get_digits')
  t.match(offer?.headers['execute-app-arg'] ?? '', /ivr-callback_offer\.wav/, 'the offer prompt played')
})

t.test('max length: the caller over the limit overflows at once; a caller hanging up while waiting is abandoned', async (t) => {
  const h = await harness(t, { maxLength: 1 })
  const first = call(h, '79030000081', { hangupAtMs: 30_000 })
  await waiting(1)
  const second = call(h, '79030000082')
  await second.done
  const cb = (await db.pool.query('SELECT reason FROM callbacks WHERE call_uuid = $1', [second.uuid])).rows
  t.same(cb.map((r) => r.reason), ['queue_overflow'])
  t.equal((await cdr(second.uuid)).outcome, 'overflow')
  await first.done
  t.equal((await cdr(first.uuid)).outcome, 'abandoned')
  t.equal((await db.pool.query('SELECT count(*)::int AS n FROM queue_calls')).rows[0].n, 0, 'nobody left on the list')
  t.same((await db.pool.query('SELECT reason FROM callbacks WHERE call_uuid = $1', [first.uuid])).rows.map((r) => r.reason), ['abandoned'])
})

t.test('position announcement: each caller hears their place, again every interval', async (t) => {
  const h = await harness(t, { announcePosition: true, announceIntervalSec: 1 })
  const c1 = call(h, '79030000091', { hangupAtMs: 50_000 })
  await waiting(1)
  const c2 = call(h, '79030000092', { hangupAtMs: 50_000 })
  await Promise.all([c1.done, c2.done])
  const said = (c: SimCall) => c.commands.filter((x) => x.headers['execute-app-name'] === 'say').map((x) => x.headers['execute-app-arg'])
  const played = (c: SimCall) => c.commands.filter((x) => x.headers['execute-app-name'] === 'playback').map((x) => x.headers['execute-app-arg'])
  t.ok(said(c1).length >= 2, `announced repeatedly (${said(c1).length}×)`)
  t.match(said(c1)[0], / 1$/, 'first caller: number 1')
  t.match(said(c2)[0], / 2$/, 'second caller: number 2')
  t.ok(played(c2).includes('pos.wav'), 'the position prompt before the number')
  t.ok(c2.commands.some((x) => x.headers['execute-app-name'] === 'endless_playback' && x.headers['execute-app-arg'] === 'moh.wav'), 'music on hold between announcements')
})
