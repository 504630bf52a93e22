import type { Pool } from '../../db/pool.ts'
import { withTransaction } from '../../db/pool.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { audit } from './audit.ts'

/**
 * Retention: a stored recording whose retention_until has passed and which no legal hold
 * covers loses its audio; the row stays (state `deleted`, metadata and hash kept) and
 * every deletion is audited. Each recording is handled in its own transaction holding
 * its row lock, and the hold flag is re-read under that lock, so a hold placed while a
 * sweep runs always wins.
 */
export interface SweepDeps { pool: Pool; store: ObjectStore; log: Logger }
export interface SweepOptions { dryRun?: boolean; now?: Date; limit?: number; actor?: string }

export interface SweepCandidate { id: string; objectKey: string | null; retentionUntil: string; bytes: number | null; callUuid: string | null; clientId: string | null }
export interface SweepReport {
  dryRun: boolean
  now: string
  candidates: SweepCandidate[]
  deleted: string[]
  skipped: Array<{ id: string; reason: string }>
  failed: Array<{ id: string; error: string }>
  bytes: number
}

export const SWEEPER_ACTOR = 'system:retention-sweeper'

export async function sweep(deps: SweepDeps, opts: SweepOptions = {}): Promise<SweepReport> {
  const now = opts.now ?? new Date()
  const limit = Math.min(Math.max(opts.limit ?? 500, 1), 10_000)
  const dryRun = opts.dryRun ?? false
  const rows = (await deps.pool.query<{ id: string; object_key: string | null; retention_until: Date; bytes: number | null; call_uuid: string | null; client_id: string | null }>(
    `SELECT id, object_key, retention_until, bytes, call_uuid, client_id FROM recordings
     WHERE state = 'stored' AND legal_hold = false AND retention_until < $1
     ORDER BY retention_until, id LIMIT $2`, [now, limit])).rows
  const report: SweepReport = {
    dryRun, now: now.toISOString(), deleted: [], skipped: [], failed: [], bytes: 0,
    candidates: rows.map((r) => ({ id: r.id, objectKey: r.object_key, retentionUntil: r.retention_until.toISOString(), bytes: r.bytes === null ? null : Number(r.bytes), callUuid: r.call_uuid, clientId: r.client_id })),
  }
  if (dryRun) {
    report.bytes = report.candidates.reduce((s, c) => s + (c.bytes ?? 0), 0)
    return report
  }
  for (const c of report.candidates) {
    try {
      const outcome = await withTransaction(deps.pool, async (db) => {
        // SKIP LOCKED: another node sweeping the same row, or a hold being placed on it right now
        const row = (await db.query<{ state: string; legal_hold: boolean; retention_until: Date; object_key: string | null }>(
          'SELECT state, legal_hold, retention_until, object_key FROM recordings WHERE id = $1 FOR UPDATE SKIP LOCKED', [c.id])).rows[0]
        if (!row) return 'locked'
        if (row.state !== 'stored') return `state ${row.state}`
        if (row.legal_hold) return 'legal hold'
        if (!(row.retention_until < now)) return 'retention extended'
        if (row.object_key) await deps.store.delete(row.object_key)
        await db.query(`UPDATE recordings SET state = 'deleted', failure_reason = NULL WHERE id = $1`, [c.id])
        await audit(db, { actor: opts.actor ?? SWEEPER_ACTOR, action: 'retention.delete', recordingId: c.id,
          details: { objectKey: row.object_key, retentionUntil: row.retention_until.toISOString(), bytes: c.bytes } })
        return 'deleted'
      })
      if (outcome === 'deleted') { report.deleted.push(c.id); report.bytes += c.bytes ?? 0 } else report.skipped.push({ id: c.id, reason: outcome })
    } catch (err) {
      // the object delete is idempotent: a failed commit after it leaves a stored row whose next sweep finishes the job
      deps.log.error({ err, recording_id: c.id }, 'retention sweep of one recording failed')
      report.failed.push({ id: c.id, error: (err as Error).message })
    }
  }
  if (report.deleted.length || report.failed.length) deps.log.info({ deleted: report.deleted.length, failed: report.failed.length, bytes: report.bytes }, 'retention sweep done')
  return report
}

/** Runs `sweep` every `intervalSec` (first run after one interval), never two at once; stop() waits for a running sweep. */
export class RetentionSweeperRunner {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<unknown> | null = null
  private stopped = true

  constructor(private readonly deps: SweepDeps, private readonly opts: { intervalSec: number; limit?: number } = { intervalSec: 3_600 }) {}

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule()
  }

  /** One sweep now (also used by tests); resolves with its report. */
  async runOnce(): Promise<SweepReport> {
    const p = sweep(this.deps, { limit: this.opts.limit })
    this.running = p
    try { return await p } finally { this.running = null }
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    if (this.running) await this.running.catch(() => undefined)
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.runOnce()
        .catch((err: unknown) => this.deps.log.error({ err }, 'retention sweep failed'))
        .finally(() => this.schedule())
    }, this.opts.intervalSec * 1000)
    this.timer.unref()
  }
}
