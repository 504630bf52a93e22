import { Counter, Gauge, type Registry } from 'prom-client'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { WebhookEndpointConfig, WebhooksConfig } from '../config/switchboard-file.ts'
import { erpRecordOf } from '../erp/record.ts'
import type { LinkSigner } from './links.ts'
import { postWebhook, type PostOutcome } from './http-post.ts'
import { signatureHeader } from './signature.ts'

/**
 * Delivers the outbox. Every node runs one; each claims due deliveries with
 * `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`), so two nodes never send the same
 * delivery at once, and a node that dies mid-POST only delays it until the lease ends
 * (the attempt is counted at claim time, so a delivery that kills its worker cannot loop
 * forever). The POST runs outside any transaction. Failures (timeout, connection error,
 * 3xx, 4xx, 5xx) are retried after base·2^(n−1) ms (±10 % jitter, capped at maxMs); the
 * attempt that reaches maxAttempts makes the delivery a dead letter, kept until an admin
 * redelivers it. Deliveries of a disabled or removed endpoint stay pending untouched.
 */
export interface DeliveryWorkerDeps {
  pool: Pool
  log: Logger
  webhooks: () => WebhooksConfig
  signer: LinkSigner
  node: string
  env?: NodeJS.ProcessEnv
  registry?: Registry
}

interface Claimed {
  id: string; event_id: string; endpoint_id: string; format: 'switchboard' | 'erp'; attempts: number
  type: string; occurred_at: Date; data: Record<string, unknown>
}

/** Claim up to $p due deliveries of enabled endpoints with a lease ($p+1 ms) for node $p+2; endpoint ids $p+3. */
function claimCte(p: number): string {
  return `claimed AS (
    UPDATE webhook_deliveries d SET locked_until = now() + make_interval(secs => $${p + 1}::double precision / 1000), locked_by = $${p + 2},
           attempts = d.attempts + 1, last_attempt_at = now()
     WHERE d.id IN (SELECT id FROM webhook_deliveries
                     WHERE state = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
                       AND endpoint_id = ANY($${p + 3}::text[])
                     ORDER BY next_attempt_at LIMIT $${p} FOR UPDATE SKIP LOCKED)
     RETURNING d.id, d.event_id, d.endpoint_id, d.format, d.attempts)`
}
const CLAIMED_SELECT = 'SELECT c.*, e.type, e.occurred_at, e.data FROM claimed c JOIN webhook_events e ON e.id = c.event_id'

export function backoffMs(attempt: number, cfg: WebhooksConfig['backoff'], random = Math.random): number {
  const raw = Math.min(cfg.baseMs * 2 ** Math.max(0, attempt - 1), cfg.maxMs)
  return Math.max(1, Math.round(raw * (0.9 + 0.2 * random())))
}

export class DeliveryWorker {
  private timer: NodeJS.Timeout | null = null
  private cleanupTimer: NodeJS.Timeout | null = null
  private readonly inFlight = new Set<Promise<void>>()
  private polling: Promise<void> | null = null
  private again = false
  private stopping = false
  private readonly counter: Counter<'outcome'> | null

  constructor(private readonly deps: DeliveryWorkerDeps) {
    this.counter = deps.registry
      ? new Counter({ name: 'switchboard_webhook_attempts_total', help: 'Webhook delivery attempts by outcome (delivered, retry, dead)', labelNames: ['outcome'], registers: [deps.registry] })
      : null
    if (deps.registry) {
      const pool = deps.pool
      // shared by all nodes (it is the table): alert on dead > 0 or a growing pending count
      new Gauge({
        name: 'switchboard_webhook_deliveries', help: 'Webhook deliveries waiting (pending) and given up (dead), all nodes', labelNames: ['state'], registers: [deps.registry],
        async collect() {
          try {
            const r = await pool.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM webhook_deliveries WHERE state IN ('pending', 'dead') GROUP BY state`)
            for (const state of ['pending', 'dead']) this.set({ state }, r.rows.find((x) => x.state === state)?.n ?? 0)
          } catch {
            // Postgres unreachable: /metrics still answers (with the last values); /ready reports the outage
          }
        },
      })
    }
  }

  start(): void {
    this.stopping = false
    const tick = () => {
      if (this.stopping) return
      this.wake()
      this.timer = setTimeout(tick, this.deps.webhooks().pollMs)
      this.timer.unref()
    }
    tick()
    this.cleanupTimer = setInterval(() => void this.cleanup().catch((err) => this.deps.log.warn({ err }, 'webhook outbox cleanup failed')), 3_600_000)
    this.cleanupTimer.unref()
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearTimeout(this.timer)
    if (this.cleanupTimer) clearInterval(this.cleanupTimer)
    this.timer = null
    await this.polling
    await Promise.allSettled([...this.inFlight])
  }

  /** Look for due deliveries now (after an insert on this node, or a redelivery). */
  wake(): void {
    if (this.stopping) return
    if (this.polling) { this.again = true; return }
    this.polling = (async () => {
      try {
        do {
          this.again = false
          await this.claimAndSend()
        } while (this.again && !this.stopping)
      } catch (err) {
        this.deps.log.warn({ err }, 'webhook delivery poll failed; will retry')
      } finally {
        this.polling = null
      }
    })()
  }

  /** Resolves when nothing is being sent by this worker (tests). */
  async idle(): Promise<void> {
    while (this.polling || this.inFlight.size > 0) {
      await this.polling
      await Promise.allSettled([...this.inFlight])
    }
  }

  /** Fill free slots with due deliveries; each slot then runs on by itself (see runSlot). */
  private async claimAndSend(): Promise<void> {
    const cfg = this.deps.webhooks()
    const room = cfg.concurrency - this.inFlight.size
    const enabled = cfg.endpoints.filter((e) => e.enabled).map((e) => e.id)
    if (room <= 0 || enabled.length === 0) return
    const rows = (await this.deps.pool.query<Claimed>(`WITH ${claimCte(1)} ${CLAIMED_SELECT}`, [room, cfg.timeoutMs * 2 + 5_000, this.deps.node, enabled])).rows
    for (const row of rows) {
      const p = this.runSlot(row).catch((err: unknown) => this.deps.log.error({ err, delivery_id: row.id }, 'webhook delivery bookkeeping failed; the lease will expire and it is retried'))
        .finally(() => { this.inFlight.delete(p); if (!this.stopping) this.wake() })
      this.inFlight.add(p)
    }
    if (rows.length === room) this.again = true
  }

  /**
   * One delivery slot: send, then record the outcome and claim the next due delivery in the
   * same statement (one round trip instead of two per delivery under load); ends when
   * nothing is due or the worker stops.
   */
  private async runSlot(first: Claimed): Promise<void> {
    let row: Claimed | undefined = first
    while (row) {
      const cfg = this.deps.webhooks()
      const endpoint = cfg.endpoints.find((e) => e.id === row!.endpoint_id && e.enabled)
      if (!endpoint) {
        // disabled or removed since the claim: give the delivery back untouched
        await this.deps.pool.query('UPDATE webhook_deliveries SET locked_until = NULL, attempts = attempts - 1 WHERE id = $1 AND attempts = $2', [row.id, row.attempts])
        return
      }
      const outcome = await this.send(row, endpoint, cfg)
      row = await this.settle(row, outcome, cfg)
    }
  }

  /** The body this endpoint gets for this event (download links are minted per attempt: they are short-lived). */
  async render(row: Pick<Claimed, 'id' | 'event_id' | 'endpoint_id' | 'format' | 'type' | 'occurred_at' | 'data'>): Promise<string> {
    if (row.format === 'erp') return JSON.stringify({ id: row.event_id, type: 'erp.call', occurredAt: row.occurred_at.toISOString(), record: erpRecordOf(row.data) })
    const data = structuredClone(row.data)
    if (row.type === 'recording.stored' && data.recording && typeof data.recording === 'object') {
      const rec = data.recording as Record<string, unknown>
      const link = await this.deps.signer.recordingAudio(String(rec.id), `webhook:${row.endpoint_id}`)
      rec.downloadUrl = link.url
      rec.downloadExpiresAt = link.expiresAt
    }
    return JSON.stringify({ id: row.event_id, type: row.type, occurredAt: row.occurred_at.toISOString(), data })
  }

  private secretOf(e: WebhookEndpointConfig): string | null {
    if (e.secret) return e.secret
    const v = e.secretEnv ? (this.deps.env ?? process.env)[e.secretEnv] : undefined
    return v && v.length > 0 ? v : null
  }

  private async send(row: Claimed, endpoint: WebhookEndpointConfig, cfg: WebhooksConfig): Promise<PostOutcome> {
    const secret = this.secretOf(endpoint)
    if (!secret) return { ok: false, status: null, error: `signing secret missing: environment variable ${endpoint.secretEnv ?? '?'} is not set`, durationMs: 0 }
    let body: string
    try {
      body = await this.render(row)
    } catch (err) {
      return { ok: false, status: null, error: `could not build the body: ${(err as Error).message}`, durationMs: 0 }
    }
    const t = Math.floor(Date.now() / 1000)
    return postWebhook(endpoint.url, {
      'x-switchboard-event': row.format === 'erp' ? 'erp.call' : row.type,
      'x-switchboard-delivery': row.id,
      'x-switchboard-attempt': String(row.attempts),
      'x-switchboard-signature': signatureHeader(secret, t, body),
    }, body, { timeoutMs: cfg.timeoutMs, policy: cfg })
  }

  /** Record the outcome of one attempt; returns the next due delivery claimed for this slot, if any. */
  private async settle(row: Claimed, o: PostOutcome, cfg: WebhooksConfig): Promise<Claimed | undefined> {
    const log = this.deps.log.child({ delivery_id: row.id, endpoint: row.endpoint_id, event: row.type, attempt: row.attempts })
    const dead = !o.ok && row.attempts >= cfg.maxAttempts
    const delay = o.ok || dead ? 0 : backoffMs(row.attempts, cfg.backoff)
    const update = o.ok
      ? `UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), last_status = $3, last_error = NULL, locked_until = NULL WHERE id = $1 AND attempts = $2`
      : dead
        ? `UPDATE webhook_deliveries SET state = 'dead', dead_at = now(), last_status = $3, last_error = $4, locked_until = NULL WHERE id = $1 AND attempts = $2`
        : `UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $5::double precision / 1000), last_status = $3, last_error = $4, locked_until = NULL
            WHERE id = $1 AND attempts = $2`
    const enabled = cfg.endpoints.filter((e) => e.enabled).map((e) => e.id)
    const next = (await this.deps.pool.query<Claimed>(
      // every parameter typed whichever branch is used (an unused one would have no type)
      `WITH settled AS (${update} RETURNING $3::integer, $4::text, $5::double precision), ${claimCte(6)} ${CLAIMED_SELECT}`,
      [row.id, row.attempts, o.status, o.error, delay, this.stopping ? 0 : 1, cfg.timeoutMs * 2 + 5_000, this.deps.node, enabled])).rows[0]
    if (o.ok) {
      this.counter?.inc({ outcome: 'delivered' })
      log.debug({ status: o.status, ms: o.durationMs }, 'webhook delivered')
    } else if (dead) {
      this.counter?.inc({ outcome: 'dead' })
      log.error({ status: o.status, error: o.error }, 'webhook delivery failed for the last time: dead letter (redeliver via the admin API)')
    } else {
      this.counter?.inc({ outcome: 'retry' })
      log.warn({ status: o.status, error: o.error, retry_in_ms: delay }, 'webhook delivery failed; will retry')
      // a short backoff may be due before the next poll: look again then
      if (delay < cfg.pollMs && !this.stopping) setTimeout(() => this.wake(), delay + 5).unref()
    }
    return next
  }

  /** Delivered deliveries older than keepDays go, and events nobody needs any more. */
  async cleanup(): Promise<number> {
    const days = this.deps.webhooks().keepDays
    const r = await this.deps.pool.query(`DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < now() - make_interval(days => $1)`, [days])
    await this.deps.pool.query(`DELETE FROM webhook_events e WHERE e.created_at < now() - make_interval(days => $1)
                                  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)`, [days])
    return r.rowCount ?? 0
  }
}
