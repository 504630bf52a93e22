/**
 * Recording access bench (issue 9): search over 1 M recording rows in an embedded Postgres
 * (typical QA filters, keyset pages), then Range streaming through the real HTTP server on
 * 127.0.0.1 vs reading the same ranges straight from the object store in the same run.
 *
 *   node --import tsx bench/recordings-access.ts     (writes bench/results/recordings-access.json)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import http from 'node:http'
import { randomBytes, createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { fork, type ChildProcess } from 'node:child_process'
import { createServer as createHttpServer } from 'node:http'
import { createReadStream } from 'node:fs'
import { Registry } from 'prom-client'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'
import { migrate } from '../src/db/migrate.ts'
import { createPool, type Pool } from '../src/db/pool.ts'
import { silentLogger } from '../src/log.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { searchRecordings, type SearchFilters } from '../src/recordings/access/search.ts'
import { buildHttpApp } from '../src/http/app.ts'
import { recordingsRoutes } from '../src/http/plugins/recordings.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'

const here = dirname(fileURLToPath(import.meta.url))
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
const stats = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return { n: s.length, p50Ms: round(pct(s, 0.5)), p95Ms: round(pct(s, 0.95)), p99Ms: round(pct(s, 0.99)), maxMs: round(s[s.length - 1]) } }
const log = (m: string) => process.stdout.write(`${m}\n`)

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const BURSTS = Number(process.env.BENCH_BURSTS ?? 5)
const PLAYER_INTERVAL_MS = Number(process.env.BENCH_PLAYER_INTERVAL_MS ?? 500)
const PLAYER_REQUESTS = Number(process.env.BENCH_PLAYER_REQUESTS ?? 20)
const CLIENTS = 100_000
const AGENTS = 200

const INSERT_SQL = (from: number, to: number) => `
      INSERT INTO recordings (id, client_id, agent_id, spool_path, object_key, codec, channels, duration_ms, bytes, sha256, state, metrics,
        retention_until, legal_hold, created_at, direction, caller, callee, did, source_tag, queue_id, outcome, csat)
      SELECT md5('rec' || g)::uuid,
        CASE WHEN g % 10 = 0 THEN NULL ELSE 'c' || (1 + (g * 7919) % ${CLIENTS}) END,
        'e' || (1 + g % ${AGENTS}), '/spool/' || g, 'recordings/x/' || g || '.opus', 'opus', 2,
        5000 + (g * 31) % 600000, 50000 + g % 100000, md5(g::text) || md5(g::text), 'stored',
        jsonb_build_object('durationMs', 5000 + (g * 31) % 600000, 'overtalkMs', g % 5000,
          'channels', jsonb_build_array(jsonb_build_object('talkMs', (g * 13) % 200000), jsonb_build_object('talkMs', (g * 17) % 200000))),
        now() + interval '300 days', g % 1000 = 0,
        timestamptz '2025-01-01' + (g * interval '15 seconds'),
        (ARRAY['inbound','inbound','inbound','outbound','fmc','internal'])[1 + g % 6],
        '+7495' || lpad((1 + (g * 7919) % ${CLIENTS})::text, 7, '0'), (7000 + g % ${AGENTS})::text,
        '+749511122' || lpad((g % 20)::text, 2, '0'), (ARRAY['site','yandex','google','print'])[1 + g % 4],
        'q' || (g % 12), (ARRAY['answered','answered','answered','abandoned','missed'])[1 + g % 5],
        CASE WHEN g % 3 = 0 THEN NULL ELSE 1 + g % 10 END
      FROM generate_series(${from}::bigint, ${to}::bigint) g`

async function seed(pool: Pool): Promise<void> {
  await pool.query(`INSERT INTO employees (id, name, group_id, role) SELECT 'e' || g, 'Agent ' || g, 'g' || (g % 10), 'agent' FROM generate_series(1, ${AGENTS}) g`)
  await pool.query(`INSERT INTO clients (id, name, inn, segment) SELECT 'c' || g, (ARRAY['Acme','Beta','Gamma','Delta','Omega','Sigma','Vector','Nord','Ural','Volga'])[1 + g % 10] || ' ' || md5(g::text), lpad((7700000000 + g)::text, 10, '0'), (ARRAY['A','B','C'])[1 + g % 3] FROM generate_series(1, ${CLIENTS}) g`)
  await pool.query(`INSERT INTO client_phones (phone, client_id) SELECT '+7495' || lpad(g::text, 7, '0'), 'c' || g FROM generate_series(1, ${CLIENTS}) g`)
  // bulk load on one session: no statement timeout, triggers and FK checks off (replica role:
  // the facts trigger is for live rows, the load writes the denormalised columns itself),
  // secondary indexes dropped and rebuilt afterwards (much faster than 1 M incremental inserts)
  const c = await pool.connect()
  try {
    await c.query(`SET statement_timeout = 0; SET session_replication_role = replica; SET maintenance_work_mem = '256MB'`)
    const idx = (await c.query<{ indexname: string; indexdef: string }>(
      `SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'recordings' AND i.indexname NOT IN
         (SELECT conname FROM pg_constraint WHERE conrelid = 'recordings'::regclass)`)).rows
    for (const i of idx) await c.query(`DROP INDEX ${i.indexname}`)
    const chunk = 250_000
    for (let from = 1; from <= ROWS; from += chunk) {
      const to = Math.min(ROWS, from + chunk - 1)
      await c.query(INSERT_SQL(from, to))
      log(`  inserted ${to.toLocaleString('en')} rows`)
    }
    const t0 = performance.now()
    for (const i of idx) await c.query(i.indexdef)
    log(`  rebuilt ${idx.length} indexes in ${round((performance.now() - t0) / 1000, 1)} s`)
    await c.query('VACUUM ANALYZE recordings, clients, client_phones, employees')
  } finally {
    await c.query('RESET session_replication_role').catch(() => undefined)
    c.release()
  }
}

function randInt(n: number): number { return Math.floor(Math.random() * n) }

async function benchSearch(pool: Pool, reps: number) {
  const lastDay = new Date(Date.parse('2025-01-01') + ROWS * 15_000)
  const day = (n: number) => new Date(lastDay.getTime() - n * 86_400_000).toISOString()
  const cases: Record<string, () => SearchFilters> = {
    'no filter, first page': () => ({ limit: 50 }),
    agent: () => ({ agent: `e${1 + randInt(AGENTS)}`, limit: 50 }),
    client: () => ({ clientId: `c${1 + randInt(CLIENTS)}`, limit: 50 }),
    'client name prefix': () => ({ clientName: `${['Acme', 'Beta', 'Nord', 'Ural'][randInt(4)]} ${randBytesHex(1)}`, limit: 50 }),
    'client INN': () => ({ inn: String(7700000000 + 1 + randInt(CLIENTS)), limit: 50 }),
    'phone (caller/callee)': () => ({ phone: `+7495${String(1 + randInt(CLIENTS)).padStart(7, '0')}`, limit: 50 }),
    'queue + last 7 days': () => ({ queue: `q${randInt(12)}`, from: day(7), limit: 50 }),
    'direction + min duration': () => ({ direction: 'outbound', minDurationMs: 300_000, limit: 50 }),
    'CSAT ≤ 3 + outcome': () => ({ csatMax: 3, outcome: 'answered', limit: 50 }),
    'silence ≥ 60 s, last 30 days': () => ({ minSilenceMs: 60_000, from: day(30), limit: 50 }),
    'legal hold': () => ({ legalHold: true, limit: 50 }),
    'DID + date range': () => ({ did: `+749511122${String(randInt(20)).padStart(2, '0')}`, from: day(60), to: day(30), limit: 50 }),
  }
  const out: Record<string, ReturnType<typeof stats> & { avgRows: number }> = {}
  for (const [name, make] of Object.entries(cases)) {
    for (let i = 0; i < 5; i++) await searchRecordings(pool, make()) // warm
    const times: number[] = []
    let rows = 0
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now()
      const r = await searchRecordings(pool, make())
      times.push(performance.now() - t0)
      rows += r.items.length
    }
    out[name] = { ...stats(times), avgRows: round(rows / reps, 1) }
    log(`  search ${name.padEnd(30)} p50 ${out[name].p50Ms} ms  p95 ${out[name].p95Ms} ms  (${out[name].avgRows} rows)`)
  }
  // deep keyset pages: page 20 of an agent costs what page 1 costs
  const pageTimes: number[] = []
  for (let i = 0; i < 20; i++) {
    let cursor: string | undefined
    const agent = `e${1 + randInt(AGENTS)}`
    for (let p = 0; p < 20; p++) {
      const t0 = performance.now()
      const r = await searchRecordings(pool, { agent, limit: 50, cursor })
      if (p === 19) pageTimes.push(performance.now() - t0)
      cursor = r.nextCursor ?? undefined
    }
  }
  const deep = stats(pageTimes)
  log(`  search agent page 20               p50 ${deep.p50Ms} ms  p95 ${deep.p95Ms} ms`)
  return { cases: out, agentPage20: deep }
}

function randBytesHex(n: number): string { return randomBytes(n).toString('hex').slice(0, 1) }

/** Time to the first body byte of one HTTP request (fresh connection each, like many players). */
function firstByte(port: number, path: string, headers: Record<string, string>, agent: http.Agent): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let first = -1
    let bytes = 0
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      res.on('data', (c: Buffer) => { if (first < 0) first = performance.now() - t0; bytes += c.length })
      res.on('end', () => resolve({ ms: first, bytes, status: res.statusCode ?? 0 }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

// ---- the HTTP client, in its own process ------------------------------------------------
// On this 2-core machine a client in the server's process would spend the server's CPU
// (200 request objects, 13 MB of bodies) and its time would be counted as the server's.

type RequestSpec = { path: string; headers: Record<string, string> }
type ClientJob =
  | { type: 'burst' | 'sequential'; port: number; requests: RequestSpec[] }
  | { type: 'players'; port: number; intervalMs: number; players: RequestSpec[][] }
type ClientResult = Array<{ ms: number; bytes: number; status: number }>

/**
 * 200 concurrent players, as 200 QA consoles replaying recordings look to the server: each
 * player holds its own keep-alive connection (a browser's <audio> element does) and fetches
 * its next range every `intervalMs` (with jitter, so that players do not march in step),
 * i.e. a seek or the next chunk. Every request's time to first byte counts.
 */
async function runPlayers(port: number, intervalMs: number, players: RequestSpec[][]): Promise<ClientResult> {
  const out: ClientResult = []
  await Promise.all(players.map(async (requests, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    // spread the players' first requests over one interval
    await new Promise((r) => setTimeout(r, (i * intervalMs) / players.length))
    for (const r of requests) {
      const started = performance.now()
      out.push(await firstByte(port, r.path, r.headers, agent))
      const wait = intervalMs * (0.5 + Math.random()) - (performance.now() - started)
      if (wait > 0) await new Promise((res) => setTimeout(res, wait))
    }
    agent.destroy()
  }))
  return out
}

async function clientChild(): Promise<void> {
  process.on('message', async (m: ClientJob | { type: 'exit' }) => {
    if (m.type === 'exit') process.exit(0)
    let out: ClientResult
    if (m.type === 'players') {
      out = await runPlayers(m.port, m.intervalMs, m.players)
    } else if (m.type === 'burst') {
      // all at once, each on its own fresh connection
      out = await Promise.all(m.requests.map((r) => firstByte(m.port, r.path, r.headers, new http.Agent({ keepAlive: false }))))
    } else {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      out = []
      for (const r of m.requests) out.push(await firstByte(m.port, r.path, r.headers, agent))
      agent.destroy()
    }
    process.send!({ type: 'done', out })
  })
  process.send!({ type: 'ready' })
}

/** BENCH_PROFILE_BURSTS / BENCH_PROFILE_PLAYERS=file.cpuprofile: a CPU profile of this (the server's) process during the bursts / the players only. */
async function startProfiler() {
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  return {
    async stop(file: string) {
      const { profile } = await session.post('Profiler.stop')
      await writeFile(file, JSON.stringify(profile))
      session.disconnect()
    },
  }
}

function startClient(): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), ['--http-client'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  return new Promise((resolve) => child.once('message', () => resolve(child)))
}

function runClient(child: ChildProcess, job: ClientJob): Promise<ClientResult> {
  return new Promise((resolve) => {
    const on = (m: { type: string; out: ClientResult }) => { if (m.type === 'done') { child.off('message', on); resolve(m.out) } }
    child.on('message', on)
    child.send(job)
  })
}

/**
 * The floor on this machine: a bare node:http server that answers the same Range requests
 * from the same files with fs.createReadStream (no auth, no database, no audit, no
 * fastify), hit by the same client the same way in the same run.
 */
async function bareRangeServer(root: string): Promise<{ port: number; close: () => Promise<void> }> {
  const srv = createHttpServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '').slice('/raw/'.length))
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
    if (!m) { res.statusCode = 400; res.end(); return }
    const start = Number(m[1])
    const end = Number(m[2])
    res.writeHead(206, { 'Content-Type': 'audio/ogg', 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/*` })
    createReadStream(join(root, key), { start, end }).pipe(res)
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  return { port: (srv.address() as { port: number }).port, close: () => new Promise((r) => srv.close(() => r())) }
}

async function storeFirstByte(store: FsObjectStore, key: string, start: number, end: number): Promise<number> {
  const t0 = performance.now()
  const s = await store.get(key, { start, end })
  let first = -1
  for await (const _c of s) { if (first < 0) first = performance.now() - t0 }
  return first
}

async function benchStreaming(pool: Pool, dataDir: string) {
  const store = new FsObjectStore(join(dataDir, 'objects'))
  await store.init()
  const N = 200
  const SIZE = 512 * 1024
  const recs: Array<{ id: string; key: string }> = []
  for (let i = 0; i < N; i++) {
    const id = crypto.randomUUID()
    const key = `recordings/bench/${id}.opus`
    const body = randomBytes(SIZE)
    await store.put(key, Readable.from([body]), SIZE, {}, 'audio/ogg')
    // stored_at as the pipeline sets it when the object is in the store
    await pool.query(`INSERT INTO recordings (id, spool_path, object_key, codec, bytes, sha256, state, created_at, stored_at) VALUES ($1, $2, $3, 'opus', $4, $5, 'stored', now(), now())`,
      [id, `/spool/bench-${id}`, key, SIZE, createHash('sha256').update(body).digest('hex')])
    recs.push({ id, key })
  }
  const token = await createApiToken(pool, { id: 'bench-qa', name: 'Bench QA', role: 'qa' })
  // helmet and the rate limiter stay on (they are part of every request's cost); the limit is
  // raised because the whole bench is one client IP (600/min would answer 429 mid-run)
  // count the server's Postgres statements (the route's row lookups, audit batches, token lookups)
  let pgStatements = 0
  const countingPool = new Proxy(pool, { get: (target, prop, recv) => prop === 'query' ? (...a: unknown[]) => { pgStatements++; return (target.query as (...x: unknown[]) => unknown)(...a) } : Reflect.get(target, prop, recv) }) as Pool
  const app = await buildHttpApp({ log: silentLogger(), pool: countingPool, registry: new Registry(), readiness: [], security: { helmet: true, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } },
    plugins: [recordingsRoutes({ pool: countingPool, store, log: silentLogger() })] })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const headers = (range: string) => ({ authorization: `Bearer ${token}`, range })
  const randRange = () => { const a = randInt(SIZE - 65_536); return [a, a + 65_535] as const }
  const audioReq = (id: string) => { const [a, b] = randRange(); return { path: `/api/recordings/${id}/audio`, headers: headers(`bytes=${a}-${b}`) } }
  const bareReq = (key: string) => { const [a, b] = randRange(); return { path: `/raw/${encodeURIComponent(key)}`, headers: { range: `bytes=${a}-${b}` } } }
  const bare = await bareRangeServer(join(dataDir, 'objects'))
  const client = await startClient()
  const ok = (rs: ClientResult) => rs.every((c) => c.status === 206 && c.bytes === 65_536)
  try {
    await runClient(client, { type: 'sequential', port, requests: Array.from({ length: 50 }, (_, i) => audioReq(recs[i % N].id)) }) // warm
    await runClient(client, { type: 'sequential', port: bare.port, requests: Array.from({ length: 50 }, (_, i) => bareReq(recs[i % N].key)) })
    // sequential seeks (keep-alive), through Switchboard and straight from the store
    const seqRecs = Array.from({ length: 1000 }, () => recs[randInt(N)])
    const seqRes = await runClient(client, { type: 'sequential', port, requests: seqRecs.map((r) => audioReq(r.id)) })
    if (!ok(seqRes)) throw new Error('bad range answer in the sequential run')
    const direct: number[] = []
    for (const r of seqRecs) { const [a, b] = randRange(); direct.push(await storeFirstByte(store, r.key, a, b)) }
    // 200 concurrent range streams, all sent at the same instant, each on a fresh connection
    // (each a different recording: 200 play audit entries too). Repeated: the first burst
    // after a quiet spell also pays for warming up; the figure is the median burst's.
    const bursts: Array<{ http: ClientResult; bare: ClientResult; wallMs: number; pgStatements: number }> = []
    const profiler = process.env.BENCH_PROFILE_BURSTS ? await startProfiler() : undefined
    for (let i = 0; i < BURSTS; i++) {
      // a user of its own per burst: 200 new plays, so 200 play audit entries are written (a
      // user's seeks within the audit window would reuse one entry)
      const burstToken = await createApiToken(pool, { id: `bench-qa-${i}`, name: `Bench QA ${i}`, role: 'qa' })
      const pg0 = pgStatements
      const t0 = performance.now()
      const httpRes = await runClient(client, { type: 'burst', port, requests: recs.map((r) => ({ ...audioReq(r.id), headers: { ...audioReq(r.id).headers, authorization: `Bearer ${burstToken}` } })) })
      const wallMs = performance.now() - t0
      const bareRes = await runClient(client, { type: 'burst', port: bare.port, requests: recs.map((r) => bareReq(r.key)) })
      const pgDuring = pgStatements - pg0
      bursts.push({ http: httpRes, bare: bareRes, wallMs, pgStatements: pgDuring })
    }
    if (profiler) await profiler.stop(process.env.BENCH_PROFILE_BURSTS!)
    // 200 players streaming at the same time (each its own recording and user session),
    // through Switchboard and through the bare server, same pacing, same run
    const playerToken = await createApiToken(pool, { id: 'bench-qa-players', name: 'Bench QA players', role: 'qa' })
    const playersProfiler = process.env.BENCH_PROFILE_PLAYERS ? await startProfiler() : undefined
    const playersHttp = await runClient(client, { type: 'players', port, intervalMs: PLAYER_INTERVAL_MS, players: recs.map((r) => Array.from({ length: PLAYER_REQUESTS }, () => { const q = audioReq(r.id); return { ...q, headers: { ...q.headers, authorization: `Bearer ${playerToken}` } } })) })
    if (playersProfiler) await playersProfiler.stop(process.env.BENCH_PROFILE_PLAYERS!)
    const playersBare = await runClient(client, { type: 'players', port: bare.port, intervalMs: PLAYER_INTERVAL_MS, players: recs.map((r) => Array.from({ length: PLAYER_REQUESTS }, () => bareReq(r.key))) })
    const p99 = (rs: ClientResult) => stats(rs.map((c) => c.ms)).p99Ms
    const byP99 = [...bursts].sort((a, b) => p99(a.http) - p99(b.http))
    const median = byP99[Math.floor(byP99.length / 2)]
    const concDirect = await Promise.all(recs.map((r) => { const [a, b] = randRange(); return storeFirstByte(store, r.key, a, b) }))
    const out = {
      objectBytes: SIZE, rangeBytes: 65_536, client: 'separate process (fork), node:http',
      sequentialHttp: stats(seqRes.map((c) => c.ms)), sequentialStoreDirect: stats(direct),
      concurrent200Http: { ...stats(median.http.map((c) => c.ms)), wallMs: round(median.wallMs), allOk: bursts.every((b) => ok(b.http)) },
      concurrent200BareNodeHttp: { ...stats(median.bare.map((c) => c.ms)), allOk: bursts.every((b) => ok(b.bare)) },
      concurrent200HttpEveryBurstP99Ms: bursts.map((b) => p99(b.http)),
      concurrent200PgStatementsPerBurst: bursts.map((b) => b.pgStatements),
      concurrent200BareEveryBurstP99Ms: bursts.map((b) => p99(b.bare)),
      concurrent200StoreDirect: stats(concDirect),
      concurrent200P99RatioHttpToBare: 0,
      players200: {
        what: `200 players at once, each on its own keep-alive connection, a 64 KiB range every ${PLAYER_INTERVAL_MS} ms ± 50 % per player (${PLAYER_REQUESTS} each)`,
        http: { ...stats(playersHttp.map((c) => c.ms)), allOk: ok(playersHttp) },
        bareNodeHttp: { ...stats(playersBare.map((c) => c.ms)), allOk: ok(playersBare) },
        p99RatioHttpToBare: 0,
      },
    }
    out.players200.p99RatioHttpToBare = round(out.players200.http.p99Ms / out.players200.bareNodeHttp.p99Ms)
    out.concurrent200P99RatioHttpToBare = round(out.concurrent200Http.p99Ms / out.concurrent200BareNodeHttp.p99Ms)
    log(`  range first byte, sequential: HTTP p50 ${out.sequentialHttp.p50Ms} / p99 ${out.sequentialHttp.p99Ms} ms; store direct p50 ${out.sequentialStoreDirect.p50Ms} / p99 ${out.sequentialStoreDirect.p99Ms} ms`)
    log(`  range first byte, 200 at once: HTTP p50 ${out.concurrent200Http.p50Ms} / p99 ${out.concurrent200Http.p99Ms} ms (wall ${out.concurrent200Http.wallMs} ms); bare node:http p50 ${out.concurrent200BareNodeHttp.p50Ms} / p99 ${out.concurrent200BareNodeHttp.p99Ms} ms; store direct p99 ${out.concurrent200StoreDirect.p99Ms} ms`)
    log(`  200 concurrent players (${PLAYER_INTERVAL_MS} ms between ranges): HTTP p50 ${out.players200.http.p50Ms} / p99 ${out.players200.http.p99Ms} ms (n ${out.players200.http.n}); bare node:http p50 ${out.players200.bareNodeHttp.p50Ms} / p99 ${out.players200.bareNodeHttp.p99Ms} ms`)
    log(`  every burst p99: HTTP ${out.concurrent200HttpEveryBurstP99Ms.join(', ')} ms; bare ${out.concurrent200BareEveryBurstP99Ms.join(', ')} ms; Postgres statements per burst ${out.concurrent200PgStatementsPerBurst.join(', ')}`)
    return out
  } finally {
    client.send({ type: 'exit' })
    await bare.close()
    await app.close()
  }
}

export async function run(opts: { write?: boolean } = {}) {
  // other work on the same 2 cores shows in every figure here: the load average says how much
  const loadAverageAtStart = loadavg()
  const dataDir = await mkdtemp(join(tmpdir(), 'sb-bench-access-'))
  const slog = silentLogger()
  const db = await startEmbeddedPostgres(dataDir, slog)
  const pool = createPool(db.url, slog, 20)
  try {
    await migrate(db.url, slog)
    log(`seeding ${ROWS.toLocaleString('en')} recordings…`)
    const t0 = performance.now()
    await seed(pool)
    const seedSec = round((performance.now() - t0) / 1000, 1)
    log(`  seeded in ${seedSec} s`)
    const search = process.env.BENCH_SKIP_SEARCH ? { cases: {}, agentPage20: stats([0]) } : await benchSearch(pool, 100)
    const streaming = await benchStreaming(pool, dataDir)
    const worstSearchP95 = Math.max(...Object.values(search.cases).map((c) => c.p95Ms), search.agentPage20.p95Ms)
    const result = {
      bench: 'recordings-access', at: new Date().toISOString(), node: process.version, loadAverageAtStart, loadAverageAtEnd: loadavg(), rows: ROWS, clients: CLIENTS, agents: AGENTS, seedSec,
      search, streaming,
      targets: { searchP95Ms: 50, firstByteP99Ms: 30 },
      pass: { search: worstSearchP95 <= 50, firstByteSequential: streaming.sequentialHttp.p99Ms <= 30, firstByte200ConcurrentPlayers: streaming.players200.http.p99Ms <= 30 && streaming.players200.http.allOk, firstByteBurstOf200NewConnections: streaming.concurrent200Http.p99Ms <= 30 },
    }
    if (opts.write !== false) {
      await mkdir(join(here, 'results'), { recursive: true })
      await writeFile(join(here, 'results', 'recordings-access.json'), `${JSON.stringify(result, null, 2)}\n`)
      log('wrote bench/results/recordings-access.json')
    }
    return result
  } finally {
    await pool.end().catch(() => undefined)
    await db.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

if (process.argv.includes('--http-client')) {
  await clientChild()
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now()
  await run()
  process.stdout.write(`done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}
