// Issue 7, ERP export: one local day of calls as CSV (HTTP, streamed from Postgres) and the
// daily file, with real calls through the wire simulator: an FMC call attributed to the
// manager and counted, an FMC call under 15 s (stored, not counted), an internal call
// (never counted).
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { makeTokens, bearer } from './recordings-access.fixtures.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import { silentLogger } from '../src/log.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { exportsRoutes } from '../src/http/plugins/exports.ts'
import { DailyCsvExporter, dueDay } from '../src/erp/daily-csv.ts'
import { CSV_COLUMNS } from '../src/erp/calls-csv.ts'
import { startWebhooks } from '../src/webhooks/index.ts'
import { Receiver, signatureValid } from './webhooks.fixtures.ts'

const ERP_SECRET = 'erp-secret-0123456789'

const AT = '2026-11-23T09:00:00Z'
const FMC = { switchboard_direction: 'fmc' }
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001', mobile: '+79161234567' },
  { id: 'col-1', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]
const clients: ClientInput[] = [
  { id: 'c-ekb', name: 'ООО "Урал", филиал', segment: 'A', kind: 'client', region: 'Екатеринбург', assignedManagerId: 'mgr-1', phones: ['+73432223344'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())
const tokens = await makeTokens(db.pool)
const erpRx = await new Receiver().start()
t.teardown(() => erpRx.close())
erpRx.script.push('500') // the ERP fails once: the record is retried
const h = await startCallHarness(db, {
  employees, clients, at: AT, timeScale: 0.1,
  configure: (c) => {
    c.webhooks = { ...c.webhooks, allowList: ['127.0.0.1'], backoff: { baseMs: 50, maxMs: 500 }, pollMs: 100,
      endpoints: [{ id: 'erp', url: `${erpRx.url}/calls`, events: ['call.ended'], format: 'erp', countedOnly: true, secret: ERP_SECRET, enabled: true }] }
  },
})
t.teardown(() => h.close())
const wh = startWebhooks({ pool: db.pool, events: h.events, log: silentLogger(), config: () => h.config, node: 'test-node' })
t.teardown(() => wh.stop())
const app = await buildHttpApp({ log: silentLogger(), pool: db.pool, registry: new Registry(), readiness: [], plugins: [exportsRoutes({ pool: db.pool, config: () => h.config })] })
t.teardown(() => app.close())

/** RFC 4180: quoted fields, doubled quotes, commas and newlines inside quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++ } else if (ch === '"') quoted = false
      else field += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',') { row.push(field); field = '' } else if (ch === '\n') { row.push(field); rows.push(row); row = []; field = '' } else field += ch
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row) }
  return rows
}
const asObjects = (text: string) => {
  const [head, ...rows] = parseCsv(text)
  return { head, rows: rows.map((r) => Object.fromEntries(head.map((k, i) => [k, r[i]]))) }
}

// three real calls, one after the other
const fmcLong = h.sim.call({
  callerIdNumber: '89161234567', destination: '83432223344', source: 'sofia', context: 'fmc', vars: FMC,
  bridgeTargets: { 'sofia/gateway/trunk/+73432223344': { answerAfterMs: 1000, hangupAfterMs: 20_000 } },
})
await fmcLong.done
const fmcShort = h.sim.call({
  callerIdNumber: '79161234567', destination: '+73432223344', source: 'sofia', context: 'fmc', vars: FMC,
  bridgeTargets: { 'sofia/gateway/trunk/+73432223344': { answerAfterMs: 1000, hangupAfterMs: 8000 } },
})
await fmcShort.done
const internal = h.sim.call({
  callerIdNumber: '1001', destination: '1002', vars: { switchboard_direction: 'internal' },
  bridgeTargets: { 'user/1002': { answerAfterMs: 1000, hangupAfterMs: 30_000 } },
})
await internal.done
const uuids = [fmcLong.uuid, fmcShort.uuid, internal.uuid]
await waitFor('CDRs and recordings', async () => {
  const c = await db.pool.query(`SELECT 1 FROM calls WHERE uuid = ANY($1::uuid[]) AND ended_at IS NOT NULL`, [uuids])
  const r = await db.pool.query(`SELECT DISTINCT call_uuid FROM recordings WHERE call_uuid = ANY($1::uuid[]) AND state = 'stored'`, [uuids])
  return c.rowCount === 3 && r.rowCount === 3
}, 45_000)
const DAY = (await db.pool.query<{ d: string }>(`SELECT to_char(started_at AT TIME ZONE 'Europe/Moscow', 'YYYY-MM-DD') AS d FROM calls WHERE uuid = $1`, [fmcLong.uuid])).rows[0].d
// a call just after local midnight of the next day (Moscow), i.e. still DAY in UTC
const nextDay = randomUUID()
await db.pool.query(`INSERT INTO calls (uuid, direction, caller, callee, agent_id, started_at, ended_at, outcome, counted, talk_sec)
  VALUES ($1, 'inbound', '+74950000001', '+74951230000', 'col-1', ($2::date + 1)::timestamp AT TIME ZONE 'Europe/Moscow' + interval '5 minutes',
          ($2::date + 1)::timestamp AT TIME ZONE 'Europe/Moscow' + interval '7 minutes', 'answered', true, 110)`, [nextDay, DAY])

const csv = (qs: string, role: keyof typeof tokens = 'supervisor') => app.inject({ method: 'GET', url: `/api/exports/calls.csv?${qs}`, headers: bearer(tokens[role]) })

t.test('the day as CSV: FMC attributed to the manager and counted, short and internal calls listed but not counted', async (t) => {
  const res = await csv(`date=${DAY}&tz=Europe/Moscow`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/csv/)
  t.match(res.headers['content-disposition'], new RegExp(`calls-${DAY}\\.csv`))
  const { head, rows } = asObjects(res.body)
  t.same(head, [...CSV_COLUMNS])
  const byUuid = Object.fromEntries(rows.map((r) => [r.call_uuid, r]))
  t.same(Object.keys(byUuid).sort(), [...uuids].sort(), "the day's three calls; the one after local midnight belongs to the next day")
  const long = byUuid[fmcLong.uuid]
  t.match(long, { direction: 'fmc', manager_id: 'mgr-1', manager_name: 'Анна', client_id: 'c-ekb', client_name: 'ООО "Урал", филиал', caller: '+79161234567', callee: '+73432223344', counted: 't', outcome: 'answered' })
  t.ok(Number(long.talk_sec) >= 18 && Number(long.talk_sec) <= 21, `talk time ${long.talk_sec} s (from the answer, ringing excluded)`)
  const recs = (await db.pool.query<{ id: string }>('SELECT id FROM recordings WHERE call_uuid = $1', [fmcLong.uuid])).rows
  t.equal(long.recording_links, recs.map((r) => `http://127.0.0.1:8080/console/recordings/${r.id}`).join(' '), 'recording link')
  t.match(long.started_at_local, new RegExp(`^${DAY}T`))
  const short = byUuid[fmcShort.uuid]
  t.match(short, { direction: 'fmc', manager_id: 'mgr-1', counted: 'f' })
  t.ok(Number(short.talk_sec) < 15, `short: ${short.talk_sec} s, not counted`)
  t.match(byUuid[internal.uuid], { direction: 'internal', manager_id: 'mgr-1', counted: 'f', client_id: '' })

  const counted = asObjects((await csv(`date=${DAY}&tz=Europe/Moscow&countedOnly=true`)).body).rows
  t.same(counted.map((r) => r.call_uuid), [fmcLong.uuid], 'countedOnly: what the ERP counts')
  const utc = asObjects((await csv(`date=${DAY}&tz=UTC`)).body).rows.map((r) => r.call_uuid)
  t.ok(utc.includes(nextDay), 'in UTC the late call is on the same date')
})

t.test('the ERP webhook gets one record per counted call: the FMC call, attributed to the manager', async (t) => {
  await wh.outbox.flush()
  const records = await waitFor('ERP record delivered', async () => {
    const ok = erpRx.requests.filter((r) => r.body.includes(fmcLong.uuid))
    return ok.length >= 2 && ok
  }, 15_000)
  t.equal(records.length, 2, 'the first attempt got 500, the retry went through')
  t.equal(records[0].headers['x-switchboard-delivery'], records[1].headers['x-switchboard-delivery'], 'same delivery id')
  t.ok(signatureValid(ERP_SECRET, records[1].headers['x-switchboard-signature'], records[1].body))
  const rec = JSON.parse(records[1].body).record
  t.match(rec, { callUuid: fmcLong.uuid, direction: 'fmc', manager: { id: 'mgr-1', name: 'Анна' }, client: { id: 'c-ekb' }, counted: true, caller: '+79161234567' })
  t.ok(rec.talkSec >= 18 && rec.talkSec <= 21, `talk time ${rec.talkSec} s`)
  t.equal(rec.recordingLinks.length, 1)
  t.match(rec.recordingLinks[0], /^http:\/\/127\.0\.0\.1:8080\/console\/recordings\/[0-9a-f-]{36}$/)
  t.notOk(erpRx.requests.some((r) => r.body.includes(fmcShort.uuid) || r.body.includes(internal.uuid)), 'the short FMC call and the internal call are not sent')
})

t.test('bad input and roles', async (t) => {
  t.equal((await csv(`date=${DAY}&tz=Europe/Moscow`, 'admin')).statusCode, 200)
  for (const role of ['agent', 'qa', 'legal'] as const) t.equal((await csv(`date=${DAY}`, role)).statusCode, 403, role)
  t.equal((await app.inject({ method: 'GET', url: `/api/exports/calls.csv?date=${DAY}` })).statusCode, 401)
  t.equal((await csv('date=2026-02-30')).statusCode, 400, 'not a calendar date')
  t.equal((await csv('date=yesterday')).statusCode, 400)
  t.equal((await csv(`date=${DAY}&tz=Mars/Olympus`)).statusCode, 400, 'unknown zone')
  t.equal((await csv(`date=${DAY}&tz=${encodeURIComponent("UTC'; DROP TABLE calls; --")}`)).statusCode, 400, 'no SQL through the zone')
  const empty = await csv('date=2001-01-01&tz=UTC')
  t.equal(empty.statusCode, 200)
  t.equal(empty.body.trim(), CSV_COLUMNS.join(','), 'a day without calls: the header only')
})

t.test('the daily file: written once per date, same content as the API, atomically', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-erp-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  h.config.erp.dailyCsv = { enabled: true, directory: dir, atLocalTime: '00:30', timeZone: 'Europe/Moscow' }
  const mk = (node: string) => new DailyCsvExporter({ pool: db.pool, log: silentLogger(), erp: () => h.config.erp, links: () => h.config.links, node })
  const a = mk('node-a')
  const nextLocal = (hhmm: string) => new Date(Date.parse(`${DAY}T${hhmm}:00+03:00`) + 86_400_000)
  const early = await a.runDue(nextLocal('00:10'))
  t.equal(early?.day, new Date(Date.parse(`${DAY}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10), 'at 00:10 the day before is the one due')
  t.equal(early?.rows, 0, 'a day without calls: a header-only file')
  const first = await a.runDue(nextLocal('00:31'))
  t.ok(first, 'written at 00:31 the next day')
  t.equal(first!.day, DAY)
  t.equal(first!.rows, 3)
  const file = await readFile(path.join(dir, `calls-${DAY}.csv`), 'utf8')
  t.equal(file, (await csv(`date=${DAY}&tz=Europe/Moscow`)).body, 'the file = the API export')
  t.same((await readdir(dir)).sort(), [`calls-${early!.day}.csv`, `calls-${DAY}.csv`], 'no temporary file left')
  t.equal(await a.runDue(nextLocal('00:45')), null, 'idempotent: not again')
  t.equal(await mk('node-b').runDue(nextLocal('09:00')), null, 'nor on another node')
  const row = (await db.pool.query(`SELECT state, rows, node FROM erp_daily_exports WHERE day = $1`, [DAY])).rows[0]
  t.same(row, { state: 'written', rows: 3, node: 'node-a' })
  h.config.erp.dailyCsv.enabled = false
  t.equal(await mk('node-c').runDue(), null, 'disabled: nothing')
})

t.test('dueDay: the previous local day once atLocalTime has passed', async (t) => {
  const cfg = { enabled: true, directory: '.', atLocalTime: '00:30', timeZone: 'Europe/Moscow' }
  t.equal(dueDay(new Date('2026-11-23T21:29:00Z'), cfg), '2026-11-22', '00:29 Moscow on the 24th: the 23rd is not due yet')
  t.equal(dueDay(new Date('2026-11-23T21:30:00Z'), cfg), '2026-11-23', '00:30 Moscow on the 24th')
  t.equal(dueDay(new Date('2026-11-23T21:30:00Z'), { ...cfg, timeZone: 'Asia/Vladivostok' }), '2026-11-23', 'zone of the config')
})

