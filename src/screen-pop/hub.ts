import type { EventBus, SwitchboardEvents } from '../events/bus.ts'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'
import type { SseStream } from '../http/sse.ts'
import { SwitchboardError } from '../errors.ts'
import { loadCard, type ScreenPopCard } from './card.ts'

/** What the agent's screen receives when their phone rings. */
export interface OfferPayload {
  employeeId: string
  call: {
    uuid: string; caller: string | null; did: string; direction: string; queueId: string | null
    /** call-tracking source of the DID (seed 001) */
    sourceTag: string | null
    offeredAt: string
  }
  ivrPath: SwitchboardEvents['call.offered']['ivrPath']
  card: ScreenPopCard | null
  /** why `card` is null: 'timeout' (Postgres slower than screenPop.cardTimeoutMs) or 'unavailable' */
  cardError?: 'timeout' | 'unavailable'
}

export class TooManyStreamsError extends SwitchboardError {
  constructor(employeeId: string, max: number) {
    super('too_many_streams', `employee ${employeeId} already has ${max} screen-pop streams open (screenPop.maxStreamsPerEmployee)`, 429)
  }
}

interface CallEntry {
  sourceTag: string | null
  /** employees this call rang: they also get its answered/ended events */
  offeredTo: Set<string>
  card: Promise<{ card: ScreenPopCard | null; error?: 'timeout' | 'unavailable' }> | null
  /** sends for one call go out in call order even while the card is still loading */
  chain: Promise<void>
}

/** Calls tracked at once; beyond this the oldest are forgotten (their ended event never came). */
const MAX_TRACKED_CALLS = 20_000

export interface ScreenPopHubDeps {
  events: EventBus
  pool: Pool
  log: Logger
  config: () => SwitchboardFile
  directory?: () => DirectorySnapshot
}

/**
 * Routes call events to the agents' SSE streams. One bus listener per event for the
 * whole node (not one per connection), a map employee → streams, and per call the card
 * loaded once however many agents the call rings in turn. Bus listeners only start
 * async work and return: they never wait for Postgres and never throw.
 */
export class ScreenPopHub {
  private readonly streams = new Map<string, Set<SseStream>>()
  private readonly calls = new Map<string, CallEntry>()
  private offs: Array<() => void> = []

  constructor(private readonly deps: ScreenPopHubDeps) {}

  start(): void {
    const { events } = this.deps
    this.offs = [
      events.on('call.started', (e) => { this.entry(e.callUuid).sourceTag = e.sourceTag }),
      events.on('call.offered', (e) => this.offered(e)),
      events.on('call.answered', (e) => this.broadcast(e.callUuid, 'answered', { callUuid: e.callUuid, employeeId: e.employeeId, at: e.at })),
      events.on('call.ended', (e) => {
        this.broadcast(e.callUuid, 'ended', { callUuid: e.callUuid, outcome: e.outcome, agentId: e.agentId, at: e.at })
        const entry = this.calls.get(e.callUuid)
        if (entry) void entry.chain.then(() => this.calls.delete(e.callUuid))
      }),
    ]
  }

  stop(): void {
    for (const off of this.offs) off()
    this.offs = []
    for (const set of this.streams.values()) for (const s of set) s.close()
    this.streams.clear()
    this.calls.clear()
  }

  /** Throws TooManyStreamsError when the employee has screenPop.maxStreamsPerEmployee streams open already. */
  assertCanSubscribe(employeeId: string): void {
    const max = this.deps.config().screenPop.maxStreamsPerEmployee
    if ((this.streams.get(employeeId)?.size ?? 0) >= max) throw new TooManyStreamsError(employeeId, max)
  }

  /** Register an open stream for an employee; returns the function that removes it. */
  subscribe(employeeId: string, stream: SseStream): () => void {
    this.assertCanSubscribe(employeeId)
    let set = this.streams.get(employeeId)
    if (!set) { set = new Set(); this.streams.set(employeeId, set) }
    set.add(stream)
    return () => {
      const s = this.streams.get(employeeId)
      if (!s) return
      s.delete(stream)
      if (s.size === 0) this.streams.delete(employeeId)
    }
  }

  /** Open streams (metrics, tests). */
  get streamCount(): number { let n = 0; for (const s of this.streams.values()) n += s.size; return n }

  private entry(callUuid: string): CallEntry {
    let e = this.calls.get(callUuid)
    if (!e) {
      if (this.calls.size >= MAX_TRACKED_CALLS) this.calls.delete(this.calls.keys().next().value as string)
      e = { sourceTag: null, offeredTo: new Set(), card: null, chain: Promise.resolve() }
      this.calls.set(callUuid, e)
    }
    return e
  }

  private offered(e: SwitchboardEvents['call.offered']): void {
    const entry = this.entry(e.callUuid)
    entry.offeredTo.add(e.employeeId)
    if (!this.streams.has(e.employeeId)) return // nobody watching: no card to load
    entry.card ??= this.card(e)
    const card = entry.card
    entry.chain = entry.chain.then(async () => {
      const c = await card
      const payload: OfferPayload = {
        employeeId: e.employeeId,
        call: { uuid: e.callUuid, caller: e.caller, did: e.did, direction: e.direction, queueId: e.queueId, sourceTag: entry.sourceTag, offeredAt: e.at },
        ivrPath: e.ivrPath, card: c.card, ...(c.error ? { cardError: c.error } : {}),
      }
      this.send(e.employeeId, 'offer', payload, `${e.callUuid}:${e.employeeId}`)
    }).catch((err) => this.deps.log.error({ err, call_uuid: e.callUuid }, 'screen pop offer failed'))
  }

  /** The card, or null after screenPop.cardTimeoutMs / on a database error: the pop itself must go out. */
  private async card(e: SwitchboardEvents['call.offered']): Promise<{ card: ScreenPopCard | null; error?: 'timeout' | 'unavailable' }> {
    const cfg = this.deps.config().screenPop
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<{ card: null; error: 'timeout' }>((resolve) => { timer = setTimeout(() => resolve({ card: null, error: 'timeout' }), cfg.cardTimeoutMs) })
    type Loaded = { card: ScreenPopCard | null; error?: 'timeout' | 'unavailable' }
    const load: Promise<Loaded> = loadCard(this.deps.pool, { clientId: e.clientId, phone: e.caller, excludeCallUuid: e.callUuid }, cfg, this.deps.directory)
      .then((card) => ({ card }))
      .catch((err: unknown) => {
        this.deps.log.warn({ err: (err as Error).message, call_uuid: e.callUuid }, 'screen pop card unavailable; offer sent without it')
        return { card: null, error: 'unavailable' as const }
      })
    try {
      const r: Loaded = await Promise.race([load, timeout])
      if (r.error === 'timeout') this.deps.log.warn({ call_uuid: e.callUuid, ms: cfg.cardTimeoutMs }, 'screen pop card too slow; offer sent without it')
      return r
    } finally {
      clearTimeout(timer)
    }
  }

  private broadcast(callUuid: string, event: 'answered' | 'ended', data: unknown): void {
    const entry = this.calls.get(callUuid)
    if (!entry || entry.offeredTo.size === 0) return
    entry.chain = entry.chain.then(() => { for (const id of entry.offeredTo) this.send(id, event, data) })
  }

  private send(employeeId: string, event: string, data: unknown, id?: string): void {
    const set = this.streams.get(employeeId)
    if (!set) return
    for (const s of set) s.send(event, data, id)
  }
}
