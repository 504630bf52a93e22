/**
 * Fault suite — a nearly full spool disk under the assembled server. The spool is a real,
 * small tmpfs (mounted here as root); ballast pushes it below the critical watermark while
 * calls run. /ready must say so clearly (503, `spool_disk` naming the level), calls still
 * complete with their CDRs, nothing already spooled is deleted or corrupted (every recording
 * is stored and verified), and /ready recovers once space is freed. The pipeline-level
 * watermark behaviour is in recordings-disk.test.ts. Figures: `# FAULTS disk: …`.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile, statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startTestDatabase } from './support/db.ts'
import { FsSimulator } from './support/fs-simulator.ts'
import { waitFor } from './support/pipeline.ts'
import { figures, writeFaultConfig } from './support/faults.ts'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'

const mnt = await mkdtemp(path.join(tmpdir(), 'sb-faults-disk-'))
let mountError: string | false = false
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt], { stdio: 'pipe' })
} catch (err) {
  mountError = `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`
  await rm(mnt, { recursive: true, force: true })
}

t.test('nearly full spool disk: /ready 503 naming it, calls complete, nothing lost, recovers', { skip: mountError, timeout: 240_000 }, async (t) => {
  t.teardown(async () => { execFileSync('umount', ['-l', mnt]); await rm(mnt, { recursive: true, force: true }) })
  const db = await startTestDatabase()
  t.teardown(() => db.close())
  const dir = await mkdtemp(path.join(tmpdir(), 'sb-faults-disk-data-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = await writeFaultConfig(dir, (cfg) => {
    cfg.recording.pipeline.spoolWarnFreePercent = 50
    cfg.recording.pipeline.spoolCriticalFreePercent = 25
  })
  const sb = await startSwitchboard({
    DATABASE_URL: db.url, DATA_DIR: dir, SPOOL_DIR: mnt, SWITCHBOARD_CONFIG: config, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent',
  }, silentLogger())
  t.teardown(() => sb.stop())
  const ready = async () => {
    const res = await fetch(`${sb.httpUrl}/ready`)
    const body = await res.json() as { checks: Array<{ name: string; ok: boolean; detail?: string }> }
    return { status: res.status, spool: body.checks.find((c) => c.name === 'spool_disk') }
  }
  t.equal((await ready()).status, 200, 'empty spool: ready')

  const sim = new FsSimulator({ port: sb.eslPort, host: '127.0.0.1', timeScale: 1 })
  const call = (i: number) => sim.call({ callerIdNumber: `79167770${String(i).padStart(3, '0')}`, destination: '+74951230000', hangupAtMs: 3_000 }).done
  const before = await Promise.all([0, 1, 2].map(call))

  // Ballast: below the critical watermark (25 % free), sized from what statfs reports.
  const s = await statfs(mnt)
  const free = s.bavail * s.bsize, total = s.blocks * s.bsize
  await writeFile(path.join(mnt, 'ballast'), Buffer.alloc(Math.max(0, Math.floor(free - 0.15 * total))))
  const critical = await waitFor('/ready to report the full spool', async () => { const r = await ready(); return r.status === 503 && r }, 15_000, 250)
  t.match(critical.spool?.detail ?? '', /critical/, `/ready names the spool disk: "${critical.spool?.detail}"`)

  // Calls still complete while it is critical.
  const during = await Promise.all([3, 4, 5].map(call))
  await rm(path.join(mnt, 'ballast'))
  const recovered = await waitFor('/ready to recover', async () => { const r = await ready(); return r.status === 200 && r }, 15_000, 250)
  const all = [...before, ...during]
  const uuids = all.map((r) => r.uuid)
  const cdrs = await waitFor('CDRs', async () => { const r = await db.pool.query('SELECT 1 FROM calls WHERE uuid = ANY($1::uuid[]) AND ended_at IS NOT NULL', [uuids]); return r.rowCount === uuids.length && r.rowCount }, 30_000)
  const written = all.flatMap((r) => r.recordings.filter((x) => x.written).map((x) => path.basename(x.path, '.wav')))
  const stored = await waitFor('recordings stored', async () => {
    const r = await db.pool.query(`SELECT count(*) AS n FROM recordings WHERE id = ANY($1::uuid[]) AND state = 'stored' AND sha256 IS NOT NULL`, [written])
    return Number(r.rows[0]!.n) === written.length && Number(r.rows[0]!.n)
  }, 60_000)
  t.comment(figures('disk', {
    spool_mb: (total / 1e6).toFixed(0), ready_when_critical: critical.status, detail: JSON.stringify(critical.spool?.detail ?? ''),
    calls: all.length, cdrs, recordings_written: written.length, recordings_stored: stored, ready_after_free: recovered.status,
  }))
  t.equal(cdrs, all.length, 'every call, also those during the critical period, has its CDR')
  t.equal(stored, written.length, 'every recording FreeSWITCH wrote is stored and verified')
  t.ok(during.every((r) => r.commands.some((c) => c.headers['execute-app-name'] === 'answer')), 'callers are still answered while the spool is critical')
})
