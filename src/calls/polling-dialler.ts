import type { Logger } from '../log.ts'
import type { Pool } from '../db/pool.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'
import type { PresenceStore } from '../acd/presence.ts'
import type { Clock } from '../routing/types.ts'
import type { OutboundCalls } from './click-to-call.ts'

/** What a dialling worker needs: Postgres for its rows, agents' states, and a way to originate. */
export interface DiallingWorkerDeps {
  pool: Pool
  log: Logger
  config: () => SwitchboardFile
  directory: () => DirectorySnapshot
  presence: PresenceStore
  outbound: OutboundCalls
  /** Whether originating is possible now (inbound ESL configured and connected). */
  canOriginate: () => boolean
  clock: Clock
  /** This node's instance id (the ACD's, presence.node): rows it dials carry it. */
  node: string
}

/**
 * The polling loop shared by the durable dialling workers (callbacks, call plans): one
 * poll at a time on a timer, a wake-up that runs the next poll at once (coalesced with a
 * poll in progress), calls in progress tracked so that stop() lets them finish (bounded).
 * Subclasses implement tick(): claim rows in Postgres and start calls with track().
 */
export abstract class PollingDialler {
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<unknown> | null = null
  private stopped = true
  private wakeSoon = false
  /** stop() was called: no new attempts, also from a tick() called directly. */
  protected closing = false
  private readonly inFlight = new Set<Promise<unknown>>()

  constructor(private readonly loop: { log: Logger; what: string; intervalMs: () => number }) {}

  /** One poll; returns the ids of the rows it started calls for. */
  abstract tick(): Promise<string[]>

  start(): void {
    this.stopped = false
    this.closing = false
    this.schedule(0)
  }

  /** Stop polling; calls in progress run to their end (bounded by `graceMs`). */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopped = true
    this.closing = true
    clearTimeout(this.timer)
    await this.ticking?.catch(() => undefined)
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, graceMs).unref())])
  }

  /** Calls running on this node now. */
  get active(): number { return this.inFlight.size }

  /** Wait for this node's calls in progress (tests). */
  async settle(): Promise<void> { while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]) }

  /** Run a poll soon (e.g. an agent became ready); coalesced with the one in progress. */
  wake(): void {
    if (this.stopped) return
    if (this.ticking) { this.wakeSoon = true; return }
    clearTimeout(this.timer)
    this.schedule(0)
  }

  /** A call started by tick(): stop() waits for it. */
  protected track(run: Promise<unknown>): void {
    this.inFlight.add(run)
    void run.finally(() => this.inFlight.delete(run))
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.ticking = this.tick().catch((err) => this.loop.log.error({ err }, `${this.loop.what} poll failed`))
        .finally(() => {
          this.ticking = null
          const again = this.wakeSoon
          this.wakeSoon = false
          this.schedule(again ? 50 : this.loop.intervalMs())
        })
    }, ms)
    this.timer.unref()
  }
}
