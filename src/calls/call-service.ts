import type { OutboundServer } from '../esl/outbound-server.ts'
import type { CallChannel } from '../esl/call-channel.ts'
import { Gauge, Counter, type Registry } from 'prom-client'
import { CallSession } from './call-session.ts'
import type { CallDeps } from './context.ts'
import { writeLostChannelCdr } from './lost-channel.ts'

/**
 * Connects the outbound ESL server to call handling: one CallSession per channel,
 * tracked so that shutdown can let calls in progress finish (bounded) before the
 * sockets are dropped.
 */
export class CallService {
  private readonly active = new Set<Promise<void>>()
  private readonly sessions = new Map<string, CallSession>()
  private readonly gauge: Gauge
  private readonly total: Counter

  constructor(private readonly server: OutboundServer, private readonly deps: CallDeps, registry: Registry) {
    this.gauge = new Gauge({ name: 'switchboard_calls_active', help: 'Calls being handled by this node', registers: [registry] })
    this.total = new Counter({ name: 'switchboard_calls_total', help: 'Calls handled by this node', registers: [registry] })
    server.on('channel', (channel) => this.handle(channel))
    server.on('channelLost', (data, reason) => {
      const write = writeLostChannelCdr(deps, data, reason).finally(() => this.active.delete(write))
      this.active.add(write) // shutdown waits for it like for a call
    })
    server.on('error', (err) => deps.log.error({ err }, 'outbound ESL server error'))
  }

  get activeCalls(): number { return this.active.size }

  private handle(channel: CallChannel): void {
    this.total.inc()
    const session = new CallSession(channel, this.deps)
    this.sessions.set(channel.uuid, session)
    const run = session.run()
      .catch((err) => this.deps.log.error({ err, call_uuid: channel.uuid }, 'call session crashed'))
      .finally(() => { this.active.delete(run); this.sessions.delete(channel.uuid); this.gauge.set(this.active.size) })
    this.active.add(run)
    this.gauge.set(this.active.size)
  }

  /** A call in progress on this node, for the control API (pause/resume recording…). */
  session(uuid: string): CallSession | undefined { return this.sessions.get(uuid) }

  /** Calls in progress on this node, newest last. */
  list(): CallSession[] { return [...this.sessions.values()] }

  /**
   * Stop taking new calls (FreeSWITCH's socket app fails over to the next host or the
   * dialplan's next action), let running calls finish for up to `graceMs`, then drop
   * whatever is left — their CDRs and recordings are still written.
   */
  async stop(graceMs = 10_000): Promise<void> {
    await this.server.stopAccepting()
    const deadline = new Promise((resolve) => setTimeout(resolve, graceMs).unref())
    await Promise.race([Promise.allSettled([...this.active]), deadline])
    await this.server.close()
    await Promise.race([Promise.allSettled([...this.active]), new Promise((r) => setTimeout(r, 6_000).unref())])
  }
}
