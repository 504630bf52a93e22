import t from 'tap'
import { assign, headOrder, type QueueRules, type ReadyAgent, type WaitingCall } from '../src/acd/strategy.ts'
import { callerPriority } from '../src/acd/priority.ts'
import { loadSwitchboardFile, validateSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'

// The pure part of the ACD: who gets whom (strategy.ts) and a caller's priority (priority.ts).
const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 9, 0, s))
const waitingCall = (id: string, p: Partial<WaitingCall> = {}): WaitingCall => ({ callUuid: id, queueId: 'q', priority: 0, enteredAt: at(0), stickyAgentId: null, tried: [], ...p })
const agent = (id: string, lastEnd: number | null, since = 0): ReadyAgent => ({ employeeId: id, lastCallEndedAt: lastEnd === null ? null : at(lastEnd), since: at(since) })
const rules = (p: Partial<QueueRules> = {}): Map<string, QueueRules> => new Map([['q', { strategy: 'longest-idle', stickyFallback: 'longest-idle', members: ['a1', 'a2', 'a3'], ...p }]])
const picks = (w: WaitingCall[], r: ReadyAgent[], q = rules(), cursors = new Map<string, string>()) =>
  assign(w, r, q, cursors).map((a) => `${a.callUuid}:${a.employeeIds.join('+')}`)

t.test('head order: priority, then wait, then id', async (t) => {
  const list = [waitingCall('late', { enteredAt: at(9) }), waitingCall('vip', { priority: 100, enteredAt: at(20) }), waitingCall('early', { enteredAt: at(1) })]
  t.same(list.sort(headOrder).map((c) => c.callUuid), ['vip', 'early', 'late'])
})

t.test('longest-idle: the earliest end of last call wins; never-called agents by since', async (t) => {
  t.same(picks([waitingCall('c')], [agent('a1', 30), agent('a2', 10), agent('a3', 20)]), ['c:a2'])
  t.same(picks([waitingCall('c')], [agent('a1', 30), agent('a2', null, 5)]), ['c:a2'], 'no call yet: idle since becoming ready')
  t.same(picks([waitingCall('c1'), waitingCall('c2', { enteredAt: at(1) })], [agent('a1', 30), agent('a2', 10)]), ['c1:a2', 'c2:a1'])
})

t.test('an agent goes to one call only; the head takes first; other queues are not blocked', async (t) => {
  const q = new Map<string, QueueRules>([
    ['q', { strategy: 'longest-idle', stickyFallback: 'longest-idle', members: ['a1'] }],
    ['r', { strategy: 'longest-idle', stickyFallback: 'longest-idle', members: ['a2'] }],
  ])
  const w = [waitingCall('q1', { priority: 5 }), waitingCall('q2', { priority: 9 }), waitingCall('r1', { queueId: 'r', priority: 1 })]
  t.same(picks(w, [agent('a1', 0), agent('a2', 0)], q), ['q2:a1', 'r1:a2'], 'q2 (higher priority) gets a1; r1 still served')
  t.same(picks(w, [], q), [], 'nobody ready, nobody offered')
  t.same(picks([waitingCall('x', { queueId: 'unknown' })], [agent('a1', 0)], q), [], 'a queue no longer in the config')
})

t.test('round-robin walks the fixed order from the cursor and updates it', async (t) => {
  const q = rules({ strategy: 'round-robin' })
  const cursors = new Map<string, string>()
  const ready = [agent('a1', 0), agent('a2', 0), agent('a3', 0)]
  t.same(picks([waitingCall('c1')], ready, q, cursors), ['c1:a1'])
  t.same(picks([waitingCall('c2')], ready, q, cursors), ['c2:a2'])
  t.same(picks([waitingCall('c3')], [agent('a1', 0), agent('a2', 0)], q, cursors), ['c3:a1'], 'a3 not ready: wraps around')
  t.equal(cursors.get('q'), 'a1')
  cursors.set('q', 'gone')
  t.same(picks([waitingCall('c4')], ready, q, cursors), ['c4:a1'], 'cursor on someone who left the queue: from the start')
})

t.test('ring-all takes every free member; sticky prefers the last agent, else the fallback', async (t) => {
  t.same(picks([waitingCall('c')], [agent('a1', 0), agent('a3', 0), agent('x9', 0)], rules({ strategy: 'ring-all' })), ['c:a1+a3'], 'non-members never')
  const sticky = rules({ strategy: 'sticky', stickyFallback: 'round-robin' })
  t.same(picks([waitingCall('c', { stickyAgentId: 'a3' })], [agent('a1', 0), agent('a3', 50)], sticky), ['c:a3'])
  t.same(picks([waitingCall('c', { stickyAgentId: 'a2' })], [agent('a1', 0), agent('a3', 50)], sticky), ['c:a1'], 'a2 not ready: round-robin')
  const r = assign([waitingCall('c', { stickyAgentId: 'a3' })], [agent('a3', 0)], sticky, new Map())
  t.equal(r[0].strategy, 'sticky')
})

t.test('agents who let this call ring are tried again only when nobody else is free', async (t) => {
  t.same(picks([waitingCall('c', { tried: ['a2'] })], [agent('a1', 30), agent('a2', 10)]), ['c:a1'])
  t.same(picks([waitingCall('c', { tried: ['a2'] })], [agent('a2', 10)]), ['c:a2'])
})

t.test('priority: segment rule or segment priority, + VIP, + callback, + attribute rules', async (t) => {
  const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
  const sales = cfg.queues.find((q) => q.id === 'sales')!
  const p = (f: Parameters<typeof callerPriority>[2], q = sales) => callerPriority(cfg, q, f).priority
  t.equal(p({ segment: 'A', client: undefined, callback: false }), 20, 'sales has a segment A rule (20)')
  t.equal(p({ segment: 'B', client: undefined, callback: false }), 5, 'routing.segmentPriority B')
  t.equal(p({ segment: null, client: undefined, callback: false }), 0, 'unidentified counts as C')
  t.equal(p({ segment: 'B', client: { id: 'x', name: 'x', segment: 'B', kind: 'client', attributes: { vip: true } }, callback: false }), 105)
  t.equal(p({ segment: 'B', client: undefined, callback: true }), 55)
  t.equal(p({ segment: 'B', client: undefined, callback: false, decided: 42 }), 42, 'a priority the route decision set wins over the segment')
  const ruled = { ...sales, priorityRules: [...sales.priorityRules.filter((r) => r.attribute === undefined), { attribute: 'contract', equals: 'gold', priority: 7 }, { attribute: 'debtor', priority: -30 }] }
  t.equal(p({ segment: 'B', client: { id: 'x', name: 'x', segment: 'B', kind: 'client', attributes: { contract: 'gold', debtor: 'yes' } }, callback: false }, ruled), 5 + 7 - 30)
})

t.test('config: priority rules name exactly one of segment/attribute; new overflow action; defaults', async (t) => {
  const base = {
    offices: [{ id: 'o', name: 'O', tz: 'Europe/Moscow', hours: { mon: '09:00-18:00', tue: 'closed', wed: 'closed', thu: 'closed', fri: 'closed' } }],
    routing: { kindRoutes: { unknown: 'q', supplier: 'q', other: 'q' } },
  }
  const ok = validateSwitchboardFile({ ...base, queues: [{ id: 'q', name: 'Q', overflow: { action: 'callback-offer' } }] })
  t.equal(ok.queues[0].announceIntervalSec, 30)
  t.equal(ok.acd.callbackOffer.digit, '1')
  t.throws(() => validateSwitchboardFile({ ...base, queues: [{ id: 'q', name: 'Q', priorityRules: [{ segment: 'A', attribute: 'vip', priority: 1 }] }] }), /queues\[0\]\.priorityRules\[0\]: a rule names exactly one of segment, attribute/)
  t.throws(() => validateSwitchboardFile({ ...base, queues: [{ id: 'q', name: 'Q', priorityRules: [{ priority: 1 }] }] }), /exactly one/)
  t.throws(() => validateSwitchboardFile({ ...base, queues: [{ id: 'q', name: 'Q', strategy: 'random' }] }), /queues\[0\]\.strategy: must be one of/)
  t.throws(() => validateSwitchboardFile({ ...base, acd: { pollIntervalMs: 5 } }), /acd\.pollIntervalMs/)
})
