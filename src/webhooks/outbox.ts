import { randomUUID } from 'node:crypto'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { EventBus, SwitchboardEvents } from '../events/bus.ts'
import type { LinksConfig, WebhookEndpointConfig, WebhookEventName, WebhooksConfig } from '../config/switchboard-file.ts'
import { WEBHOOK_EVENTS } from '../config/switchboard-file.ts'
import { consoleLinks } from './links.ts'

/**
 * EventBus → Postgres outbox. The bus listener only starts an insert and returns (the call
 * never waits for it); the insert writes the event, enriched with names and links from
 * Postgres, and one delivery row per enabled endpoint that wants it, in one statement.
 * Delivery happens later, in DeliveryWorker, on whichever node claims it first.
 *
 * If Postgres is unreachable the insert is retried for about 15 s, then the event is
 * logged and lost for webhooks (the call's own CDR has its own retry queue); inserts in
 * flight are bounded so a slow database cannot grow this node's memory without limit.
 */
export interface EventData {
  call?: Record<string, unknown> | null
  agent?: { id: string; name: string | null } | null
  client?: { id: string; name: string | null; consoleUrl: string } | null
  recordings?: Array<{ id: string; consoleUrl: string }>
  recording?: Record<string, unknown>
}

export interface OutboxDeps {
  pool: Pool
  events: EventBus
  log: Logger
  webhooks: () => WebhooksConfig
  links: () => LinksConfig
  /** told after deliveries were written (wakes this node's worker at once) */
  onEnqueued?: () => void
  maxInFlight?: number
  /** waits between insert attempts while Postgres is unreachable */
  retryDelaysMs?: number[]
}

export class WebhookOutbox {
  private readonly inFlight = new Set<Promise<unknown>>()
  private offs: Array<() => void> = []
  private stopped = false
  dropped = 0

  constructor(private readonly deps: OutboxDeps) {}

  start(): void {
    this.stopped = false
    for (const name of WEBHOOK_EVENTS) {
      this.offs.push(this.deps.events.on(name, (payload) => this.accept(name, payload)))
    }
  }

  /** Stop listening and wait (bounded) for inserts already started. */
  async stop(timeoutMs = 5_000): Promise<void> {
    for (const off of this.offs) off()
    this.offs = []
    this.stopped = true
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, timeoutMs).unref())])
  }

  /** Resolves when every insert started so far has finished (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  private accept<K extends WebhookEventName>(name: K, payload: SwitchboardEvents[K]): void {
    if (this.wanted(name, payload).length === 0) return
    if (this.inFlight.size >= (this.deps.maxInFlight ?? 10_000)) {
      this.dropped++
      this.deps.log.error({ event: name, in_flight: this.inFlight.size }, 'webhook outbox saturated (Postgres slow or down?): event not queued')
      return
    }
    const p = this.recordWithRetry(name, payload).finally(() => this.inFlight.delete(p))
    this.inFlight.add(p)
  }

  /**
   * A short Postgres outage (failover, restart) must not lose the event: the insert is
   * retried with backoff (0.5 s … 8 s, about 15 s in all) before it is given up and logged.
   */
  private async recordWithRetry<K extends WebhookEventName>(name: K, payload: SwitchboardEvents[K]): Promise<void> {
    const delays = this.deps.retryDelaysMs ?? [500, 1_000, 2_000, 4_000, 8_000]
    for (let attempt = 0; ; attempt++) {
      try {
        await this.record(name, payload)
        return
      } catch (err) {
        if (attempt >= delays.length || this.stopped) {
          this.deps.log.error({ err, event: name, payload }, 'webhook event could not be written to the outbox')
          return
        }
        if (attempt === 0) this.deps.log.warn({ err, event: name }, 'webhook event not written yet (Postgres?); retrying')
        await new Promise((r) => setTimeout(r, delays[attempt]).unref())
      }
    }
  }

  /** Endpoints this event goes to, under the config in force now. */
  private wanted(name: WebhookEventName, payload: unknown): WebhookEndpointConfig[] {
    const counted = (payload as { counted?: boolean }).counted === true
    return this.deps.webhooks().endpoints.filter((e) => e.enabled && e.events.includes(name) && (!e.countedOnly || name !== 'call.ended' || counted))
  }

  /** Write one event and its deliveries; returns the event id, or null when no endpoint wants it. */
  async record<K extends WebhookEventName>(name: K, payload: SwitchboardEvents[K]): Promise<string | null> {
    const endpoints = this.wanted(name, payload)
    if (endpoints.length === 0) return null
    const data = name.startsWith('recording.')
      ? await this.recordingData(payload as SwitchboardEvents['recording.stored'] & { reason?: string })
      : await this.callData(name, payload as SwitchboardEvents['call.ended'])
    const occurredAt = (payload as { at?: string }).at ?? new Date().toISOString()
    const id = randomUUID()
    await this.deps.pool.query(
      `WITH e AS (INSERT INTO webhook_events (id, type, occurred_at, data) VALUES ($1, $2, $3, $4) RETURNING id)
       INSERT INTO webhook_deliveries (id, event_id, endpoint_id, format)
       SELECT d.id, e.id, d.endpoint_id, d.format FROM e, unnest($5::uuid[], $6::text[], $7::text[]) AS d(id, endpoint_id, format)`,
      [id, name, occurredAt, JSON.stringify(data), endpoints.map(() => randomUUID()), endpoints.map((e) => e.id), endpoints.map((e) => e.format)])
    this.deps.onEnqueued?.()
    return id
  }

  private async callData(name: WebhookEventName, p: SwitchboardEvents['call.ended']): Promise<EventData> {
    const x = p as Partial<SwitchboardEvents['call.ended']> & Partial<SwitchboardEvents['call.started']> & Partial<SwitchboardEvents['call.answered']>
    const agentId = name === 'call.answered' ? (x.employeeId ?? null) : name === 'call.ended' ? (x.agentId ?? null) : null
    const r = (await this.deps.pool.query<{ client_name: string | null; agent_name: string | null; started_at: Date | null; callee: string | null; recs: string[] }>(
      `SELECT (SELECT name FROM clients WHERE id = $1) AS client_name, (SELECT name FROM employees WHERE id = $2) AS agent_name,
              c.started_at, c.callee,
              ARRAY(SELECT id::text FROM recordings WHERE call_uuid = $3::uuid ORDER BY created_at, id) AS recs
         FROM (SELECT 1) one LEFT JOIN calls c ON c.uuid = $3::uuid`, [p.clientId, agentId, p.callUuid])).rows[0]
    const links = this.deps.links()
    const call: Record<string, unknown> = {
      uuid: p.callUuid, direction: p.direction, caller: p.caller, callee: r.callee, did: p.did,
      startedAt: x.startedAt ?? r.started_at?.toISOString() ?? (name === 'call.started' ? p.at : null),
      // the console's card for the calling number, also when the directory does not know it (yet)
      callerCardUrl: p.caller && /^\+[1-9][0-9]{6,14}$/.test(p.caller) ? consoleLinks.clientByPhone(links, p.caller) : null,
    }
    if (name === 'call.started') Object.assign(call, { sourceTag: x.sourceTag ?? null, decision: x.decision ?? null, reasons: x.reasons ?? [] })
    if (name === 'call.answered') Object.assign(call, { answeredAt: p.at, queueId: x.queueId ?? null })
    if (name === 'call.ended') {
      Object.assign(call, {
        endedAt: p.at, answeredAt: p.answeredAt, connectedAt: p.connectedAt, outcome: p.outcome, counted: p.counted,
        billsec: p.billsec, talkSec: p.talkSec, hangupCause: p.hangupCause, csat: p.csat, queueId: p.queueId, ivrPath: p.ivrPath,
      })
    }
    const recordingIds = name === 'call.ended' ? [...new Set([...(p.recordingIds ?? []), ...r.recs])] : []
    return {
      call,
      agent: agentId ? { id: agentId, name: r.agent_name } : null,
      client: p.clientId ? { id: p.clientId, name: r.client_name, consoleUrl: consoleLinks.client(links, p.clientId) } : null,
      ...(name === 'call.ended' ? { recordings: recordingIds.map((id) => ({ id, consoleUrl: consoleLinks.recording(links, id) })) } : {}),
    }
  }

  private async recordingData(p: { recordingId: string; callUuid: string | null; legUuid: string | null; reason?: string }): Promise<EventData> {
    const r = (await this.deps.pool.query<{
      state: string | null; codec: string | null; channels: number | null; duration_ms: number | null; bytes: string | null; sha256: string | null
      stored_at: Date | null; failure_reason: string | null; client_id: string | null; client_name: string | null; agent_id: string | null; agent_name: string | null
      direction: string | null; caller: string | null; callee: string | null; started_at: Date | null
    }>(
      `SELECT r.state, r.codec, r.channels, r.duration_ms, r.bytes::text, r.sha256, r.stored_at, r.failure_reason,
              r.client_id, cl.name AS client_name, r.agent_id, e.name AS agent_name, c.direction, c.caller, c.callee, c.started_at
         FROM (SELECT 1) one LEFT JOIN recordings r ON r.id = $1::uuid
         LEFT JOIN calls c ON c.uuid = coalesce(r.call_uuid, $2::uuid)
         LEFT JOIN clients cl ON cl.id = r.client_id LEFT JOIN employees e ON e.id = r.agent_id`, [p.recordingId, p.callUuid])).rows[0]
    const links = this.deps.links()
    const callUuid = p.callUuid
    return {
      recording: {
        id: p.recordingId, callUuid, legUuid: p.legUuid, state: r.state, codec: r.codec, channels: r.channels, durationMs: r.duration_ms,
        bytes: r.bytes === null ? null : Number(r.bytes), sha256: r.sha256, storedAt: r.stored_at?.toISOString() ?? null,
        consoleUrl: consoleLinks.recording(links, p.recordingId),
        ...(p.reason !== undefined ? { failureReason: p.reason } : {}),
      },
      call: callUuid ? { uuid: callUuid, direction: r.direction, caller: r.caller, callee: r.callee, startedAt: r.started_at?.toISOString() ?? null } : null,
      client: r.client_id ? { id: r.client_id, name: r.client_name, consoleUrl: consoleLinks.client(links, r.client_id) } : null,
      agent: r.agent_id ? { id: r.agent_id, name: r.agent_name } : null,
    }
  }
}
