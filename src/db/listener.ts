import pg from 'pg'
import type { Logger } from '../log.ts'

export interface PgListenerOptions {
  databaseUrl: string
  channel: string
  /** what listens (application_name `switchboard-<name>-listener`, log messages) */
  name: string
  log: Logger
  /** a NOTIFY on the channel */
  onNotify(payload: string | undefined): void
  /** the LISTEN is up; `reconnected`: after a lost connection (NOTIFYs meanwhile are lost) */
  onConnected?(reconnected: boolean): void
  minBackoffMs?: number
  maxBackoffMs?: number
}

/**
 * One dedicated Postgres connection that LISTENs on a channel and comes back by itself
 * (jittered exponential backoff) when the connection drops or Postgres restarts. What a
 * caller missed while it was away is theirs to catch up on in `onConnected`. Used by the
 * CRM directory (imports on other nodes) and the config versions (activations elsewhere).
 */
export class PgListener {
  private client: pg.Client | null = null
  private stopped = true
  private backoffTimer: NodeJS.Timeout | null = null
  private attempts = 0

  constructor(private readonly opts: PgListenerOptions) {}

  /** First connect; when it fails, keeps retrying in the background (never throws). */
  async start(): Promise<void> {
    this.stopped = false
    await this.connect().catch((err) => {
      this.opts.log.warn({ err: (err as Error).message }, `${this.opts.name} listener: could not connect; retrying`)
      this.scheduleReconnect()
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.backoffTimer) { clearTimeout(this.backoffTimer); this.backoffTimer = null }
    const c = this.client
    this.client = null
    if (c) await c.end().catch(() => undefined)
  }

  /** True while the LISTEN connection is up (health checks, tests). */
  get listening(): boolean { return this.client !== null }

  private async connect(): Promise<void> {
    if (this.stopped) return
    const c = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: `switchboard-${this.opts.name}-listener`, connectionTimeoutMillis: 5_000 })
    let dead = false
    const onDead = (err?: Error) => {
      if (dead) return
      dead = true
      if (this.client === c) this.client = null
      c.end().catch(() => undefined)
      if (this.stopped) return
      this.opts.log.warn({ err: err?.message }, `${this.opts.name} listener lost its connection; reconnecting`)
      this.scheduleReconnect()
    }
    c.on('error', (err) => onDead(err))
    c.on('end', () => onDead())
    c.on('notification', (msg) => { if (msg.channel === this.opts.channel) this.opts.onNotify(msg.payload) })
    try {
      await c.connect()
      await c.query(`LISTEN ${this.opts.channel}`)
    } catch (err) {
      dead = true
      await c.end().catch(() => undefined)
      throw err
    }
    if (this.stopped) { await c.end().catch(() => undefined); return }
    this.client = c
    const reconnected = this.attempts > 0
    this.attempts = 0
    this.opts.onConnected?.(reconnected)
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.backoffTimer) return
    const min = this.opts.minBackoffMs ?? 250
    const max = this.opts.maxBackoffMs ?? 10_000
    const delay = Math.min(max, min * 2 ** this.attempts) * (0.75 + Math.random() * 0.5)
    this.attempts++
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null
      this.connect().catch((err) => {
        this.opts.log.debug({ err: (err as Error).message, attempt: this.attempts }, `${this.opts.name} listener reconnect failed`)
        this.scheduleReconnect()
      })
    }, delay)
    this.backoffTimer.unref()
  }
}
