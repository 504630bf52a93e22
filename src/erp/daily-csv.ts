import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DateTime } from 'luxon'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { ErpConfig, LinksConfig } from '../config/switchboard-file.ts'
import { streamCallsCsv } from './calls-csv.ts'

/**
 * The daily CSV file for the ERP: at `atLocalTime` in `timeZone`, the previous local day
 * is written to `<directory>/calls-YYYY-MM-DD.csv` — once per date, whichever node gets
 * there first (a row in erp_daily_exports is claimed; a claim left by a node that died
 * mid-write is taken over after 10 minutes). The file appears atomically (temporary file,
 * then rename), so the ERP never picks up half a file. A node that was down at that time
 * writes the day when it comes back (the check runs every minute).
 */
export interface DailyCsvDeps { pool: Pool; log: Logger; erp: () => ErpConfig; links: () => LinksConfig; node: string }

export interface DailyExport { day: string; file: string; rows: number; bytes: number; sha256: string }

/** The local date whose file is due at `now`, or null before the first one is due today. */
export function dueDay(now: Date, cfg: ErpConfig['dailyCsv']): string {
  const local = DateTime.fromJSDate(now, { zone: cfg.timeZone })
  const [h, m] = cfg.atLocalTime.split(':').map(Number)
  const reached = local.hour > h || (local.hour === h && local.minute >= m)
  return local.startOf('day').minus({ days: reached ? 1 : 2 }).toISODate()!
}

export class DailyCsvExporter {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<unknown> | null = null

  constructor(private readonly deps: DailyCsvDeps, private readonly checkEveryMs = 60_000) {}

  start(): void {
    const tick = () => { if (!this.running) this.running = this.runDue().catch((err) => this.deps.log.error({ err }, 'daily ERP CSV export failed; will retry')).finally(() => { this.running = null }) }
    tick()
    this.timer = setInterval(tick, this.checkEveryMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** Export the due day if enabled and nobody has; returns what was written (null: nothing to do). */
  async runDue(now = new Date()): Promise<DailyExport | null> {
    const cfg = this.deps.erp().dailyCsv
    if (!cfg.enabled) return null
    return this.exportDay(dueDay(now, cfg))
  }

  /** Write one day's file unless it was written already (idempotent per date). */
  async exportDay(day: string): Promise<DailyExport | null> {
    const cfg = this.deps.erp().dailyCsv
    const claimed = await this.deps.pool.query(
      `INSERT INTO erp_daily_exports (day, tz, node) VALUES ($1, $2, $3)
       ON CONFLICT (day) DO UPDATE SET node = EXCLUDED.node, tz = EXCLUDED.tz, started_at = now()
         WHERE erp_daily_exports.state = 'writing' AND erp_daily_exports.started_at < now() - interval '10 minutes'
       RETURNING day`, [day, cfg.timeZone, this.deps.node])
    if (!claimed.rowCount) return null
    const dir = path.resolve(cfg.directory)
    const file = path.join(dir, `calls-${day}.csv`)
    const tmp = `${file}.tmp-${process.pid}`
    try {
      await mkdir(dir, { recursive: true })
      const hash = createHash('sha256')
      let bytes = 0
      let lines = 0
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk); bytes += chunk.length
          for (const b of chunk) if (b === 10) lines++
          cb(null, chunk)
        },
      })
      const csv = await streamCallsCsv(this.deps.pool, { date: day, tz: cfg.timeZone, publicBaseUrl: this.deps.links().publicBaseUrl })
      await pipeline(csv, count, createWriteStream(tmp))
      await rename(tmp, file)
      const result: DailyExport = { day, file, rows: Math.max(0, lines - 1), bytes, sha256: hash.digest('hex') }
      await this.deps.pool.query(
        `UPDATE erp_daily_exports SET state = 'written', file = $2, rows = $3, bytes = $4, sha256 = $5, written_at = now() WHERE day = $1`,
        [day, file, result.rows, bytes, result.sha256])
      this.deps.log.info({ day, file, rows: result.rows, bytes }, 'daily ERP CSV written')
      return result
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined)
      // give the claim back at once so the next check (or another node) retries
      await this.deps.pool.query(`DELETE FROM erp_daily_exports WHERE day = $1 AND state = 'writing'`, [day]).catch(() => undefined)
      throw err
    }
  }
}
