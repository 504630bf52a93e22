// CRM import against a real embedded Postgres: CSV / JSON Lines / JSON array fixtures with
// bad rows (report with line numbers), idempotent re-import, phone reassignment, pruning,
// employees, parser edge cases, and a 50 k-row import loaded by the DirectoryStore.
import t from 'tap'
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { silentLogger } from '../src/log.ts'
import {
  CsvParser, detectDelimiter, importClients, importEmployees, readRecords, ImportFormatError, ImportTooLargeError,
  type ImportOptions, type ImportReport,
} from '../src/crm/import.ts'
import { DirectoryStore } from '../src/crm/directory-store.ts'
import { validateSwitchboardFile } from '../src/config/switchboard-file.ts'

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crm')
const fixture = (name: string) => createReadStream(path.join(fixtures, name))
const log = silentLogger()
const wk = { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' }
const config = validateSwitchboardFile({
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk }, { id: 'nsk', name: 'Новосибирск', tz: 'Asia/Novosibirsk', hours: wk }],
  groups: [{ id: 'g1', name: 'Sales 1', supervisorId: 'sup1' }, { id: 'g2', name: 'Sales 2' }],
  queues: ['sales', 'production', 'finance'].map((id) => ({ id, name: id })),
})

let db: TestDatabase
let opts: ImportOptions
t.before(async () => {
  db = await startTestDatabase()
  opts = { pool: db.pool, log, defaultRegion: 'RU', config, source: 'test' }
})
t.teardown(async () => { await db?.close() })

const text = (s: string) => Readable.from([Buffer.from(s)])
const codesByLine = (r: ImportReport) => r.problems.map((p) => `${p.line}:${p.code}`)
async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) q`, params)
  return r.rows[0].n
}

t.test('CSV parser: quotes, escaped quotes, CRLF, lone CR, embedded newlines, chunk boundaries', async (t) => {
  const src = 'a;b;c\r\n"x;1";"say ""hi""";"two\nlines"\r\n\r\nplain;;end\rlast;"";"q"'
  const whole = new CsvParser(';')
  const expected = [...whole.feed(src), ...whole.end()]
  t.same(expected, [
    { line: 1, values: ['a', 'b', 'c'] },
    { line: 2, values: ['x;1', 'say "hi"', 'two\nlines'] },
    { line: 5, values: ['plain', '', 'end'] },
    { line: 6, values: ['last', '', 'q'] },
  ])
  // Every split point gives the same records (a quote or CR at the end of a chunk included).
  for (let i = 1; i < src.length; i++) {
    const p = new CsvParser(';')
    t.same([...p.feed(src.slice(0, i)), ...p.feed(src.slice(i)), ...p.end()], expected, `split at ${i}`)
  }
  t.equal(detectDelimiter('id;name;"a,b";phone'), ';')
  t.equal(detectDelimiter('id,name,phone'), ',')
  t.equal(detectDelimiter('id\tname\tphone'), '\t')
  t.throws(() => { const p = new CsvParser(','); p.feed('a,"never closed'); p.end() }, ImportFormatError)
})

t.test('readRecords: JSON array split across chunks keeps element lines; garbage is a clear error', async (t) => {
  const json = '[\n{"client_id":"a","x":"}]{["},\n  {"client_id":"b","n":{"deep":[1,2]}}\n]'
  for (let i = 1; i < json.length; i += 3) {
    const out = []
    for await (const r of readRecords(Readable.from([json.slice(0, i), json.slice(i)]))) out.push(r)
    t.same(out.map((r) => [r.line, r.fields.client_id]), [[2, 'a'], [3, 'b']], `split at ${i}`)
  }
  const collect = async (s: string | Buffer, maxBytes?: number) => { const out = []; for await (const r of readRecords(Readable.from([s]), { maxBytes })) out.push(r); return out }
  await t.rejects(collect('[{"a":1},]'), /trailing comma/)
  await t.rejects(collect('[{"a":1}'), /not closed/)
  await t.rejects(collect('[1,2]'), /must be an object/)
  await t.rejects(collect('{"a":1}\n{"a":2\n'), /line 2: invalid JSON/)
  await t.rejects(collect(Buffer.from([0xff, 0xfe, 0x00, 0x41])), /UTF-8|binary/)
  await t.rejects(collect('id;name\n1;x\n', 5), ImportTooLargeError)
  t.same(await collect('   \n '), [], 'an empty file has no records')
})

t.test('employees: import with rejected rows; offices synced from config', async (t) => {
  const r = await importEmployees(fixture('employees.csv'), opts)
  t.equal(r.state, 'succeeded')
  t.equal(r.format, 'csv')
  t.equal(r.delimiter, ',')
  t.same(r.rows, { read: 9, imported: 5, rejected: 4 })
  t.same(codesByLine(r), ['6:bad_role', '7:bad_mobile', '8:duplicate_mobile', '9:unknown_office', '10:unknown_supervisor'])
  const m1 = await db.pool.query('SELECT mobile, extension, supervisor_id, office_id FROM employees WHERE id = $1', ['m1'])
  t.same(m1.rows[0], { mobile: '+79161000001', extension: '101', supervisor_id: 'sup1', office_id: 'msk' })
  t.equal(await count('SELECT 1 FROM offices'), 2)
  const a1 = await db.pool.query('SELECT supervisor_id FROM employees WHERE id = $1', ['a1'])
  t.equal(a1.rows[0].supervisor_id, null, 'unknown supervisor left empty')
})

t.test('clients CSV: BOM, CRLF, ; delimiter, quoted multi-line field, report with line numbers', async (t) => {
  const r = await importClients(fixture('clients.csv'), opts)
  t.equal(r.format, 'csv')
  t.equal(r.delimiter, ';')
  t.same(r.rows, { read: 12, imported: 7, rejected: 5 })
  t.same(codesByLine(r), ['7:missing_id', '8:bad_segment', '9:bad_kind', '10:unknown_manager', '11:bad_phone', '12:duplicate_phone', '13:bad_tz'])
  const dup = r.problems.find((p) => p.code === 'duplicate_phone')!
  t.match(dup, { id: 'c9', value: '+74951110001', rejected: 'phone' })
  t.match(dup.message, /client c1/)
  t.equal(r.records, 6, 'c3 has two rows: 6 distinct clients')
  t.same(r.phones, { imported: 7, rejected: 2, reassigned: 0, removed: 0 })

  const c1 = await db.pool.query('SELECT name, segment, kind, region, tz, assigned_manager_id, attributes FROM clients WHERE id = $1', ['c1'])
  t.same(c1.rows[0], { name: 'ООО "Ромашка"', segment: 'A', kind: 'client', region: 'Москва', tz: 'Europe/Moscow', assigned_manager_id: 'm1', attributes: { industry: 'retail' } })
  const c2 = await db.pool.query('SELECT name, attributes FROM clients WHERE id = $1', ['c2'])
  t.same(c2.rows[0], { name: 'ИП Иванов;\r\nвторая строка', attributes: { industry: 'transport', note: 'note with ; and "quotes"' } })
  const phones = await db.pool.query('SELECT phone FROM client_phones WHERE client_id = $1 ORDER BY phone', ['c3'])
  t.same(phones.rows.map((x) => x.phone), ['+74951110004', '+74951110005'], 'repeated rows add phones')
  const c11 = await db.pool.query('SELECT segment, kind, assigned_manager_id FROM clients WHERE id = $1', ['c11'])
  t.same(c11.rows[0], { segment: null, kind: 'other', assigned_manager_id: null })
  const runs = await db.pool.query(`SELECT state, report->'rows' AS rows FROM import_runs WHERE id = $1`, [r.runId])
  t.same(runs.rows[0], { state: 'succeeded', rows: { read: 12, imported: 7, rejected: 5 } })

  t.test('re-import is idempotent: same counts, no duplicates', async (t) => {
    const before = await db.pool.query('SELECT id, updated_at FROM clients ORDER BY id')
    const again = await importClients(fixture('clients.csv'), opts)
    t.same(again.rows, r.rows)
    t.same(again.phones, { imported: 7, rejected: 2, reassigned: 0, removed: 0 })
    t.same(codesByLine(again), codesByLine(r))
    t.equal(await count('SELECT 1 FROM clients'), 6)
    t.equal(await count('SELECT 1 FROM client_phones'), 7)
    const after = await db.pool.query('SELECT id, updated_at FROM clients ORDER BY id')
    t.same(after.rows, before.rows, 'unchanged clients keep updated_at')
  })

  t.test('the same file in small batches finds the duplicate across batches', async (t) => {
    const small = await importClients(fixture('clients.csv'), { ...opts, batchSize: 2 })
    t.same(codesByLine(small), codesByLine(r))
    t.same(small.phones, { imported: 7, rejected: 2, reassigned: 0, removed: 0 })
  })
})

t.test('JSON Lines and JSON array give the same rows and line numbers', async (t) => {
  const jl = await importClients(fixture('clients.jsonl'), opts)
  t.equal(jl.format, 'jsonl')
  t.same(jl.rows, { read: 5, imported: 3, rejected: 2 })
  t.same(codesByLine(jl), ['3:bad_segment', '5:missing_id', '6:duplicate_phone'])
  const arr = await importClients(fixture('clients.json'), opts)
  t.equal(arr.format, 'json')
  t.same(arr.rows, jl.rows)
  t.same(codesByLine(arr), ['4:bad_segment', '5:missing_id', '6:duplicate_phone'])
  const j1 = await db.pool.query('SELECT attributes, kind FROM clients WHERE id = $1', ['j1'])
  t.same(j1.rows[0], { attributes: { vip: true, industry: 'steel' }, kind: 'client' })
  t.same((await db.pool.query(`SELECT phone FROM client_phones WHERE client_id = 'j1' ORDER BY phone`)).rows.map((x) => x.phone), ['+74952220001', '+74952220002'])
  t.equal(await count(`SELECT 1 FROM client_phones WHERE client_id = 'j4'`), 1, 'j4 keeps its own phone only')
})

t.test('a phone that moves to another client is reassigned and reported; dropped phones are pruned', async (t) => {
  const csv = 'client_id,name,segment,phone\nc2,ИП Иванов,B,+74951110002\nc1,Ромашка,A,+74951110001\n'
  const r = await importClients(text(csv), opts)
  t.equal(r.phones.reassigned, 1)
  t.same(r.reassignments, [{ line: 2, phone: '+74951110002', from: 'c1', to: 'c2' }])
  t.equal(r.phones.removed, 1, 'c2 no longer lists +73831110003')
  const owners = await db.pool.query(`SELECT phone, client_id FROM client_phones WHERE client_id IN ('c1','c2') ORDER BY phone`)
  t.same(owners.rows, [{ phone: '+74951110001', client_id: 'c1' }, { phone: '+74951110002', client_id: 'c2' }])
  const again = await importClients(text(csv), opts)
  t.equal(again.phones.reassigned, 0, 'a second run moves nothing')
  t.equal(again.phones.removed, 0)
})

t.test('an unchanged phone listed earlier in the file is still a duplicate for a later client (across batches)', async (t) => {
  await importClients(text('client_id,name,phone\nu1,First,+74957770001\nu2,Second,+74957770002\n'), opts)
  const runBefore = await db.pool.query(`SELECT import_run FROM client_phones WHERE phone = '+74957770001'`)
  // u1 keeps its number (not rewritten), then u2 lists it in a later batch: first wins.
  const csv = 'client_id,name,phone\nu1,First,+74957770001\nu2,Second,+74957770002\nu2,Second,+74957770001\n'
  for (const batchSize of [1, 2, 100]) {
    const r = await importClients(text(csv), { ...opts, batchSize })
    t.same(codesByLine(r), ['4:duplicate_phone'], `batch size ${batchSize}`)
    t.match(r.problems[0].message, /client u1/)
    t.same(r.phones, { imported: 2, rejected: 1, reassigned: 0, removed: 0 })
    const owners = await db.pool.query(`SELECT phone, client_id FROM client_phones WHERE client_id IN ('u1','u2') ORDER BY phone`)
    t.same(owners.rows, [{ phone: '+74957770001', client_id: 'u1' }, { phone: '+74957770002', client_id: 'u2' }])
  }
  const runAfter = await db.pool.query(`SELECT import_run FROM client_phones WHERE phone = '+74957770001'`)
  t.same(runAfter.rows, runBefore.rows, 'an unchanged phone is not rewritten')
  // A changed client is written (updated_at moves); its dropped phone is pruned even in batches of one.
  const before = await db.pool.query(`SELECT updated_at FROM clients WHERE id = 'u2'`)
  const r = await importClients(text('client_id,name,phone\nu2,Second renamed,+74957770003\nu1,First,+74957770001\n'), { ...opts, batchSize: 1 })
  t.same(r.phones, { imported: 2, rejected: 0, reassigned: 0, removed: 1 })
  const u2 = await db.pool.query(`SELECT name, updated_at FROM clients WHERE id = 'u2'`)
  t.equal(u2.rows[0].name, 'Second renamed')
  t.ok(u2.rows[0].updated_at > before.rows[0].updated_at, 'updated_at moves when a field changes')
  t.same((await db.pool.query(`SELECT phone FROM client_phones WHERE client_id = 'u2'`)).rows, [{ phone: '+74957770003' }])
  t.equal(await count(`SELECT 1 FROM client_phones WHERE client_id = 'u1'`), 1)
})

t.test('values with tabs, backslashes and line breaks survive COPY', async (t) => {
  const row = { client_id: 'w\\1', name: 'a\tb\\c\nd\re', attributes: { k: 'x\\y\tz' }, phone: '+74957770009' }
  const r = await importClients(text(`${JSON.stringify(row)}\n`), opts)
  t.equal(r.rows.imported, 1)
  const w = await db.pool.query(`SELECT name, attributes FROM clients WHERE id = $1`, ['w\\1'])
  t.same(w.rows[0], { name: 'a\tb\\c\nd\re', attributes: { k: 'x\\y\tz' } })
  const store = new DirectoryStore({ pool: db.pool, databaseUrl: db.url, log, config: () => config })
  const { snapshot } = await store.load()
  t.equal(snapshot.clientIdByPhone('+74957770009'), 'w\\1', 'the directory reads the escaped client id back')
})

t.test('a malformed file fails with its line and the run is recorded as failed', async (t) => {
  await t.rejects(importClients(text('{"client_id":"z1","phone":"+74953330001"}\n{"client_id": oops}\n'), opts), { code: 'import_invalid', details: { line: 2 } })
  const run = await db.pool.query(`SELECT state, report->>'error' AS error FROM import_runs ORDER BY id DESC LIMIT 1`)
  t.equal(run.rows[0].state, 'failed')
  t.match(run.rows[0].error, /line 2/)
  await t.rejects(importClients(text('\u0000\u0001garbage'), opts), /binary data/)
})

t.test('50 k generated rows: import, then the DirectoryStore loads them and identify() finds a phone', async (t) => {
  const N = 50_000
  const phoneOf = (i: number) => `+7926${String(i).padStart(7, '0')}`
  function* rows(): Generator<string> {
    yield 'client_id;name;segment;kind;manager_id;phone;city\n'
    for (let i = 0; i < N; i++) {
      const c = Math.floor(i / 2)
      yield `g${c};Клиент ${c};${'ABC'[c % 3]};client;${c % 2 ? 'm1' : 'm2'};${i % 4 === 0 ? '8' + phoneOf(i).slice(2) : phoneOf(i)};city${c % 7}\n`
    }
  }
  const r = await importClients(Readable.from(rows()), opts)
  t.same(r.rows, { read: N, imported: N, rejected: 0 })
  t.equal(r.phones.imported, N)
  t.equal(r.records, N / 2)
  t.comment(`50k rows imported in ${r.durationMs} ms (${r.rowsPerSec} rows/s)`)

  const store = new DirectoryStore({ pool: db.pool, databaseUrl: db.url, log, config: () => config, pageSize: 7_000 })
  await store.load().then(({ snapshot, stats }) => {
    t.ok(stats.phones >= N)
    t.comment(`directory load: ${stats.clients} clients, ${stats.phones} phones in ${stats.ms} ms`)
    const id = snapshot.identify(phoneOf(12_344))
    t.match(id, { kind: 'client', client: { id: 'g6172', segment: 'B', assignedManagerId: 'm2', attributes: { city: 'city5' } } })
    t.match(snapshot.identify('+79161000001'), { kind: 'employee', employee: { id: 'm1' } })
    t.equal(snapshot.groupMembers('g1').length, 3)
    t.equal(snapshot.clientByPhone('+74951110001')?.id, 'c1')
  })
})
