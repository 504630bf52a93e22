import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Registry } from 'prom-client'
import { DateTime } from 'luxon'
import { startTestDatabase } from './support/db.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { statsRoutes } from '../src/http/plugins/stats.ts'
import { LiveStats } from '../src/stats/live.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'

// Statistics over a small generated dataset. The expected figures are computed here, in JS,
// from the rows this test inserts (following the definitions in src/stats/report.ts), and
// compared with what the SQL behind GET /api/stats/report answers.

const TZ = 'Europe/Moscow'
const DAY = '2026-11-20'
const dayStart = DateTime.fromISO(DAY, { zone: TZ })          // 2026-11-19T21:00Z
const prevStart = dayStart.minus({ days: 1 })
const SL = 20
const EDGES = [10, 30, 60, 120]

// ---------------------------------------------------------------- the dataset

let seed = 20261120
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const int = (a: number, b: number) => a + Math.floor(rnd() * (b - a + 1))
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]

interface Leg { uuid: string; party: string; employeeId: string | null; startedAt: Date; answeredAt: Date | null; endedAt: Date }
interface Call {
  uuid: string; direction: 'inbound' | 'outbound' | 'internal' | 'fmc'; caller: string | null; queueId: string | null; agentId: string | null
  startedAt: Date; endedAt: Date; outcome: string; counted: boolean; csat: number | null
  /** seconds from start until a person answered (null: nobody) */
  connectSec: number | null; talkSec: number; legs: Leg[]
  /** seconds the caller was on hold (a third of the conversations; none for calls nobody answered) */
  holdSec: number | null
}
interface Callback { id?: number; queueId: string | null; agentId: string | null; createdAt: Date; doneAt: Date | null; state: string }
interface Presence { employeeId: string; state: string; startedAt: Date; endedAt: Date | null }

const AGENTS = ['a1', 'a2', 'a3']
const QUEUES = ['sales', 'callcentre', null]
const NUMBERS = Array.from({ length: 40 }, (_, i) => `+7916${String(1000000 + i * 7919).slice(0, 7)}`)
const at = (base: DateTime, sec: number) => new Date(base.toMillis() + sec * 1000)

function makeCall(start: Date): Call {
  const roll = rnd()
  const uuid = randomUUID()
  const c: Call = {
    uuid, direction: 'inbound', caller: pick(NUMBERS), queueId: pick(QUEUES), agentId: null, startedAt: start, endedAt: start,
    outcome: 'missed', counted: true, csat: null, connectSec: null, talkSec: 0, legs: [], holdSec: 0,
  }
  const callerLeg = (end: Date): Leg => ({ uuid, party: 'caller', employeeId: null, startedAt: start, answeredAt: start, endedAt: end })
  const person = (party: string, emp: string | null, connect: number, talk: number): Leg => ({
    uuid: randomUUID(), party, employeeId: emp, startedAt: new Date(start.getTime() + Math.max(0, connect - 5) * 1000),
    answeredAt: new Date(start.getTime() + connect * 1000), endedAt: new Date(start.getTime() + (connect + talk) * 1000),
  })
  if (roll < 0.5) { // answered inbound, sometimes after a colleague let it ring
    const agent = pick(AGENTS)
    const connect = int(2, 60)
    const talk = int(5, 400)
    if (rnd() < 0.25) {
      const other = AGENTS.find((a) => a !== agent)!
      c.legs.push({ uuid: randomUUID(), party: 'colleague', employeeId: other, startedAt: start, answeredAt: null, endedAt: new Date(start.getTime() + 1000) })
    }
    c.legs.push(person('colleague', agent, connect, talk))
    Object.assign(c, { agentId: agent, outcome: 'answered', connectSec: connect, talkSec: talk, counted: talk >= 15, csat: rnd() < 0.5 ? int(1, 10) : null })
    c.endedAt = new Date(start.getTime() + (connect + talk + int(0, 20)) * 1000)
  } else if (roll < 0.65) { // caller gave up waiting (or in the IVR)
    const wait = int(1, 200)
    Object.assign(c, { outcome: rnd() < 0.2 ? 'ivr_hangup' : 'abandoned', endedAt: new Date(start.getTime() + wait * 1000) })
    if (c.outcome === 'ivr_hangup') c.queueId = null
  } else if (roll < 0.7) {
    Object.assign(c, { outcome: pick(['missed', 'overflow']), endedAt: new Date(start.getTime() + int(20, 180) * 1000) })
  } else if (roll < 0.75) {
    Object.assign(c, { outcome: 'after_hours', queueId: null, endedAt: new Date(start.getTime() + 15_000) })
  } else if (roll < 0.83) { // desk-phone outbound
    const agent = pick(['a1', 'a2'])
    const talk = int(3, 300)
    Object.assign(c, { direction: 'outbound', caller: '1001', queueId: null, agentId: agent, outcome: 'answered', connectSec: 10, talkSec: talk, counted: talk >= 15 })
    c.legs.push(person('callee', null, 10, talk))
    c.endedAt = new Date(start.getTime() + (10 + talk) * 1000)
  } else if (roll < 0.88) { // FMC: the manager's mobile call, attributed to the manager
    const talk = int(3, 300)
    Object.assign(c, { direction: 'fmc', caller: '+79990000001', queueId: null, agentId: 'm1', outcome: 'answered', connectSec: 8, talkSec: talk, counted: talk >= 15 })
    c.legs.push(person('callee', null, 8, talk))
    c.endedAt = new Date(start.getTime() + (8 + talk) * 1000)
  } else if (roll < 0.94) { // internal: stored, never counted
    const talk = int(20, 100)
    Object.assign(c, { direction: 'internal', caller: '1002', queueId: null, agentId: 'a2', outcome: 'answered', connectSec: 4, talkSec: talk, counted: false })
    c.legs.push(person('colleague', 'a3', 4, talk))
    c.endedAt = new Date(start.getTime() + (4 + talk) * 1000)
  } else {
    Object.assign(c, { outcome: 'rejected', counted: false, queueId: null, endedAt: start })
  }
  c.legs.unshift(callerLeg(c.endedAt))
  // No draw from rnd(): the rest of the dataset stays as it was.
  if (c.connectSec !== null) c.holdSec = c.talkSec % 3 === 0 ? Math.min(c.talkSec, (c.talkSec * 7) % 90) : 0
  if (c.outcome === 'rejected') c.holdSec = null // a row written before hold was recorded
  return c
}

const calls: Call[] = []
for (let i = 0; i < 260; i++) calls.push(makeCall(at(dayStart, int(0, 86_000))))
for (let i = 0; i < 60; i++) calls.push(makeCall(at(prevStart, int(40_000, 86_000)))) // the evening before: repeats across midnight
calls.push(makeCall(at(dayStart, 86_400 + 100))) // the next day: outside every range below

const callbacks: Callback[] = []
for (let i = 0; i < 30; i++) {
  const created = at(dayStart, int(-20_000, 80_000))
  const done = rnd() < 0.5 ? new Date(created.getTime() + int(60, 20_000) * 1000) : null
  callbacks.push({ queueId: pick(QUEUES), agentId: done ? pick(AGENTS) : null, createdAt: created, doneAt: done, state: done ? 'done' : 'open' })
}
callbacks.push({ queueId: 'sales', agentId: 'a1', createdAt: at(dayStart, 1000), doneAt: at(dayStart, 2000), state: 'cancelled' }) // done_at, but not completed

const presence: Presence[] = [
  { employeeId: 'a1', state: 'not_ready', startedAt: at(prevStart, 64_800), endedAt: at(dayStart, 9 * 3600) },  // 18:00 → 09:00
  { employeeId: 'a1', state: 'ready', startedAt: at(dayStart, 9 * 3600), endedAt: at(dayStart, 12 * 3600) },
  { employeeId: 'a1', state: 'on_call', startedAt: at(dayStart, 12 * 3600), endedAt: at(dayStart, 12 * 3600 + 300) },
  { employeeId: 'a1', state: 'wrap_up', startedAt: at(dayStart, 12 * 3600 + 300), endedAt: at(dayStart, 12 * 3600 + 315) },
  { employeeId: 'a1', state: 'ready', startedAt: at(dayStart, 12 * 3600 + 315), endedAt: null },               // still open
  { employeeId: 'a2', state: 'ready', startedAt: at(dayStart, 8 * 3600), endedAt: at(dayStart, 20 * 3600) },
  { employeeId: 'a2', state: 'not_ready', startedAt: at(dayStart, 20 * 3600), endedAt: at(dayStart, 30 * 3600) }, // into the next day
  { employeeId: 'a3', state: 'ready', startedAt: at(prevStart, 0), endedAt: at(prevStart, 3600) },               // the day before only
]

// ---------------------------------------------------------------- expected figures, in JS

const round1 = (x: number) => Math.round(x * 10) / 10
const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length)
const localKey = (d: Date, unit: 'day' | 'hour') => {
  const l = DateTime.fromJSDate(d, { zone: TZ })
  return unit === 'day' ? l.toFormat('yyyy-MM-dd') : l.toFormat("yyyy-MM-dd'T'HH:00")
}

function expectFigures(cs: Call[], cbs: { created: Callback[]; done: Callback[] }) {
  const counted = cs.filter((c) => c.counted)
  const inbound = counted.filter((c) => c.direction === 'inbound')
  const offered = inbound.filter((c) => c.outcome !== 'after_hours')
  const answered = offered.filter((c) => c.outcome === 'answered')
  const abandoned = offered.filter((c) => c.outcome === 'abandoned' || c.outcome === 'ivr_hangup')
  const waits = abandoned.map((c) => (c.endedAt.getTime() - c.startedAt.getTime()) / 1000)
  const conversations = counted.filter((c) => c.connectSec !== null)
  const talk = conversations.reduce((s, c) => s + c.talkSec, 0)
  const csats = counted.map((c) => c.csat).filter((x): x is number => x !== null)
  const withCaller = inbound.filter((c) => c.caller !== null)
  const repeats = withCaller.filter((c) => calls.some((p) => p.direction === 'inbound' && p.caller === c.caller
    && p.startedAt < c.startedAt && p.startedAt.getTime() >= c.startedAt.getTime() - 24 * 3600_000))
  const within = answered.filter((c) => c.connectSec! <= SL).length
  return {
    inbound: inbound.length, offered: offered.length, answered: answered.length, abandoned: abandoned.length,
    unanswered: offered.length - answered.length - abandoned.length, afterHours: inbound.length - offered.length,
    answeredWithinSl: within, serviceLevelPct: offered.length ? round1((within / offered.length) * 100) : null,
    asaSec: answered.length ? round1(mean(answered.map((c) => c.connectSec!))!) : null,
    ahtSec: conversations.length ? round1(talk / conversations.length) : null,
    talkSec: talk, holdSec: conversations.some((c) => c.holdSec !== null) ? conversations.reduce((s, c) => s + (c.holdSec ?? 0), 0) : null,
    abandonAvgSec: waits.length ? round1(mean(waits)!) : null,
    abandonTimes: [0, 1, 2, 3, 4].map((b) => waits.filter((w) => (b === 0 || w >= EDGES[b - 1]) && (b === 4 || w < EDGES[b])).length),
    outbound: counted.filter((c) => c.direction === 'outbound' || c.direction === 'fmc').length,
    fmc: counted.filter((c) => c.direction === 'fmc').length,
    callbacksCreated: cbs.created.length, callbacksDone: cbs.done.length,
    csatAvg: csats.length ? Math.round(mean(csats)! * 100) / 100 : null, csatCount: csats.length,
    csatDistribution: Array.from({ length: 10 }, (_, i) => csats.filter((x) => x === i + 1).length),
    repeatCalls: repeats.length, repeatRatePct: withCaller.length ? round1((repeats.length / withCaller.length) * 100) : null,
  }
}

function expectReport(from: Date, to: Date, groupBy: 'day' | 'hour' | 'queue' | 'agent') {
  const inRange = (d: Date | null) => d !== null && d >= from && d < to
  const cs = calls.filter((c) => inRange(c.startedAt))
  const created = callbacks.filter((b) => inRange(b.createdAt))
  const done = callbacks.filter((b) => b.state === 'done' && inRange(b.doneAt))
  type K = string | null
  const callKey = (c: Call): K => (groupBy === 'queue' ? c.queueId : groupBy === 'agent' ? c.agentId : localKey(c.startedAt, groupBy))
  const cbKey = (b: Callback, d: Date): K => (groupBy === 'queue' ? b.queueId : groupBy === 'agent' ? b.agentId : localKey(d, groupBy))
  let keys: K[]
  if (groupBy === 'day' || groupBy === 'hour') {
    keys = []
    for (let d = DateTime.fromJSDate(from, { zone: TZ }); d.toJSDate() < to; d = d.plus(groupBy === 'day' ? { days: 1 } : { hours: 1 })) keys.push(localKey(d.toJSDate(), groupBy))
  } else {
    const set = new Set<K>([...cs.filter((c) => c.counted).map(callKey), ...created.map((b) => cbKey(b, b.createdAt)), ...done.map((b) => cbKey(b, b.doneAt!))])
    if (groupBy === 'agent') {
      for (const p of presence) if ((p.endedAt === null || p.endedAt > from) && p.startedAt < to) set.add(p.employeeId)
      for (const c of cs) if (c.direction !== 'internal') for (const l of c.legs) if (l.employeeId && l.party !== 'caller') set.add(l.employeeId)
    }
    keys = [...set].sort((a, b) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b)))
  }
  const agentExtras = (emp: string | null, total = false) => {
    const secs = (state: string) => presence.filter((p) => p.state === state && (total || p.employeeId === emp)).reduce((s, p) => {
      const end = Math.min((p.endedAt ?? new Date()).getTime(), to.getTime())
      return s + Math.max(0, (end - Math.max(p.startedAt.getTime(), from.getTime())) / 1000)
    }, 0)
    const legs = cs.filter((c) => c.direction !== 'internal').flatMap((c) => c.legs).filter((l) => l.employeeId && l.party !== 'caller' && (total || l.employeeId === emp))
    return {
      readySec: Math.round(secs('ready')), notReadySec: Math.round(secs('not_ready')), onCallSec: Math.round(secs('on_call')), wrapUpSec: Math.round(secs('wrap_up')),
      offers: legs.length, offersMissed: legs.filter((l) => l.answeredAt === null).length,
    }
  }
  const rows = keys.map((k) => ({
    key: k,
    ...expectFigures(cs.filter((c) => callKey(c) === k), { created: created.filter((b) => cbKey(b, b.createdAt) === k), done: done.filter((b) => cbKey(b, b.doneAt!) === k) }),
    ...(groupBy === 'agent' ? agentExtras(k) : {}),
  }))
  const totals = { ...expectFigures(cs, { created, done }), ...(groupBy === 'agent' ? agentExtras(null, true) : {}) }
  return { rows, totals }
}

// ---------------------------------------------------------------- setup

const db = await startTestDatabase()
t.teardown(() => db.close())
const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
for (const [id, name] of [['a1', 'Анна'], ['a2', 'Борис'], ['a3', '=Вера (formula-looking name)'], ['m1', 'Менеджер']]) {
  await db.pool.query(`INSERT INTO employees (id, name, role, group_id) VALUES ($1, $2, $3, 'callcentre')`, [id, name, id === 'm1' ? 'manager' : 'agent'])
}
// Rows in bulk (json_populate_recordset): the test is about the report, not about insert speed.
const bulk = (table: string, rows: object[]) => {
  const cols = Object.keys(rows[0]).join(', ')
  return db.pool.query(`INSERT INTO ${table} (${cols}) SELECT ${cols} FROM json_populate_recordset(NULL::${table}, $1)`, [JSON.stringify(rows)])
}
await bulk('calls', calls.map((c) => ({
  uuid: c.uuid, direction: c.direction, caller: c.caller, queue_id: c.queueId, agent_id: c.agentId, started_at: c.startedAt, answered_at: c.startedAt,
  ended_at: c.endedAt, outcome: c.outcome, counted: c.counted, csat: c.csat, ivr_path: [], route_reasons: [], hold_sec: c.holdSec,
})))
await bulk('legs', calls.flatMap((c) => c.legs.map((l) => ({
  uuid: l.uuid, call_uuid: c.uuid, party: l.party, employee_id: l.employeeId, started_at: l.startedAt, answered_at: l.answeredAt, ended_at: l.endedAt,
}))))
await bulk('callbacks', callbacks.map((b) => ({
  phone: '+74950000000', reason: 'abandoned', queue_id: b.queueId, agent_id: b.agentId, state: b.state, attempts: 0,
  next_attempt_at: b.createdAt, created_at: b.createdAt, done_at: b.doneAt,
})))
await bulk('agent_presence_history', presence.map((p) => ({ employee_id: p.employeeId, state: p.state, started_at: p.startedAt, ended_at: p.endedAt })))

const registry = new Registry()
const live = new LiveStats({ pool: db.pool, log: silentLogger(), config: () => cfg, registry })
const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry, readiness: [], plugins: [statsRoutes({ pool: db.pool, config: () => cfg, live })] })
t.teardown(() => app.close())
const supervisor = await createApiToken(db.pool, { id: 'u-sup', name: 'Supervisor', role: 'supervisor' })
const agent = await createApiToken(db.pool, { id: 'u-agent', name: 'Agent', role: 'agent', employeeId: 'a1' })
const get = (url: string, token = supervisor) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })

const APPROX = new Set(['serviceLevelPct', 'asaSec', 'ahtSec', 'abandonAvgSec', 'csatAvg', 'repeatRatePct'])
function compare(t: Test, actual: Record<string, unknown>, expected: Record<string, unknown>, what: string) {
  for (const [k, v] of Object.entries(expected)) {
    if (k === 'key') continue
    const a = actual[k]
    if (APPROX.has(k) && typeof v === 'number' && typeof a === 'number') t.ok(Math.abs(a - v) <= 0.11, `${what} ${k}: ${a} ≈ ${v}`)
    else t.same(a, v, `${what} ${k}`)
  }
}

// ---------------------------------------------------------------- tests

t.test('a sanity check of the dataset: every kind of call is there', async (t) => {
  t.equal(cfg.stats.serviceLevelSec, SL, 'example config: SL at 20 s')
  t.same(cfg.stats.abandonBucketsSec, EDGES)
  const kinds = new Set(calls.map((c) => `${c.direction}:${c.outcome}:${c.counted}`))
  for (const k of ['inbound:answered:true', 'inbound:answered:false', 'inbound:abandoned:true', 'inbound:ivr_hangup:true', 'inbound:after_hours:true', 'fmc:answered:true', 'internal:answered:false', 'outbound:answered:true']) {
    t.ok(kinds.has(k), k)
  }
})

for (const groupBy of ['day', 'hour', 'queue', 'agent'] as const) {
  t.test(`report groupBy=${groupBy} matches the figures computed from the rows`, async (t) => {
    // Two days for day/queue/agent (the evening before included); one day by hour.
    const from = groupBy === 'hour' ? DAY : prevStart.toISODate()!
    const res = await get(`/api/stats/report?from=${from}&to=${DAY}&groupBy=${groupBy}&tz=${TZ}`)
    t.equal(res.statusCode, 200, res.body)
    const report = res.json()
    const fromDate = groupBy === 'hour' ? dayStart.toJSDate() : prevStart.toJSDate()
    const toDate = dayStart.plus({ days: 1 }).toJSDate()
    t.equal(report.from, fromDate.toISOString())
    t.equal(report.to, toDate.toISOString(), 'a date "to" is inclusive: the end of that local day')
    const expected = expectReport(fromDate, toDate, groupBy)
    t.same(report.rows.map((r: { key: string | null }) => r.key), expected.rows.map((r) => r.key), 'the groups')
    for (let i = 0; i < expected.rows.length; i++) compare(t, report.rows[i], expected.rows[i], `${groupBy}[${expected.rows[i].key}]`)
    compare(t, report.totals, expected.totals, `${groupBy} totals`)
    t.ok(report.totals.answered > 0 && report.totals.abandoned > 0 && report.totals.repeatCalls > 0, 'a dataset that exercises the figures')
    if (groupBy === 'queue') t.equal(report.rows.find((r: { key: string }) => r.key === 'sales').label, 'Отдел продаж (Москва)', 'queue names from the config')
    if (groupBy === 'agent') {
      const m1 = report.rows.find((r: { key: string }) => r.key === 'm1')
      t.ok(m1.fmc > 0 && m1.fmc === m1.outbound, 'FMC calls counted for the manager')
      t.equal(report.rows.find((r: { key: string }) => r.key === 'a1').readySec, expected.rows.find((r) => r.key === 'a1')!.readySec)
    }
  })
}

t.test('internal and short calls are stored but not counted', async (t) => {
  const res = (await get(`/api/stats/report?from=${DAY}&to=${DAY}&groupBy=agent&tz=${TZ}`)).json()
  const stored = calls.filter((c) => c.startedAt >= dayStart.toJSDate() && c.startedAt < dayStart.plus({ days: 1 }).toJSDate())
  const internal = stored.filter((c) => c.direction === 'internal').length
  const short = stored.filter((c) => c.direction !== 'internal' && c.connectSec !== null && !c.counted).length
  t.ok(internal > 0 && short > 0, `${internal} internal and ${short} short calls in the day`)
  const countedAll = res.totals.inbound + res.totals.outbound
  t.equal(countedAll, stored.filter((c) => c.counted).length, 'only counted calls appear')
  t.equal(countedAll, stored.length - internal - short - stored.filter((c) => c.outcome === 'rejected').length)
})

t.test('CSV: a header, a line per group and the totals, same figures as JSON', async (t) => {
  const url = `/api/stats/report?from=${DAY}&to=${DAY}&groupBy=agent&tz=${TZ}`
  const json = (await get(url)).json()
  const res = await get(`${url}&format=csv`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/csv/)
  t.match(res.headers['content-disposition'], /attachment; filename="switchboard-stats-agent-/)
  const lines = res.body.trimEnd().split('\r\n')
  t.equal(lines.length, json.rows.length + 2)
  const header = lines[0].split(',')
  t.same(header.slice(0, 6), ['key', 'label', 'inbound', 'offered', 'answered', 'abandoned'])
  t.ok(header.includes('abandon_120s_plus') && header.includes('csat_10') && header.includes('ready_sec'))
  const total = lines[lines.length - 1].split(',')
  const col = (name: string) => total[header.indexOf(name)]
  t.equal(col('key'), 'total')
  t.equal(Number(col('offered')), json.totals.offered)
  t.equal(Number(col('talk_sec')), json.totals.talkSec)
  t.equal(Number(col('ready_sec')), json.totals.readySec)
  t.ok(json.totals.holdSec > 0, 'some calls were on hold')
  t.equal(Number(col('hold_sec')), json.totals.holdSec)
  t.ok(lines.some((l) => l.startsWith("a3,'=Вера")), 'a name that looks like a formula is neutralised')
})

t.test('input validation: 400 with the field named', async (t) => {
  const bad: Array<[string, RegExp]> = [
    [`/api/stats/report?from=${DAY}&to=2026-11-19&tz=${TZ}`, /to: must be after from/],
    ['/api/stats/report?from=2024-01-01&to=2026-01-01', /at most 400/],
    ['/api/stats/report?from=2026-01-01&to=2026-06-01&groupBy=hour', /at most 62/],
    ['/api/stats/report?tz=Mars/Olympus', /tz/],
    ['/api/stats/report?groupBy=week', /groupBy/],
    ['/api/stats/report?format=xlsx', /format/],
    ['/api/stats/report?from=yesterday', /from/],
    ['/api/stats/report?from=2026-13-45', /from/],
    ['/api/stats/report?evil=1', /evil|additional/],
  ]
  for (const [url, msg] of bad) {
    const res = await get(url)
    t.equal(res.statusCode, 400, url)
    t.match(res.json().detail ?? res.json().title, msg, `${url}: ${res.body}`)
  }
  t.equal((await get('/api/stats/report', agent)).statusCode, 403, 'agents do not see reports')
  t.equal((await get('/api/stats/live/snapshot', agent)).statusCode, 403)
  const noRange = await get('/api/stats/report')
  t.equal(noRange.statusCode, 200, 'no range: today')
  t.equal(noRange.json().tz, 'Europe/Moscow', 'the zone from the config')
  const iso = await get(`/api/stats/report?from=${encodeURIComponent('2026-11-20T09:00:00+03:00')}&to=${encodeURIComponent('2026-11-20T10:00:00+03:00')}&groupBy=hour`)
  t.equal(iso.statusCode, 200, iso.body)
  t.same(iso.json().rows.map((r: { key: string }) => r.key), ['2026-11-20T09:00'], 'date-times: [from, to)')
})

t.test('live snapshot: waiting callers, agents, today; SSE pushes on change; Prometheus gauges', async (t) => {
  const now = Date.now()
  // Today: two counted inbound calls (one answered in 5 s, one abandoned) and one caller waiting in the sales queue.
  const answered = randomUUID(); const abandoned = randomUUID(); const waiting = randomUUID()
  await db.pool.query(`INSERT INTO calls (uuid, direction, caller, queue_id, agent_id, started_at, ended_at, outcome, counted, csat) VALUES
    ($1, 'inbound', '+74951112233', 'sales', 'a1', $4, $5, 'answered', true, 9),
    ($2, 'inbound', '+74951112234', 'sales', NULL, $4, $5, 'abandoned', true, NULL),
    ($3, 'inbound', '+74951112235', 'sales', NULL, $6, NULL, NULL, false, NULL)`,
  [answered, abandoned, waiting, new Date(now - 120_000), new Date(now - 60_000), new Date(now - 45_000)])
  await db.pool.query(`INSERT INTO legs (uuid, call_uuid, party, employee_id, started_at, answered_at, ended_at) VALUES ($1, $2, 'colleague', 'a1', $3, $4, $5)`,
    [randomUUID(), answered, new Date(now - 118_000), new Date(now - 115_000), new Date(now - 60_000)])
  await db.pool.query(`INSERT INTO queue_calls (call_uuid, queue_id, entered_at, queue_entered_at) VALUES ($1, 'sales', $2, $2)`, [waiting, new Date(now - 40_000)])
  await db.pool.query(`INSERT INTO employees (id, name, role, group_id) VALUES ('s1', 'Продавец', 'agent', 'sales-1')`)
  await db.pool.query(`INSERT INTO agent_presence (employee_id, state, since) VALUES ('s1', 'ready', now()), ('a1', 'not_ready', now())`)
  await db.pool.query(`UPDATE agent_presence SET reason = 'lunch' WHERE employee_id = 'a1'`)

  const snap = (await get('/api/stats/live/snapshot')).json()
  const sales = snap.queues.find((q: { id: string }) => q.id === 'sales')
  t.same({ ...sales, longestWaitSec: undefined }, { id: 'sales', name: 'Отдел продаж (Москва)', waiting: 1, agentsReady: 1, longestWaitSec: undefined })
  t.ok(sales.longestWaitSec >= 40 && sales.longestWaitSec < 70, `longest wait ${sales.longestWaitSec} s`)
  t.same(snap.agents.map((a: { id: string; state: string; reason: string | null }) => [a.id, a.state, a.reason]), [['a1', 'not_ready', 'lunch'], ['s1', 'ready', null]])
  t.same(snap.today, { offered: 2, answered: 1, abandoned: 1, serviceLevelPct: 50, asaSec: 5, ahtSec: 55, csatAvg: 9 })

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /switchboard_queue_waiting\{queue="sales"\} 1/)
  t.match(metrics, /switchboard_agents_ready 1/)
  t.match(metrics, /switchboard_service_level_today 50/)

  // SSE: a snapshot at once, another after a change (the bus is not wired here: the periodic push).
  const { EventBus } = await import('../src/events/bus.ts')
  const { PresenceStore } = await import('../src/acd/presence.ts')
  const events = new EventBus()
  const live2 = new LiveStats({ pool: db.pool, log: silentLogger(), config: () => ({ ...cfg, stats: { ...cfg.stats, liveIntervalSec: 60 } }), events })
  live2.start()
  const app2 = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [statsRoutes({ pool: db.pool, config: () => cfg, live: live2 })] })
  const url = await app2.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { live2.stop(); await app2.close() })
  const { SseClient } = await import('./support/sse-client.ts')
  const denied = await SseClient.connect(`${url}/api/stats/live`, { authorization: `Bearer ${agent}` })
  t.equal(denied.status, 403, 'agents cannot watch the live view')
  const sse = await SseClient.connect(`${url}/api/stats/live`, { authorization: `Bearer ${supervisor}` })
  t.equal(sse.status, 200)
  const first = await sse.next((m) => m.event === 'snapshot')
  t.equal((first.data as typeof snap).queues.find((q: { id: string }) => q.id === 'sales').waiting, 1)
  const presence = new PresenceStore(db.pool, silentLogger(), events)
  await presence.set('a1', 'ready')
  const after = await sse.next((m) => m.event === 'snapshot' && (m.data as typeof snap).agents.find((a: { id: string }) => a.id === 'a1').state === 'ready', 5_000)
  t.equal((after.data as typeof snap).queues.find((q: { id: string }) => q.id === 'sales').waiting, 1, 'pushed on the agent.state change, long before the 60 s tick')
  sse.close()
})
