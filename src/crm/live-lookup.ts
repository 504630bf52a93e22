/**
 * Live lookup for numbers the nightly directory does not know (seed 000: ask the ERP only
 * about unknown numbers, and never let a call wait for it).
 *
 * GET `url?phone=+7…` (or POST `{ phone }`) with a hard timeout (default 300 ms), a bound
 * on concurrent requests (over the bound: answer "unidentified" at once), coalescing of
 * concurrent lookups of the same number, a TTL cache (positive and negative), and a
 * circuit breaker (open after N consecutive failures, one half-open probe after a
 * cool-down). Every failure path resolves to `{ kind: 'unidentified' }`: lookup() never
 * rejects and never takes longer than the timeout.
 *
 * Expected answer: 200 `{ "found": true, "client": { "id", "name", "segment"?, "kind"?,
 * "assignedManagerId"?, "region"?, "inn"? } }`, or `{ "found": false }` / 404.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { Logger } from '../log.ts'
import { silentLogger } from '../log.ts'
import type { Client } from './directory.ts'

export type LiveLookupOutcome =
  | 'found' | 'not_found' | 'timeout' | 'error' | 'invalid' | 'circuit_open' | 'busy' | 'bad_number'

export type LiveLookupResult =
  | { kind: 'client'; client: Client; source: 'live'; outcome: 'found'; cached: boolean }
  | { kind: 'unidentified'; outcome: Exclude<LiveLookupOutcome, 'found'>; cached: boolean }

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface LiveLookupOptions {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  timeoutMs?: number
  concurrency?: number
  cacheTtlMs?: number
  negativeCacheTtlMs?: number
  cacheMax?: number
  failureThreshold?: number
  coolDownMs?: number
  logger?: Logger
  /** Injected clock (ms) for cache TTL and breaker cool-down; defaults to Date.now. */
  now?: () => number
}

export interface LiveLookupStats {
  requests: number
  found: number
  notFound: number
  failures: number
  busy: number
  circuitRejections: number
  cacheHits: number
  inFlight: number
  circuit: CircuitState
}

const AnswerClient = Type.Object({
  id: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
  name: Type.String(),
  segment: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('B'), Type.Literal('C')])),
  kind: Type.Optional(Type.Union([Type.Literal('client'), Type.Literal('supplier'), Type.Literal('partner'), Type.Literal('other')])),
  assignedManagerId: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Integer()])),
  region: Type.Optional(Type.String()),
  inn: Type.Optional(Type.String()),
})
const Answer = Type.Union([
  Type.Object({ found: Type.Literal(true), client: AnswerClient }),
  Type.Object({ found: Type.Literal(false) }),
])
type AnswerT = Static<typeof Answer>

const E164_RE = /^\+[1-9][0-9]{6,14}$/

class Failure extends Error {
  constructor(readonly outcome: 'timeout' | 'error' | 'invalid', message: string) { super(message) }
}

export class LiveLookup {
  private readonly url: string
  private readonly method: 'GET' | 'POST'
  private readonly headers: Record<string, string>
  readonly timeoutMs: number
  private readonly concurrency: number
  private readonly cacheTtlMs: number
  private readonly negativeCacheTtlMs: number
  private readonly cacheMax: number
  private readonly failureThreshold: number
  private readonly coolDownMs: number
  private readonly log: Logger
  private readonly now: () => number

  private cache = new Map<string, { until: number; client: Client | null }>()
  private pending = new Map<string, Promise<LiveLookupResult>>()
  private inFlight = 0
  private consecutiveFailures = 0
  private circuit: CircuitState = 'closed'
  private openedAt = 0
  private probing = false
  private counters = { requests: 0, found: 0, notFound: 0, failures: 0, busy: 0, circuitRejections: 0, cacheHits: 0 }

  constructor(opts: LiveLookupOptions) {
    this.url = opts.url
    this.method = opts.method ?? 'GET'
    this.headers = opts.headers ?? {}
    this.timeoutMs = opts.timeoutMs ?? 300
    this.concurrency = opts.concurrency ?? 8
    this.cacheTtlMs = opts.cacheTtlMs ?? 10 * 60_000
    this.negativeCacheTtlMs = opts.negativeCacheTtlMs ?? 60_000
    this.cacheMax = opts.cacheMax ?? 50_000
    this.failureThreshold = opts.failureThreshold ?? 5
    this.coolDownMs = opts.coolDownMs ?? 30_000
    this.log = (opts.logger ?? silentLogger()).child({ component: 'crm-live-lookup' })
    this.now = opts.now ?? Date.now
  }

  /** Identify an E.164 number. Never rejects; resolves within `timeoutMs` (+ scheduling). */
  lookup(e164: string): Promise<LiveLookupResult> {
    if (!E164_RE.test(e164)) return Promise.resolve({ kind: 'unidentified', outcome: 'bad_number', cached: false })
    const now = this.now()
    const hit = this.cache.get(e164)
    if (hit) {
      if (hit.until > now) {
        this.counters.cacheHits++
        return Promise.resolve(hit.client
          ? { kind: 'client', client: hit.client, source: 'live', outcome: 'found', cached: true }
          : { kind: 'unidentified', outcome: 'not_found', cached: true })
      }
      this.cache.delete(e164)
    }
    const same = this.pending.get(e164)
    if (same) return same

    if (this.circuit === 'open') {
      if (now - this.openedAt < this.coolDownMs) return this.reject('circuit_open')
      this.circuit = 'half-open'
      this.log.info('circuit half-open: probing')
    }
    let probe = false
    if (this.circuit === 'half-open') {
      if (this.probing) return this.reject('circuit_open')
      this.probing = probe = true
    } else if (this.inFlight >= this.concurrency) {
      this.counters.busy++
      return Promise.resolve({ kind: 'unidentified', outcome: 'busy', cached: false })
    }

    const p = this.request(e164, probe).finally(() => { this.pending.delete(e164) })
    this.pending.set(e164, p)
    return p
  }

  private reject(outcome: 'circuit_open'): Promise<LiveLookupResult> {
    this.counters.circuitRejections++
    return Promise.resolve({ kind: 'unidentified', outcome, cached: false })
  }

  private async request(e164: string, probe: boolean): Promise<LiveLookupResult> {
    this.inFlight++
    this.counters.requests++
    const started = this.now()
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(new Failure('timeout', `no answer within ${this.timeoutMs} ms`)), this.timeoutMs)
    try {
      const answer = await this.fetchAnswer(e164, ac.signal)
      this.succeeded()
      if (answer.found) {
        const a = answer.client
        const client: Client = {
          id: String(a.id), name: a.name, segment: a.segment ?? 'C', kind: a.kind ?? 'client',
          ...(a.assignedManagerId !== undefined ? { assignedManagerId: String(a.assignedManagerId) } : {}),
          ...(a.region !== undefined ? { region: a.region } : {}),
          ...(a.inn !== undefined ? { inn: a.inn } : {}),
        }
        this.remember(e164, client, this.cacheTtlMs)
        this.counters.found++
        return { kind: 'client', client, source: 'live', outcome: 'found', cached: false }
      }
      this.remember(e164, null, this.negativeCacheTtlMs)
      this.counters.notFound++
      return { kind: 'unidentified', outcome: 'not_found', cached: false }
    } catch (err) {
      const f = err instanceof Failure ? err
        : ac.signal.aborted && ac.signal.reason instanceof Failure ? ac.signal.reason
          : new Failure('error', (err as Error).message)
      this.failed(f, e164, this.now() - started)
      return { kind: 'unidentified', outcome: f.outcome, cached: false }
    } finally {
      clearTimeout(timer)
      this.inFlight--
      if (probe) this.probing = false
    }
  }

  private async fetchAnswer(e164: string, signal: AbortSignal): Promise<AnswerT> {
    const init: RequestInit = { method: this.method, signal, headers: { accept: 'application/json', ...this.headers } }
    let url = this.url
    if (this.method === 'GET') url += `${url.includes('?') ? '&' : '?'}phone=${encodeURIComponent(e164)}`
    else {
      init.body = JSON.stringify({ phone: e164 })
      init.headers = { ...init.headers as Record<string, string>, 'content-type': 'application/json' }
    }
    const res = await fetch(url, init)
    if (res.status === 404) { await res.body?.cancel(); return { found: false } }
    if (!res.ok) { await res.body?.cancel(); throw new Failure('error', `HTTP ${res.status}`) }
    const text = await res.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { throw new Failure('invalid', `answer is not JSON: ${text.slice(0, 80)}`) }
    if (!Value.Check(Answer, body)) {
      const first = Value.Errors(Answer, body).First()
      throw new Failure('invalid', `unexpected answer shape${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`)
    }
    return body
  }

  private remember(e164: string, client: Client | null, ttl: number): void {
    if (ttl <= 0) return
    if (this.cache.size >= this.cacheMax) {
      const oldest = this.cache.keys().next()
      if (!oldest.done) this.cache.delete(oldest.value)
    }
    this.cache.set(e164, { until: this.now() + ttl, client })
  }

  private succeeded(): void {
    if (this.circuit !== 'closed') this.log.info('circuit closed: lookup answered')
    this.circuit = 'closed'
    this.consecutiveFailures = 0
  }

  private failed(f: Failure, e164: string, ms: number): void {
    this.counters.failures++
    this.consecutiveFailures++
    this.log.warn({ outcome: f.outcome, phone: e164, ms, err: f.message }, 'live lookup failed; caller treated as unidentified')
    if (this.circuit === 'half-open' || this.consecutiveFailures >= this.failureThreshold) {
      if (this.circuit !== 'open') this.log.error({ failures: this.consecutiveFailures, coolDownMs: this.coolDownMs }, 'circuit open')
      this.circuit = 'open'
      this.openedAt = this.now()
    }
  }

  stats(): LiveLookupStats {
    return { ...this.counters, inFlight: this.inFlight, circuit: this.circuit }
  }

  get circuitState(): CircuitState {
    return this.circuit
  }

  clearCache(): void {
    this.cache.clear()
  }
}

export function createLiveLookup(opts: LiveLookupOptions): LiveLookup {
  return new LiveLookup(opts)
}
