import { run, Logger as WorkerLogger, type Runner, type Task, type LogLevel } from 'graphile-worker'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { EventBus } from '../events/bus.ts'
import { processRecording, type ProcessDeps } from './process-recording.ts'
import { Spool } from './spool.ts'
import { BrokenAudioError } from './probe.ts'

export interface PipelineOptions {
  /** recordings transcoded at once on this node (default 2: one per core) */
  concurrency: number
  /** a WAV unchanged for this long with no "stopped" mark is treated as finished (crash recovery) */
  quietSec: number
  /** how often the spool is rescanned for work nobody enqueued (crashes, outages) */
  scanIntervalSec: number
  /** retry delays grow 2^n seconds up to this cap, so a long outage drains soon after it ends */
  maxRetryDelaySec: number
  /** free space on the spool disk below which a warning is raised / optional recordings stop */
  warnFreePercent: number
  criticalFreePercent: number
}

export const DEFAULT_PIPELINE_OPTIONS: PipelineOptions = {
  concurrency: 2, quietSec: 120, scanIntervalSec: 30, maxRetryDelaySec: 60, warnFreePercent: 15, criticalFreePercent: 5,
}

const TASK = 'process_recording'
interface Payload { id: string; attempt: number }

export type DiskLevel = 'ok' | 'warning' | 'critical'

/**
 * Durable recording processing on graphile-worker (jobs in Postgres, one job key per
 * recording). Enqueued on hangup; the spool scanner re-enqueues anything left behind
 * by a crash or an outage, so the spool itself is the last word on what must be stored.
 */
export class RecordingPipeline {
  private runner: Runner | null = null
  private scanTimer: NodeJS.Timeout | null = null
  private scanning: Promise<void> | null = null
  private stopping = false
  private readonly inFlight = new Set<string>()
  private diskLevel: DiskLevel = 'ok'
  private lastDisk = { freePercent: 100, freeBytes: 0 }
  private readonly m: ReturnType<typeof createMetrics>

  constructor(
    private readonly deps: ProcessDeps & { pool: Pool; events?: EventBus },
    private readonly opts: PipelineOptions,
    registry: Registry,
  ) {
    this.m = createMetrics(registry, this)
  }

  get spool(): Spool { return this.deps.spool }

  async start(): Promise<void> {
    this.stopping = false
    await this.deps.spool.init()
    await this.startRunner()
    await this.checkDisk()
    // At start-up, jobs may still be locked by this node's previous (killed) process:
    // 'replace' creates fresh jobs beside them; the advisory lock in processRecording
    // keeps a duplicate from ever running at the same time as the original.
    await this.scan('replace')
    this.scanTimer = setInterval(() => { void this.scan(); void this.checkDisk() }, this.opts.scanIntervalSec * 1000)
    this.scanTimer.unref()
  }

  /**
   * graphile-worker, with job completions batched: a completion that fails (Postgres
   * going away at that moment) then reaches its error handler instead of becoming an
   * unhandled rejection — but the handler shuts the worker pool down. So the runner is
   * supervised: if it ends while we are not stopping, it is started again (with backoff
   * while Postgres is still down) and the spool is rescanned in 'replace' mode, exactly
   * like a start-up after a crash. Jobs are idempotent; nothing is lost either way.
   */
  private async startRunner(): Promise<void> {
    const task: Task = async (payload, helpers) => this.runJob(payload as Payload, (p, runAt) =>
      helpers.addJob(TASK, p, { jobKey: p.id, runAt, maxAttempts: 3 }).then(() => undefined))
    const runner = await run({
      pgPool: this.deps.pool,
      concurrency: this.opts.concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: workerLogger(this.deps.log),
      taskList: { [TASK]: task },
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    })
    this.runner = runner
    runner.promise.then(() => this.onRunnerEnded(runner), (err: unknown) => this.onRunnerEnded(runner, err))
  }

  private onRunnerEnded(runner: Runner, err?: unknown): void {
    if (this.stopping || this.runner !== runner) return
    this.runner = null
    this.deps.log.error({ err }, 'recording job runner stopped unexpectedly (Postgres outage?); restarting it')
    const restart = async (delayMs: number) => {
      if (this.stopping) return
      try {
        await this.startRunner()
        await this.scan('replace')
        this.deps.log.info('recording job runner restarted')
      } catch (e) {
        this.deps.log.warn({ err: (e as Error).message, retry_in_ms: delayMs }, 'job runner restart failed; retrying')
        setTimeout(() => void restart(Math.min(delayMs * 2, 30_000)), delayMs).unref()
      }
    }
    setTimeout(() => void restart(1_000), 1_000).unref()
  }

  /** Stop taking jobs and wait for the running ones to finish (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.scanTimer) clearInterval(this.scanTimer)
    this.scanTimer = null
    await this.scanning
    await this.runner?.stop()
    this.runner = null
  }

  /** Called when a recording stopped. Postgres down? The scanner picks it up later; nothing is lost. */
  async enqueue(id: string): Promise<void> {
    try {
      await this.addJob({ id, attempt: 0 })
    } catch (err) {
      this.deps.log.warn({ err, recording_id: id }, 'could not enqueue recording now; the spool scanner will')
    }
  }

  /** Optional recordings (per policy) are not started when the spool disk is critically full. */
  mayStartOptionalRecording(): boolean { return this.diskLevel !== 'critical' }
  diskStatus(): { level: DiskLevel; freePercent: number; freeBytes: number } { return { level: this.diskLevel, ...this.lastDisk } }

  async checkDisk(): Promise<void> {
    try {
      const d = await this.deps.spool.disk()
      this.lastDisk = { freePercent: d.freePercent, freeBytes: d.freeBytes }
      const level: DiskLevel = d.freePercent < this.opts.criticalFreePercent ? 'critical' : d.freePercent < this.opts.warnFreePercent ? 'warning' : 'ok'
      if (level !== this.diskLevel) {
        const log = level === 'ok' ? this.deps.log.info.bind(this.deps.log) : this.deps.log.error.bind(this.deps.log)
        log({ free_percent: Number(d.freePercent.toFixed(2)), level }, level === 'critical'
          ? 'spool disk critically full: optional recordings suspended, nothing is deleted'
          : level === 'warning' ? 'spool disk above warning watermark' : 'spool disk back to normal')
      }
      this.diskLevel = level
    } catch (err) {
      this.deps.log.error({ err }, 'cannot read spool disk usage')
    }
  }

  /** Enqueue every finished recording in the spool that is not being processed here. */
  scan(mode: 'replace' | 'unsafe_dedupe' = 'unsafe_dedupe'): Promise<void> {
    this.scanning ??= (async () => {
      try {
        const pending = await this.deps.spool.pending(this.opts.quietSec * 1000)
        this.m.backlog.set(pending.length)
        this.m.oldest.set(pending.length ? pending[0].ageMs / 1000 : 0)
        for (const entry of pending) {
          if (this.inFlight.has(entry.id)) continue
          // periodic scans never touch an existing job: that would reset its backoff
          await this.addJob({ id: entry.id, attempt: 0 }, mode)
        }
      } catch (err) {
        this.deps.log.warn({ err }, 'spool scan failed; will retry')
      } finally {
        this.scanning = null
      }
    })()
    return this.scanning
  }

  private async addJob(p: Payload, mode: 'replace' | 'unsafe_dedupe' = 'replace'): Promise<void> {
    if (!this.runner) throw new Error('pipeline not started')
    await this.runner.addJob(TASK, p, { jobKey: p.id, jobKeyMode: mode, maxAttempts: 3 })
  }

  /** Tell live listeners (webhooks, consoles) about a recording's final state; never fails the job. */
  private async announce(id: string, outcome: 'stored' | 'quarantined'): Promise<void> {
    const events = this.deps.events
    if (!events) return
    try {
      const { rows } = await this.deps.pool.query<{ call_uuid: string | null; leg_uuid: string | null; failure_reason: string | null }>(
        'SELECT call_uuid, leg_uuid, failure_reason FROM recordings WHERE id = $1', [id])
      const r = rows[0]
      if (outcome === 'stored') events.emit('recording.stored', { recordingId: id, callUuid: r?.call_uuid ?? null, legUuid: r?.leg_uuid ?? null })
      else events.emit('recording.failed', { recordingId: id, callUuid: r?.call_uuid ?? null, legUuid: r?.leg_uuid ?? null, reason: r?.failure_reason ?? 'quarantined' })
    } catch (err) {
      this.deps.log.warn({ err, recording_id: id }, 'recording event not announced')
    }
  }

  private async runJob(p: Payload, reschedule: (p: Payload, runAt: Date) => Promise<void>): Promise<void> {
    if (!Spool.isRecordingId(p.id)) {
      this.deps.log.error({ payload: p }, 'dropping a job with an invalid recording id')
      return
    }
    this.inFlight.add(p.id)
    const end = this.m.duration.startTimer()
    try {
      const outcome = await processRecording(this.deps, p.id)
      this.m.processed.inc({ outcome })
      if (outcome === 'stored' || outcome === 'quarantined') await this.announce(p.id, outcome)
      if (outcome === 'busy') await this.rescheduleDurably(p.id, () => reschedule(p, new Date(Date.now() + 5_000)))
    } catch (err) {
      // Anything but broken audio is transient (store or Postgres down, ffmpeg killed):
      // retry with capped exponential backoff, forever — the recording stays in the spool.
      const stage = err instanceof BrokenAudioError ? 'probe' : ((err as { code?: string }).code ?? 'error')
      this.m.failures.inc({ stage })
      const delaySec = Math.min(2 ** p.attempt, this.opts.maxRetryDelaySec)
      this.deps.log.warn({ err, recording_id: p.id, attempt: p.attempt, retry_in_s: delaySec }, 'recording not stored yet; will retry')
      await this.rescheduleDurably(p.id, () => reschedule({ id: p.id, attempt: p.attempt + 1 }, new Date(Date.now() + delaySec * 1000)))
    } finally {
      end()
      this.inFlight.delete(p.id)
    }
  }

  /**
   * Postgres unreachable (the usual reason the job failed): do not give the job back to
   * graphile-worker now — its fail/complete call would fail too, leave the job locked for
   * hours (no scan touches a locked job) and reject unhandled. Wait until the follow-up
   * job is written, i.e. until Postgres is back, unless the pipeline is stopping.
   */
  private async rescheduleDurably(id: string, reschedule: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await reschedule()
        return
      } catch (err) {
        if (this.stopping) throw err
        const delayMs = Math.min(500 * 2 ** attempt, Math.min(this.opts.maxRetryDelaySec, 5) * 1000)
        if (attempt === 0) this.deps.log.warn({ err, recording_id: id }, 'cannot reschedule recording job (Postgres unreachable?); holding it until Postgres answers')
        await new Promise((r) => setTimeout(r, delayMs))
      }
    }
  }
}

function createMetrics(registry: Registry, pipeline: RecordingPipeline) {
  const spoolFree = new Gauge({
    name: 'switchboard_spool_free_percent', help: 'Free space on the recording spool disk, percent', registers: [registry],
    collect() { this.set(pipeline.diskStatus().freePercent) },
  })
  void spoolFree
  return {
    backlog: new Gauge({ name: 'switchboard_recordings_backlog', help: 'Finished recordings waiting in the spool', registers: [registry] }),
    oldest: new Gauge({ name: 'switchboard_recordings_oldest_waiting_seconds', help: 'Age of the oldest recording waiting in the spool', registers: [registry] }),
    processed: new Counter({ name: 'switchboard_recordings_processed_total', help: 'Recording jobs by outcome', labelNames: ['outcome'], registers: [registry] }),
    failures: new Counter({ name: 'switchboard_recordings_failures_total', help: 'Recording job failures (retried) by stage', labelNames: ['stage'], registers: [registry] }),
    duration: new Histogram({ name: 'switchboard_recording_process_seconds', help: 'Time to process one recording', buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [registry] }),
  }
}

function workerLogger(log: Logger): WorkerLogger {
  const child = log.child({ part: 'jobs' })
  return new WorkerLogger(() => (level: LogLevel, message: string, meta?: unknown) => {
    const m = (meta ?? {}) as Record<string, unknown>
    if (level === 'error') child.error(m, message)
    else if (level === 'warning') child.warn(m, message)
    else child.debug(m, message)
  })
}
