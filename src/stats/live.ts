import { DateTime } from 'luxon'
import { Gauge, type Registry } from 'prom-client'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { EventBus } from '../events/bus.ts'
import type { SseStream } from '../http/sse.ts'
import { runReport } from './report.ts'
import { reportZone } from './range.ts'

/** The supervisor's live view (GET /api/stats/live, /api/stats/live/snapshot). */
export interface LiveSnapshot {
  at: string
  queues: Array<{ id: string; name: string; waiting: number; longestWaitSec: number; agentsReady: number }>
  agents: Array<{ id: string; name: string; state: string; since: string; reason: string | null }>
  today: { offered: number; answered: number; abandoned: number; serviceLevelPct: number | null; asaSec: number | null; ahtSec: number | null; csatAvg: number | null }
}

export interface LiveStatsDeps {
  pool: Pool
  log: Logger
  config: () => SwitchboardFile
  events?: EventBus
  registry?: Registry
}

/** After a call or agent event, wait this long for more before pushing (a burst → one push). */
const CHANGE_DEBOUNCE_MS = 200

/**
 * One snapshot computation shared by every subscriber and the Prometheus scrape: pushed
 * every stats.liveIntervalSec while someone watches, and shortly after every call or agent
 * event. Waiting callers are the ACD's shared waiting list (queue_calls: every node's
 * callers, waiting or being rung; the ACD removes a crashed node's rows), the wait counted
 * from when the caller entered that queue; agent states come from agent_presence (every
 * node's); "today" is the same SQL report as /api/stats/report over today in the report
 * zone.
 */
export class LiveStats {
  private readonly subscribers = new Set<SseStream>()
  private offs: Array<() => void> = []
  private timer: NodeJS.Timeout | null = null
  private debounce: NodeJS.Timeout | null = null
  private inflight: Promise<LiveSnapshot> | null = null
  private last: { at: number; snapshot: LiveSnapshot } | null = null

  constructor(private readonly deps: LiveStatsDeps) {
    if (deps.registry) this.registerGauges(deps.registry)
  }

  start(): void {
    const ev = this.deps.events
    if (!ev) return
    this.offs = [
      ev.on('call.started', () => this.changed()),
      ev.on('call.offered', () => this.changed()),
      ev.on('call.answered', () => this.changed()),
      ev.on('call.ended', () => this.changed()),
      ev.on('agent.state', () => this.changed()),
    ]
  }

  stop(): void {
    for (const off of this.offs) off()
    this.offs = []
    if (this.timer) clearInterval(this.timer)
    if (this.debounce) clearTimeout(this.debounce)
    this.timer = null
    this.debounce = null
    for (const s of this.subscribers) s.close()
    this.subscribers.clear()
  }

  /** A snapshot no older than `maxAgeMs`; concurrent callers share one computation. */
  snapshot(maxAgeMs = 0): Promise<LiveSnapshot> {
    if (this.last && Date.now() - this.last.at <= maxAgeMs) return Promise.resolve(this.last.snapshot)
    this.inflight ??= this.compute()
      .then((snapshot) => { this.last = { at: Date.now(), snapshot }; return snapshot })
      .finally(() => { this.inflight = null })
    return this.inflight
  }

  /** Add an SSE stream: it gets a snapshot now and then with every push. */
  subscribe(stream: SseStream): () => void {
    this.subscribers.add(stream)
    void this.snapshot(1000).then((s) => stream.send('snapshot', s), (err) => this.deps.log.warn({ err: (err as Error).message }, 'live snapshot failed'))
    if (!this.timer) {
      this.timer = setInterval(() => this.push(), this.deps.config().stats.liveIntervalSec * 1000)
      this.timer.unref()
    }
    return () => {
      this.subscribers.delete(stream)
      if (this.subscribers.size === 0 && this.timer) { clearInterval(this.timer); this.timer = null }
    }
  }

  get subscriberCount(): number { return this.subscribers.size }

  private changed(): void {
    if (this.subscribers.size === 0 || this.debounce) return
    this.debounce = setTimeout(() => { this.debounce = null; this.push() }, CHANGE_DEBOUNCE_MS)
    this.debounce.unref()
  }

  private push(): void {
    if (this.subscribers.size === 0) return
    this.snapshot(0).then(
      (s) => { for (const sub of this.subscribers) sub.send('snapshot', s) },
      (err) => this.deps.log.warn({ err: (err as Error).message }, 'live snapshot failed; next push retries'))
  }

  private async compute(): Promise<LiveSnapshot> {
    const cfg = this.deps.config()
    const { pool } = this.deps
    const now = new Date()
    const tz = reportZone(cfg)
    const midnight = DateTime.fromJSDate(now, { zone: tz }).startOf('day').toJSDate()
    const [agents, queued, today] = await Promise.all([
      pool.query<{ id: string; name: string; group_id: string | null; state: string; since: Date; reason: string | null }>(
        `SELECT e.id, e.name, e.group_id, p.state, p.since, p.reason
           FROM agent_presence p JOIN employees e ON e.id = p.employee_id WHERE e.active ORDER BY e.name, e.id`),
      pool.query<{ queue_id: string; waiting: number; since: Date | null }>(
        `SELECT queue_id, count(*)::int AS waiting, min(queue_entered_at) AS since FROM queue_calls GROUP BY queue_id`),
      runReport(pool, { from: midnight, to: new Date(now.getTime() + 1000), tz, groupBy: 'total' }, cfg),
    ])
    const waiting = new Map(queued.rows.map((r) => [r.queue_id, r]))
    const readyByGroup = new Map<string, number>()
    for (const a of agents.rows) if (a.state === 'ready' && a.group_id) readyByGroup.set(a.group_id, (readyByGroup.get(a.group_id) ?? 0) + 1)
    const queues = cfg.queues.map((q) => {
      const w = waiting.get(q.id)
      return {
        id: q.id, name: q.name, waiting: w?.waiting ?? 0,
        longestWaitSec: w?.since ? Math.max(0, Math.round((now.getTime() - w.since.getTime()) / 1000)) : 0,
        agentsReady: q.groupIds.reduce((sum, g) => sum + (readyByGroup.get(g) ?? 0), 0),
      }
    })
    const t = today.totals
    return {
      at: now.toISOString(),
      queues,
      agents: agents.rows.map((a) => ({ id: a.id, name: a.name, state: a.state, since: a.since.toISOString(), reason: a.reason })),
      today: { offered: t.offered, answered: t.answered, abandoned: t.abandoned, serviceLevelPct: t.serviceLevelPct, asaSec: t.asaSec, ahtSec: t.ahtSec, csatAvg: t.csatAvg },
    }
  }

  private registerGauges(registry: Registry): void {
    // One scrape = one (shared, ≤1 s old) snapshot for all three gauges.
    const get = () => this.snapshot(1000)
    const log = this.deps.log
    new Gauge({
      name: 'switchboard_queue_waiting', help: 'Callers waiting per queue (the shared waiting list: every node)', labelNames: ['queue'], registers: [registry],
      async collect() {
        try { const s = await get(); for (const q of s.queues) this.set({ queue: q.id }, q.waiting) } catch (err) { log.warn({ err: (err as Error).message }, 'queue gauge unavailable') }
      },
    })
    new Gauge({
      name: 'switchboard_agents_ready', help: 'Agents in state ready', registers: [registry],
      async collect() {
        try { const s = await get(); this.set(s.agents.filter((a) => a.state === 'ready').length) } catch (err) { log.warn({ err: (err as Error).message }, 'agents gauge unavailable') }
      },
    })
    new Gauge({
      name: 'switchboard_service_level_today', help: 'Service level today in percent (answered within stats.serviceLevelSec / offered); NaN before the first call', registers: [registry],
      async collect() {
        try { const s = await get(); this.set(s.today.serviceLevelPct ?? Number.NaN) } catch (err) { log.warn({ err: (err as Error).message }, 'service level gauge unavailable') }
      },
    })
  }
}
