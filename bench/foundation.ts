/**
 * Foundation bench: Postgres round-trip through our pool vs a raw pg.Client, and the
 * object store's put/get throughput (filesystem and S3 via s3rver) vs raw baselines
 * doing the same I/O directly (fs streams; HTTP PUT/GET on presigned URLs), same run.
 *
 *   node --import tsx bench/foundation.ts     (writes bench/results/foundation.json)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'
import { createPool } from '../src/db/pool.ts'
import { silentLogger } from '../src/log.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { S3ObjectStore } from '../src/recordings/store/s3-store.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'
import { startTestS3 } from '../test/support/s3rver.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const log = silentLogger()
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }

async function timeQueries(n: number, q: () => Promise<unknown>) {
  const ms: number[] = []
  for (let i = 0; i < 200; i++) await q() // warm-up
  for (let i = 0; i < n; i++) { const t = performance.now(); await q(); ms.push(performance.now() - t) }
  return { p50Ms: round(pct(ms, 0.5), 3), p99Ms: round(pct(ms, 0.99), 3), perSec: Math.round(n / (ms.reduce((a, b) => a + b, 0) / 1000)) }
}

async function drain(r: Readable): Promise<number> { let n = 0; for await (const c of r) n += (c as Buffer).length; return n }

async function storeThroughput(store: ObjectStore, file: string, bytes: number, rounds: number) {
  let put = 0, get = 0
  for (let i = 0; i < rounds; i++) {
    const key = `bench/obj-${i}.bin`
    let t = performance.now()
    await store.put(key, createReadStream(file), bytes, { sha256: 'x' }, 'application/octet-stream')
    put += performance.now() - t
    t = performance.now()
    await drain(await store.get(key))
    get += performance.now() - t
    await store.delete(key)
  }
  return { putMBps: round((bytes * rounds) / 1e6 / (put / 1000)), getMBps: round((bytes * rounds) / 1e6 / (get / 1000)) }
}

export async function run(opts: { queries?: number; objectMB?: number; rounds?: number; write?: boolean } = {}) {
  const queries = opts.queries ?? 5000
  const objectMB = opts.objectMB ?? 32
  const rounds = opts.rounds ?? 4
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-bench-foundation-'))
  try {
    // ---- Postgres round-trip
    const db = await startEmbeddedPostgres(dir, log)
    const pool = createPool(db.url, log)
    const raw = new pg.Client({ connectionString: db.url })
    await raw.connect()
    const rawRt = await timeQueries(queries, () => raw.query('SELECT 1'))
    const poolRt = await timeQueries(queries, () => pool.query('SELECT 1'))
    await raw.end(); await pool.end(); await db.stop()
    console.log(`postgres SELECT 1: pool p50 ${poolRt.p50Ms} ms p99 ${poolRt.p99Ms} ms (${poolRt.perSec}/s) | raw client p50 ${rawRt.p50Ms} ms p99 ${rawRt.p99Ms} ms (${rawRt.perSec}/s) | ratio ${round(poolRt.perSec / rawRt.perSec)}`)

    // ---- object stores
    const bytes = objectMB * 1024 * 1024
    const file = path.join(dir, 'object.bin')
    const block = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < block.length; i++) block[i] = (i * 31) % 251
    await pipeline(Readable.from((function* () { for (let i = 0; i < objectMB; i++) yield block })()), createWriteStream(file))

    const rawFsDir = path.join(dir, 'raw'); await mkdir(rawFsDir)
    let t = performance.now()
    for (let i = 0; i < rounds; i++) await pipeline(createReadStream(file), createWriteStream(path.join(rawFsDir, `o${i}`)))
    const rawFsPut = (bytes * rounds) / 1e6 / ((performance.now() - t) / 1000)
    t = performance.now()
    for (let i = 0; i < rounds; i++) await drain(createReadStream(path.join(rawFsDir, `o${i}`)))
    const rawFsGet = (bytes * rounds) / 1e6 / ((performance.now() - t) / 1000)
    const fsStore = new FsObjectStore(path.join(dir, 'objects')); await fsStore.init()
    const fsRes = await storeThroughput(fsStore, file, bytes, rounds)
    console.log(`filesystem store: put ${fsRes.putMBps} MB/s get ${fsRes.getMBps} MB/s | raw fs streams put ${round(rawFsPut)} MB/s get ${round(rawFsGet)} MB/s | ratio put ${round(fsRes.putMBps / rawFsPut)} get ${round(fsRes.getMBps / rawFsGet)}`)

    const s3 = await startTestS3()
    const s3Store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' }, log)
    const s3Res = await storeThroughput(s3Store, file, bytes, rounds)
    // Raw baseline: the same bytes over plain HTTP to the same server (a presigned GET; PUT through the client once, then GET raw).
    await s3Store.put('bench/raw.bin', createReadStream(file), bytes, {}, 'application/octet-stream')
    const url = (await s3Store.presignedGetUrl('bench/raw.bin', 600))!
    t = performance.now()
    for (let i = 0; i < rounds; i++) { const r = await fetch(url); await drain(Readable.fromWeb(r.body! as never)) }
    const rawHttpGet = (bytes * rounds) / 1e6 / ((performance.now() - t) / 1000)
    await s3.close()
    console.log(`S3 store (s3rver): put ${s3Res.putMBps} MB/s get ${s3Res.getMBps} MB/s | raw HTTP GET (presigned) ${round(rawHttpGet)} MB/s | get ratio ${round(s3Res.getMBps / rawHttpGet)}`)

    const result = {
      when: new Date().toISOString(),
      postgres: { queries, pool: poolRt, rawClient: rawRt, ratio: round(poolRt.perSec / rawRt.perSec) },
      objectStore: {
        objectMB, rounds,
        filesystem: { ...fsRes, raw: { putMBps: round(rawFsPut), getMBps: round(rawFsGet) }, ratio: { put: round(fsRes.putMBps / rawFsPut), get: round(fsRes.getMBps / rawFsGet) } },
        s3rver: { ...s3Res, raw: { getMBps: round(rawHttpGet) }, ratio: { get: round(s3Res.getMBps / rawHttpGet) } },
      },
    }
    if (opts.write !== false) {
      await mkdir(path.join(here, 'results'), { recursive: true })
      await writeFile(path.join(here, 'results', 'foundation.json'), `${JSON.stringify(result, null, 2)}\n`)
      console.log('wrote bench/results/foundation.json')
    }
    return result
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run()
