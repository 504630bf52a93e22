/**
 * Optional external decision webhook (seed 001: "an HTTP request on every inbound call
 * sends the call to the back office, where a script decides where to ring next").
 *
 * The only routing module that does I/O. The built-in decision is computed first (pure,
 * microseconds) and sent along as `proposal`; the webhook may answer with its own decision,
 * or `{ "decision": "builtin" }`. Timeout (default 800 ms), HTTP errors, garbage and answers
 * naming unknown queues/menus/employees all fall back to the built-in rules; the result says
 * which path decided and why.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'
import type { Logger } from '../log.ts'
import { silentLogger } from '../log.ts'
import { decideRoute, queuePriority } from './decide.ts'
import type { CallFacts, Clock, DecisionCommon, PresenceView, RouteDecision } from './types.ts'

const Id = Type.String({ minLength: 1, maxLength: 128 })
export const WebhookAnswerSchema = Type.Union([
  Type.Object({ decision: Type.Literal('builtin'), reason: Type.Optional(Type.String()) }),
  Type.Object({ kind: Type.Literal('queue'), queueId: Id, priority: Type.Optional(Type.Integer()), reason: Type.Optional(Type.String()) }),
  Type.Object({
    kind: Type.Literal('direct'),
    targets: Type.Array(Type.Object({
      employeeId: Id,
      ringSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 300 })),
      role: Type.Optional(Type.Union([Type.Literal('manager'), Type.Literal('colleague'), Type.Literal('supervisor'), Type.Literal('secretary'), Type.Literal('last-agent')])),
    }), { minItems: 1, maxItems: 20 }),
    fallbackQueueId: Type.Optional(Id),
    reason: Type.Optional(Type.String()),
  }),
  Type.Object({ kind: Type.Literal('ivr'), menuId: Id, reason: Type.Optional(Type.String()) }),
  Type.Object({ kind: Type.Literal('reject'), reason: Type.Optional(Type.String()) }),
  Type.Object({ kind: Type.Literal('after-hours'), reason: Type.Optional(Type.String()) }),
])
export type WebhookAnswer = Static<typeof WebhookAnswerSchema>

export type WebhookFallback = 'not_configured' | 'timeout' | 'error' | 'invalid' | 'deferred'

export interface WebhookDecision {
  decision: RouteDecision
  decidedBy: 'webhook' | 'builtin'
  fallback?: WebhookFallback
  elapsedMs: number
}

export interface DecisionWebhookOptions {
  logger?: Logger
  headers?: Record<string, string>
}

class Fail extends Error {
  constructor(readonly kind: 'timeout' | 'error' | 'invalid', message: string) { super(message) }
}

/** Ask the configured webhook, falling back to decideRoute. Never rejects. */
export async function decideWithWebhook(
  facts: CallFacts,
  directory: DirectorySnapshot,
  presence: PresenceView,
  clock: Clock,
  config: SwitchboardFile,
  opts: DecisionWebhookOptions = {},
): Promise<WebhookDecision> {
  const started = performance.now()
  const time = facts.time ?? clock.now()
  const builtin = decideRoute({ ...facts, time }, directory, presence, clock, config)
  const hook = config.routing.decisionWebhook
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10
  if (!hook) return { decision: builtin, decidedBy: 'builtin', fallback: 'not_configured', elapsedMs: elapsed() }
  const log = (opts.logger ?? silentLogger()).child({ component: 'decision-webhook' })

  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new Fail('timeout', `no answer within ${hook.timeoutMs} ms`)), hook.timeoutMs)
  let answer: WebhookAnswer
  try {
    const { identity: _identity, ...plainFacts } = facts
    const res = await fetch(hook.url, {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json', ...opts.headers },
      body: JSON.stringify({ facts: { ...plainFacts, time: time.toISOString() }, caller: builtin.caller, proposal: builtin }),
    })
    if (!res.ok) { await res.body?.cancel(); throw new Fail('error', `HTTP ${res.status}`) }
    const text = await res.text()
    let body: unknown
    try { body = JSON.parse(text) } catch { throw new Fail('invalid', `answer is not JSON: ${text.slice(0, 80)}`) }
    if (!Value.Check(WebhookAnswerSchema, body)) throw new Fail('invalid', 'answer does not match the schema')
    answer = body
  } catch (err) {
    const f = err instanceof Fail ? err
      : ac.signal.aborted && ac.signal.reason instanceof Fail ? ac.signal.reason
        : new Fail('error', (err as Error).message)
    log.warn({ outcome: f.kind, err: f.message, url: hook.url }, 'decision webhook failed; built-in rules decide')
    builtin.reasons.push(`decision webhook ${f.kind} (${f.message}) → built-in rules`)
    return { decision: builtin, decidedBy: 'builtin', fallback: f.kind, elapsedMs: elapsed() }
  } finally {
    clearTimeout(timer)
  }

  if ('decision' in answer) {
    builtin.reasons.push(`decision webhook deferred to built-in rules${answer.reason ? `: ${answer.reason}` : ''}`)
    return { decision: builtin, decidedBy: 'builtin', fallback: 'deferred', elapsedMs: elapsed() }
  }
  const problem = checkReferences(answer, directory, config)
  if (problem) {
    log.warn({ problem, url: hook.url }, 'decision webhook answer refers to unknown things; built-in rules decide')
    builtin.reasons.push(`decision webhook answer invalid (${problem}) → built-in rules`)
    return { decision: builtin, decidedBy: 'builtin', fallback: 'invalid', elapsedMs: elapsed() }
  }
  const common: DecisionCommon = {
    reasons: [`decided by webhook in ${elapsed()} ms${answer.reason ? `: ${answer.reason}` : ''}`],
    sourceTag: builtin.sourceTag, noIvr: builtin.noIvr, did: builtin.did, officeId: builtin.officeId, caller: builtin.caller,
  }
  const segment = builtin.caller.kind === 'client' ? builtin.caller.segment : 'unidentified'
  const r = config.routing
  let decision: RouteDecision
  switch (answer.kind) {
    case 'queue':
      decision = { ...common, kind: 'queue', queueId: answer.queueId, priority: answer.priority ?? queuePriority(config, answer.queueId, segment) }
      break
    case 'direct': {
      const fallbackQueueId = answer.fallbackQueueId ?? (builtin.kind === 'direct' || builtin.kind === 'queue' ? (builtin.kind === 'direct' ? builtin.fallbackQueueId : builtin.queueId) : r.kindRoutes.unknown)
      decision = {
        ...common, kind: 'direct', fallbackQueueId, priority: queuePriority(config, fallbackQueueId, segment),
        targets: answer.targets.map((x, i) => ({ employeeId: x.employeeId, ringSec: x.ringSec ?? (i === 0 ? r.managerRingSec : r.colleagueRingSec), role: x.role ?? (i === 0 ? 'manager' : 'colleague') })),
      }
      break
    }
    case 'ivr':
      decision = { ...common, kind: 'ivr', menuId: answer.menuId, priority: queuePriority(config, r.kindRoutes.unknown, segment) }
      break
    case 'reject':
      decision = { ...common, kind: 'reject', cause: 'CALL_REJECTED', reason: answer.reason ?? 'rejected by decision webhook' }
      break
    case 'after-hours':
      decision = { ...common, kind: 'after-hours', prompt: r.afterHours.prompt, createCallback: r.afterHours.createCallback }
      break
  }
  return { decision, decidedBy: 'webhook', elapsedMs: elapsed() }
}

function checkReferences(a: Exclude<WebhookAnswer, { decision: 'builtin' }>, directory: DirectorySnapshot, config: SwitchboardFile): string | null {
  const queue = (id: string) => config.queues.some(q => q.id === id) ? null : `unknown queue ${JSON.stringify(id)}`
  if (a.kind === 'queue') return queue(a.queueId)
  if (a.kind === 'ivr') return config.ivr.some(m => m.id === a.menuId) ? null : `unknown IVR menu ${JSON.stringify(a.menuId)}`
  if (a.kind === 'direct') {
    for (const t of a.targets) if (!directory.employees.has(t.employeeId)) return `unknown employee ${JSON.stringify(t.employeeId)}`
    if (a.fallbackQueueId !== undefined) return queue(a.fallbackQueueId)
  }
  return null
}
