import t from 'tap'
import { decideRoute, queuePriority } from '../src/routing/decide.ts'
import { fixedClock, type CallFacts, type PresenceState, type RouteDecision } from '../src/routing/types.ts'
import { baseConfig, directory, presence, PHONES, MON_10_MSK } from './routing-fixture.ts'

const dir = directory()
const cfg = baseConfig()
const cfgFallback = baseConfig(c => { c.routing.afterHours = { openOfficeFallback: true } })
const allReady: Record<string, PresenceState> = { m1: 'ready', m2: 'ready', m3: 'ready', m4: 'ready', m5: 'ready', m6: 'ready', sup1: 'ready', sec1: 'ready', m9: 'ready', a1: 'ready' }

function decide(f: Partial<CallFacts>, pres: Record<string, PresenceState> = allReady, config = cfg): RouteDecision {
  const facts: CallFacts = { caller: null, did: '+74951230000', time: MON_10_MSK, ...f }
  return decideRoute(facts, dir, presence(pres), fixedClock('2000-01-01T00:00:00Z'), config)
}
const chain = (d: RouteDecision) => d.kind === 'direct' ? d.targets.map(x => `${x.role}:${x.employeeId}:${x.ringSec}`) : d.kind

t.test('known client → manager → colleagues → supervisor → secretary (seed 000)', async t => {
  const d = decide({ caller: PHONES.clientA })
  t.equal(d.kind, 'direct')
  t.same(chain(d), ['manager:m1:30', 'colleague:m2:20', 'colleague:m3:20', 'colleague:m4:20', 'supervisor:sup1:20', 'secretary:sec1:20'], 'maxColleagues 3, in group order')
  if (d.kind === 'direct') { t.equal(d.fallbackQueueId, 'sales'); t.equal(d.priority, 10, 'segment A') }
  t.match(d.caller, { kind: 'client', clientId: 'cA', segment: 'A', clientKind: 'client', source: 'directory' })
  t.equal(d.sourceTag, 'site')
  t.equal(d.noIvr, true)
  t.equal(d.officeId, 'msk')
  t.match(d.reasons.join('\n'), /assigned manager Manager One \(m1\) is ready → ring 30s/)
})

t.test('failover chains never include absent agents (seed 003)', async t => {
  const table: Array<[string, Record<string, PresenceState>, string[] | string]> = [
    ['manager on a call → colleague first', { ...allReady, m1: 'on_call' }, ['colleague:m2:20', 'colleague:m3:20', 'colleague:m4:20', 'supervisor:sup1:20', 'secretary:sec1:20']],
    ['not-ready, wrap-up, offline and unknown skipped', { m1: 'not_ready', m2: 'wrap_up', m3: 'offline', m5: 'ready', sup1: 'on_call', sec1: 'ready' }, ['colleague:m5:20', 'secretary:sec1:20']],
    ['only supervisor ready', { sup1: 'ready' }, ['supervisor:sup1:20']],
    ['nobody present at all → queue', {}, 'queue'],
    ['secretary and supervisor absent', { m1: 'ready', m6: 'ready' }, ['manager:m1:30', 'colleague:m6:20']],
  ]
  for (const [name, pres, want] of table) {
    const d = decide({ caller: PHONES.clientA }, pres)
    t.same(chain(d), want, name)
    if (d.kind === 'direct') for (const x of d.targets) t.equal(pres[x.employeeId], 'ready', `${name}: ${x.employeeId} is ready`)
  }
  const d = decide({ caller: PHONES.clientA }, {})
  t.match(d, { kind: 'queue', queueId: 'sales', priority: 10 })
  t.match(d.reasons.join('\n'), /is offline → skipped/)
  t.match(d.reasons.join('\n'), /nobody in the manager chain is ready/)
})

t.test('manager edge cases', async t => {
  t.match(decide({ caller: PHONES.ghostMgr }, {}), { kind: 'queue', queueId: 'sales' })
  t.match(decide({ caller: PHONES.ghostMgr }).reasons.join('\n'), /assigned manager nobody is not in the directory/)
  t.same(chain(decide({ caller: PHONES.lonelyMgr })), ['manager:m9:30'], 'no group: only the manager')
  t.match(decide({ caller: PHONES.clientNoMgr }), { kind: 'queue', queueId: 'sales', priority: 5 })
  const cfgClientQ = baseConfig(c => { c.routing.kindRoutes = { client: 'callcentre' } })
  t.match(decide({ caller: PHONES.clientNoMgr }, allReady, cfgClientQ), { kind: 'queue', queueId: 'callcentre' })
  t.match(decide({ caller: PHONES.clientB }, { m3: 'ready' }), { kind: 'direct', targets: [{ employeeId: 'm3', role: 'manager' }], fallbackQueueId: 'sales', priority: 5 })
})

t.test('counterparty kind routing (seed 001) and segments (seed 000)', async t => {
  const table: Array<[string, string, string, number]> = [
    ['supplier → production', PHONES.supplier, 'production', 5],
    ['other → finance', PHONES.other, 'finance', 0],
    ['partner without a route → other route', PHONES.partner, 'finance', 5],
    ['unknown → sales', PHONES.unknown, 'sales', 0],
    ['segment C client → call centre', PHONES.clientC, 'callcentre', 0],
  ]
  for (const [name, caller, queueId, priority] of table) t.match(decide({ caller }), { kind: 'queue', queueId, priority }, name)
  const withPartner = baseConfig(c => { c.routing.kindRoutes = { partner: 'production' } })
  t.match(decide({ caller: PHONES.partner }, allReady, withPartner), { kind: 'queue', queueId: 'production' })
  const noneSeg = baseConfig(c => { c.routing.unidentifiedSegment = 'none'; c.routing.segmentPriority = { C: -5 } })
  t.match(decide({ caller: PHONES.unknown }, allReady, noneSeg), { kind: 'queue', priority: 0 })
  t.match(decide({ caller: PHONES.clientC }, allReady, noneSeg), { kind: 'queue', queueId: 'callcentre', priority: -5 })
})

t.test('segment priority: config defaults and per-queue rules', async t => {
  const c = baseConfig(x => { x.queues[0].priorityRules = [{ segment: 'A', priority: 50 }, { segment: 'unidentified', priority: -3 }] })
  t.equal(queuePriority(c, 'sales', 'A'), 50)
  t.equal(queuePriority(c, 'sales', 'B'), 5)
  t.equal(queuePriority(c, 'sales', 'unidentified'), -3)
  t.equal(queuePriority(c, 'finance', 'unidentified'), 0)
  t.match(decide({ caller: PHONES.clientA }, {}, c), { kind: 'queue', queueId: 'sales', priority: 50 })
})

t.test('DIDs: source tag, noIvr, IVR, DID queue, unknown DID (seeds 001, 002)', async t => {
  t.match(decide({ caller: PHONES.unknown, did: '+74951230002' }), { kind: 'ivr', menuId: 'main', sourceTag: 'billboard', noIvr: false, priority: 0 })
  t.match(decide({ caller: PHONES.clientA, did: '+74951230002' }), { kind: 'direct', sourceTag: 'billboard' }, 'known clients skip the IVR')
  t.match(decide({ caller: PHONES.supplier, did: '+74951230002' }), { kind: 'queue', queueId: 'production' }, 'suppliers skip the IVR')
  t.match(decide({ caller: PHONES.unknown, did: '74951230000' }), { kind: 'queue', queueId: 'sales', sourceTag: 'site', noIvr: true }, 'DID found by digits')
  t.match(decide({ caller: PHONES.unknown, did: '+74232000000', time: new Date('2025-03-03T01:00:00Z') }), { kind: 'queue', queueId: 'sales-vvo', sourceTag: 'site-vvo', officeId: 'vvo' })
  t.match(decide({ caller: PHONES.clientNoMgr, did: '+74232000000', time: new Date('2025-03-03T01:00:00Z') }), { kind: 'queue', queueId: 'sales-vvo' }, 'DID queue for clients without manager')
  const d = decide({ caller: PHONES.unknown, did: '+70000000000' })
  t.match(d, { kind: 'queue', queueId: 'sales', sourceTag: null, noIvr: false, officeId: 'msk' })
  t.match(d.reasons[0], /not configured/)
  t.match(decide({ caller: null }), { kind: 'queue', queueId: 'sales', caller: { kind: 'unidentified' } }, 'withheld number')
  t.match(decide({ caller: PHONES.employeeMobile }), { kind: 'queue', queueId: 'sales', caller: { kind: 'employee', employeeId: 'm1' } })
})

t.test('repeat caller → same agent if free (seed 004)', async t => {
  t.same(chain(decide({ caller: PHONES.clientA, callsTodayByCaller: 1, lastAgentToday: 'm5' })).slice(0, 2), ['last-agent:m5:20', 'manager:m1:30'])
  t.same(chain(decide({ caller: PHONES.clientA, callsTodayByCaller: 2, lastAgentToday: 'm1' })).slice(0, 2), ['last-agent:m1:20', 'colleague:m2:20'], 'no duplicate when the last agent is the manager')
  t.same(chain(decide({ caller: PHONES.clientA, callsTodayByCaller: 1, lastAgentToday: 'm5' }, { ...allReady, m5: 'on_call' }))[0], 'manager:m1:30', 'busy last agent skipped')
  t.match(decide({ caller: PHONES.unknown, callsTodayByCaller: 1, lastAgentToday: 'a1' }), { kind: 'direct', targets: [{ employeeId: 'a1', role: 'last-agent' }], fallbackQueueId: 'sales', priority: 0 })
  t.match(decide({ caller: PHONES.unknown, callsTodayByCaller: 1, lastAgentToday: 'a1', did: '+74951230002' }), { kind: 'direct', targets: [{ employeeId: 'a1' }] }, 'repeat caller skips the IVR')
  t.match(decide({ caller: PHONES.clientC, callsTodayByCaller: 1, lastAgentToday: 'a1' }), { kind: 'direct', targets: [{ employeeId: 'a1' }], fallbackQueueId: 'callcentre' })
  t.match(decide({ caller: PHONES.supplier, callsTodayByCaller: 1, lastAgentToday: 'a1' }), { kind: 'direct', fallbackQueueId: 'production' })
  t.match(decide({ caller: PHONES.unknown, callsTodayByCaller: 0, lastAgentToday: 'a1' }), { kind: 'queue' }, 'first call today')
  const off = baseConfig(c => { c.routing.repeatCaller = { enabled: false } })
  t.match(decide({ caller: PHONES.unknown, callsTodayByCaller: 3, lastAgentToday: 'a1' }, allReady, off), { kind: 'queue' }, 'disabled')
})

t.test('blacklist after N flagged calls a day (seed 004)', async t => {
  t.match(decide({ caller: PHONES.unknown, blacklistFlagsToday: 5 }), { kind: 'reject', cause: 'CALL_REJECTED', reason: /flagged 5 times today \(limit 5\)/ })
  t.match(decide({ caller: PHONES.unknown, blacklistFlagsToday: 4 }), { kind: 'queue', queueId: 'sales' })
  t.match(decide({ caller: PHONES.clientA, blacklistFlagsToday: 9 }), { kind: 'reject' }, 'even a client')
  t.match(decide({ caller: '+79990000000' }), { kind: 'reject', reason: /on the blacklist/ })
  t.match(decide({ caller: null, blacklistFlagsToday: 99 }), { kind: 'queue' }, 'withheld numbers cannot be blacklisted')
  const q = baseConfig(c => { c.routing.blacklist = { enabled: true, maxCallsPerDay: 3, treatment: 'queue', queue: 'spam' } })
  t.match(decide({ caller: PHONES.unknown, blacklistFlagsToday: 3 }, allReady, q), { kind: 'queue', queueId: 'spam', priority: -100 })
  const off = baseConfig(c => { c.routing.blacklist = { enabled: false, numbers: ['+79990000000'] } })
  t.match(decide({ caller: '+79990000000', blacklistFlagsToday: 50 }, allReady, off), { kind: 'queue' })
})

t.test('office hours, calendar and the open-office fallback (seeds 000, 001, 002)', async t => {
  type Row = [name: string, iso: string, did: string, config: 'plain' | 'fallback' | 'holidayQ', want: Record<string, unknown>]
  const holidayQ = baseConfig(c => { c.routing.afterHours = { holidayQueue: 'quality', createCallback: false, prompt: 'closed.wav' } })
  const rows: Row[] = [
    ['Mon 10:00 MSK open', '2025-03-03T07:00:00Z', '+74951230000', 'plain', { kind: 'queue', queueId: 'sales' }],
    ['Mon 08:59 MSK closed', '2025-03-03T05:59:00Z', '+74951230000', 'plain', { kind: 'after-hours', prompt: 'after-hours.wav', createCallback: true }],
    ['Mon 09:00 MSK opens', '2025-03-03T06:00:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['Mon 17:59 MSK open', '2025-03-03T14:59:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['Mon 18:00 MSK closed', '2025-03-03T15:00:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    ['Sat closed', '2025-03-15T08:00:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    // Moscow 08:00 Monday = Vladivostok 15:00 Monday → the open office takes it.
    ['Moscow before hours → Vladivostok open', '2025-03-03T05:00:00Z', '+74951230000', 'fallback', { kind: 'queue', queueId: 'sales-vvo', officeId: 'vvo' }],
    // Sunday 23:30Z = Monday 02:30 in Moscow (closed), Monday 09:30 in Vladivostok (open): across midnight.
    ['across midnight: Sun 23:30Z → Vladivostok Monday morning', '2025-03-02T23:30:00Z', '+74951230000', 'fallback', { kind: 'queue', queueId: 'sales-vvo' }],
    ['Sun 22:59Z: Vladivostok Mon 08:59 not yet open', '2025-03-02T22:59:00Z', '+74951230000', 'fallback', { kind: 'after-hours' }],
    // Vladivostok DID at Monday 18:30 VVO (08:30Z) → Moscow 11:30 open.
    ['Vladivostok evening → Moscow open', '2025-03-03T08:30:00Z', '+74232000000', 'fallback', { kind: 'queue', queueId: 'sales', officeId: 'msk' }],
    ['Vladivostok evening, no fallback', '2025-03-03T08:30:00Z', '+74232000000', 'plain', { kind: 'after-hours', officeId: 'vvo' }],
    // Holidays.
    ['national holiday Wed 2025-01-08', '2025-01-08T07:00:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    ['holiday → holiday queue (seed 001)', '2025-01-08T07:00:00Z', '+74951230000', 'holidayQ', { kind: 'queue', queueId: 'quality' }],
    ['holiday everywhere: fallback finds nothing', '2025-01-08T03:00:00Z', '+74951230000', 'fallback', { kind: 'after-hours' }],
    ['weekday after-hours is not a holiday', '2025-03-03T16:00:00Z', '+74951230000', 'holidayQ', { kind: 'after-hours', createCallback: false, prompt: 'closed.wav' }],
    ['Vladivostok local holiday while Moscow works', '2025-07-02T01:00:00Z', '+74232000000', 'fallback', { kind: 'after-hours' }],
    ['Vladivostok local holiday, Moscow open later', '2025-07-02T07:00:00Z', '+74232000000', 'fallback', { kind: 'queue', queueId: 'sales', officeId: 'msk' }],
    ['Moscow works on Vladivostok local holiday', '2025-07-02T07:00:00Z', '+74951230000', 'plain', { kind: 'queue', queueId: 'sales' }],
    // Holiday in Moscow time: 2025-01-07 21:30Z is already 00:30 on 2025-01-08 in Moscow.
    ['holiday starts at local midnight', '2025-01-07T21:30:00Z', '+74951230000', 'holidayQ', { kind: 'queue', queueId: 'quality' }],
    ['day before holiday evening is regular', '2025-01-07T20:30:00Z', '+74951230000', 'holidayQ', { kind: 'after-hours' }],
    // Shortened pre-holiday day (Fri 2025-03-07, 09:00-17:00).
    ['short day 16:30 open', '2025-03-07T13:30:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['short day 17:30 closed', '2025-03-07T14:30:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    ['regular Thursday 17:30 open', '2025-03-06T14:30:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    // Transferred working Saturday 2025-11-01 10:00-15:00.
    ['working Saturday 11:00', '2025-11-01T08:00:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['working Saturday 15:30', '2025-11-01T12:30:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    // DST: Moscow has none, Berlin shifts. 06:00Z is 09:00 in Moscow both in January and in July.
    ['Moscow January 06:00Z open', '2025-01-15T06:00:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['Moscow July 06:00Z open (no DST)', '2025-07-15T06:00:00Z', '+74951230000', 'plain', { kind: 'queue' }],
    ['Moscow July 05:59Z closed (no DST)', '2025-07-15T05:59:00Z', '+74951230000', 'plain', { kind: 'after-hours' }],
    ['Berlin January 07:30Z = 08:30 CET closed', '2025-01-15T07:30:00Z', '+4930000000', 'plain', { kind: 'after-hours' }],
    ['Berlin July 07:30Z = 09:30 CEST open', '2025-07-15T07:30:00Z', '+4930000000', 'plain', { kind: 'queue' }],
  ]
  for (const [name, iso, did, which, want] of rows) {
    const config = which === 'plain' ? cfg : which === 'fallback' ? cfgFallback : holidayQ
    const d = decide({ caller: PHONES.unknown, did, time: new Date(iso) }, allReady, config)
    t.match(d, want, name)
  }
})

t.test('after-hours reasons explain local time; clock used when facts carry no time', async t => {
  const d = decideRoute({ caller: PHONES.unknown, did: '+74951230000' }, dir, presence(allReady), fixedClock('2025-01-08T07:00:00Z'), cfg)
  t.equal(d.kind, 'after-hours')
  t.match(d.reasons.join('\n'), /office msk closed at 2025-01-08 10:00 wed Europe\/Moscow \(holiday, hours closed\)/)
  t.match(d.reasons.join('\n'), /after-hours message \+ callback task/)
})

t.test('presence may be a function; live-lookup identity is used', async t => {
  const d = decideRoute({ caller: '+73430000000', did: '+74951230000', time: MON_10_MSK, identity: { kind: 'client', source: 'live', client: { id: 'x', name: 'Live', segment: 'A', kind: 'client', assignedManagerId: 'm2' } } },
    dir, id => (id === 'm2' ? 'ready' : undefined), fixedClock(MON_10_MSK), cfg)
  t.match(d, { kind: 'direct', targets: [{ employeeId: 'm2', role: 'manager' }], caller: { kind: 'client', clientId: 'x', source: 'live' } })
  t.equal(d.kind === 'direct' ? d.targets.length : -1, 1)
  t.match(d.reasons.join('\n'), /found by live lookup/)
})

t.test('decisions are pure: same input, same output; config not mutated', async t => {
  const before = JSON.stringify(cfg)
  const a = decide({ caller: PHONES.clientA, callsTodayByCaller: 1, lastAgentToday: 'm5' })
  const b = decide({ caller: PHONES.clientA, callsTodayByCaller: 1, lastAgentToday: 'm5' })
  t.same(a, b)
  t.equal(JSON.stringify(cfg), before)
})
