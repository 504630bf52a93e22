/**
 * Calls Switchboard places itself (issue 13 click-to-call, issue 6 callbacks): the
 * employee's phone is rung first through FreeSWITCH's inbound event socket (`bgapi
 * originate`); once they answer, FreeSWITCH runs `&socket(<our ESL address> async full)`
 * on that leg, so the call arrives at the outbound ESL server like any other and the
 * outbound step (steps/outbound.ts) bridges it to the client through the trunk — recorded,
 * linked to the client card, CDR written and counted like a desk-phone outbound call.
 *
 * This module validates the request (employee, presence, number), keeps the employee
 * marked on_call while it runs, and turns what happens into progress events
 * (`call.progress` on the bus: originating → employee_answered → client_ringing →
 * answered → ended, or failed with a cause) that the SSE stream replays and follows.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from '../log.ts'
import type { EventBus, CallProgressStage, SwitchboardEvents } from '../events/bus.ts'
import type { PresenceStore } from '../acd/presence.ts'
import type { DirectorySnapshot, Employee } from '../crm/directory.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { Pool } from '../db/pool.ts'
import type { PresenceState } from '../routing/types.ts'
import { normalizePhone } from '../crm/phone.ts'
import { chooseCallerId } from '../routing/caller-id.ts'
import { endpointOf } from './context.ts'
import { NotFoundError, SwitchboardError, UnavailableError, ValidationError } from '../errors.ts'
import { originateCommand, parseOriginateReply, socketApp } from '../esl/originate.ts'
import { EslCommandError } from '../esl/errors.ts'

/** Channel variables that tell the outbound step an answered leg is one of ours (set in the originate). */
export const ORIGINATE_VARS = {
  callUuid: 'switchboard_call_uuid',
  direction: 'switchboard_direction',
  origin: 'switchboard_origin',
  employee: 'switchboard_employee_id',
  callee: 'switchboard_callee',
  client: 'switchboard_client_id',
  callback: 'switchboard_callback_id',
  callerId: 'switchboard_outbound_caller_id',
  /** Caller id the outbound step must present (a call plan's own number), not chosen by the callerId rules. */
  forcedCallerId: 'switchboard_forced_caller_id',
  planRow: 'switchboard_call_plan_row',
} as const

export type OriginateOrigin = 'click-to-call' | 'callback' | 'call-plan'

export interface OriginatedCall {
  origin: OriginateOrigin
  employeeId: string
  callee: string
  clientId: string | null
  callbackId: string | null
  /** A call plan's caller id, presented instead of the callerId rules' choice. */
  forcedCallerId: string | null
}

/** The originated-call facts of a channel, or null for a call a phone placed itself. */
export function originatedCall(variable: (name: string) => string | undefined): OriginatedCall | null {
  const origin = variable(ORIGINATE_VARS.origin)
  if (origin !== 'click-to-call' && origin !== 'callback' && origin !== 'call-plan') return null
  const employeeId = variable(ORIGINATE_VARS.employee)
  const callee = variable(ORIGINATE_VARS.callee)
  if (!employeeId || !callee) return null
  return { origin, employeeId, callee, clientId: variable(ORIGINATE_VARS.client) || null, callbackId: variable(ORIGINATE_VARS.callback) || null, forcedCallerId: variable(ORIGINATE_VARS.forcedCallerId) || null }
}

/** What the inbound event socket must offer (InboundClient). */
export interface OriginateClient {
  readonly connected: boolean
  bgapi(command: string, timeoutMs?: number): Promise<string>
  api(command: string, timeoutMs?: number): Promise<string>
}

export interface OutboundCallDeps {
  log: Logger
  pool: Pool
  events: EventBus
  presence: PresenceStore
  directory: () => DirectorySnapshot
  config: () => SwitchboardFile
  /** null: FS_ESL_HOST not set — originating answers 503. */
  inbound: OriginateClient | null
  /** host:port FreeSWITCH dials back (`&socket(…)`); this node's outbound ESL server. */
  socketAddress: () => string
  /** How long the answered employee leg may take to reach our socket before we give up. Default 15 s. */
  socketWaitMs?: number
}

export interface OutboundCallRequest {
  employeeId: string
  /** The client's number as typed (any format); normalised to E.164 here. */
  to: string
  clientId?: string | null
  origin: OriginateOrigin
  callbackId?: string | null
  requestedBy?: string | null
  /** The caller already claimed the employee (ready → on_call), e.g. the callback worker. */
  claimed?: boolean
  /** The call plan row this call works (call plans). */
  planRowId?: string | null
  /** E.164 caller id to present to the client instead of the callerId rules' choice (a call plan's number). */
  callerId?: string | null
}

export interface OutboundCallOutcome {
  callUuid: string
  /** ended: the conversation took place; failed: it did not (cause says why). */
  stage: 'ended' | 'failed'
  connected: boolean
  outcome: string | null
  cause: string | null
  talkSec: number
  /** Did the employee's leg answer? false = the employee never picked up. */
  employeeAnswered: boolean
}

export interface OutboundCallHandle {
  callUuid: string
  employeeId: string
  callee: string
  clientId: string | null
  callerId: string | null
  done: Promise<OutboundCallOutcome>
}

export type CallProgress = SwitchboardEvents['call.progress']

/** What the employee's phone shows while it rings when the number is not a known client. */
const ORIGIN_LABEL: Record<OriginateOrigin, string> = { 'click-to-call': 'Click-to-call', callback: 'Callback', 'call-plan': 'Call plan' }

const TERMINAL: ReadonlySet<CallProgressStage> = new Set(['ended', 'failed'])
/** Progress kept for late SSE subscribers: this long after the end, at most this many calls. */
const HISTORY_TTL_MS = 10 * 60_000
const HISTORY_MAX_CALLS = 10_000

interface History { employeeId: string; events: CallProgress[]; endedAt: number | null }

/**
 * Originate employee-first outbound calls and report their progress. One instance per
 * node; the call lands on this node because the socket address is this node's own.
 */
export class OutboundCalls {
  private readonly history = new Map<string, History>()
  private readonly busy = new Set<string>()

  constructor(private readonly deps: OutboundCallDeps) {}

  /** The progress events of a call this node originated (for SSE replay); undefined when unknown or expired. */
  progress(callUuid: string): { employeeId: string; events: readonly CallProgress[]; finished: boolean } | undefined {
    this.prune()
    const h = this.history.get(callUuid)
    return h && { employeeId: h.employeeId, events: h.events, finished: h.endedAt !== null }
  }

  /** Follow one call's progress (live; combine with progress() for what happened before). */
  onProgress(callUuid: string, listener: (e: CallProgress) => void): () => void {
    return this.deps.events.on('call.progress', (e) => { if (e.callUuid === callUuid) listener(e) })
  }

  /** Refuses at once (problem details) or starts the call and returns its id; the call runs on. */
  async start(req: OutboundCallRequest): Promise<OutboundCallHandle> {
    const { deps } = this
    const cfg = deps.config()
    const directory = deps.directory()
    const inbound = this.usableInbound()
    const employee = directory.employees.get(req.employeeId)
    if (!employee) throw new NotFoundError('employee', req.employeeId)
    const endpoint = endpointOf(employee, { gateways: cfg.gateways, fmc: cfg.fmc })
    if (!endpoint) throw new SwitchboardError('employee_no_phone', `employee ${employee.id} has neither an extension nor a mobile to ring`, 409)
    const callee = normalizePhone(req.to.replace(/[^0-9+*#()\s.-]/g, ' ').trim(), cfg.defaultRegion)
    if (!callee) {
      throw new ValidationError(`number ${JSON.stringify(req.to)} cannot be normalised to E.164 (default region ${cfg.defaultRegion}): give the full number with its area code`, { to: req.to })
    }
    if (req.clientId && !directory.clients.has(req.clientId)) throw new NotFoundError('client', req.clientId)
    const client = (req.clientId ? directory.clients.get(req.clientId) : undefined) ?? directory.clientByPhone(callee)
    const callerId = req.callerId ?? chooseCallerId(callee, callee, cfg, client?.region ? { clientRegion: client.region } : {})?.callerId ?? null
    this.prune()
    const callUuid = randomUUID()
    const vars: Record<string, string> = {
      origination_uuid: callUuid,
      [ORIGINATE_VARS.callUuid]: callUuid,
      [ORIGINATE_VARS.direction]: 'outbound',
      [ORIGINATE_VARS.origin]: req.origin,
      [ORIGINATE_VARS.employee]: employee.id,
      [ORIGINATE_VARS.callee]: callee,
      // What the employee's phone shows while it rings: who they are about to call.
      origination_caller_id_number: callee,
      origination_caller_id_name: (client?.name ?? ORIGIN_LABEL[req.origin]).slice(0, 60),
      originate_timeout: String(cfg.clickToCall.employeeRingSec),
      ignore_early_media: 'true',
    }
    if (client) vars[ORIGINATE_VARS.client] = client.id
    if (req.callbackId) vars[ORIGINATE_VARS.callback] = req.callbackId
    if (callerId) vars[ORIGINATE_VARS.callerId] = callerId
    if (req.callerId) vars[ORIGINATE_VARS.forcedCallerId] = req.callerId
    if (req.planRowId) vars[ORIGINATE_VARS.planRow] = req.planRowId
    const command = originateCommand({ endpoint, vars, app: socketApp(deps.socketAddress()) })
    // Checked and marked before the first await: two clicks at once place one call.
    if (!req.claimed && this.busy.has(employee.id)) throw onCall(employee.id, 'is already placing a call')
    this.busy.add(employee.id)
    let restore: { state: PresenceState; reason: string | null }
    try {
      restore = req.claimed ? { state: 'ready', reason: null } : await this.markOnCall(employee, callUuid)
    } catch (err) {
      this.busy.delete(employee.id)
      throw err
    }

    this.history.set(callUuid, { employeeId: employee.id, events: [], endedAt: null })
    const log = deps.log.child({ call_uuid: callUuid, employee_id: employee.id, origin: req.origin })
    log.info({ callee, endpoint, caller_id: callerId, client_id: client?.id ?? null, requested_by: req.requestedBy ?? null }, 'originating employee-first outbound call')
    const base = { callUuid, employeeId: employee.id, callee, clientId: client?.id ?? null, callbackId: req.callbackId ?? null, origin: req.origin }
    const done = this.run(inbound, command, base, log, cfg.clickToCall.employeeRingSec)
      .finally(async () => {
        this.busy.delete(employee.id)
        const h = this.history.get(callUuid)
        if (h) h.endedAt = Date.now()
        await this.restorePresence(employee.id, restore, log)
      })
    done.catch(() => undefined)
    return { callUuid, employeeId: employee.id, callee, clientId: client?.id ?? null, callerId, done }
  }

  private usableInbound(): OriginateClient {
    const inbound = this.deps.inbound
    if (!inbound) throw new UnavailableError('FreeSWITCH inbound event socket', 'not configured (set FS_ESL_HOST, FS_ESL_PORT, FS_ESL_PASSWORD): Switchboard cannot originate calls')
    if (!inbound.connected) throw new UnavailableError('FreeSWITCH inbound event socket', 'not connected right now; try again shortly')
    return inbound
  }

  /** ready → on_call atomically (the ACD must not offer them a call meanwhile); refuses offline and busy employees. */
  private async markOnCall(employee: Employee, callUuid: string): Promise<{ state: PresenceState; reason: string | null }> {
    const { presence, pool } = this.deps
    const state = presence.get(employee.id) ?? 'offline'
    if (state === 'offline') throw new SwitchboardError('employee_offline', `employee ${employee.id} is offline`, 409, { state })
    if (state === 'on_call') throw onCall(employee.id, 'is on a call')
    if (state === 'ready') {
      if (!(await presence.claim(employee.id, callUuid))) throw onCall(employee.id, 'was just offered another call')
      return { state: 'ready', reason: null }
    }
    const r = await pool.query<{ reason: string | null }>('SELECT reason FROM agent_presence WHERE employee_id = $1', [employee.id])
    await presence.set(employee.id, 'on_call', `call ${callUuid}`)
    // After-call work is over once they place a new call; not_ready keeps its reason.
    return state === 'not_ready' ? { state, reason: r.rows[0]?.reason ?? null } : { state: 'ready', reason: null }
  }

  private async restorePresence(employeeId: string, to: { state: PresenceState; reason: string | null }, log: Logger): Promise<void> {
    // Only if still ours: the employee (or a supervisor) may have changed it meanwhile.
    if (this.deps.presence.get(employeeId) !== 'on_call') return
    await this.deps.presence.set(employeeId, to.state, to.reason).catch((err) => log.warn({ err }, 'could not restore the employee state after the call'))
  }

  private emit(base: Omit<CallProgress, 'stage' | 'at'>, stage: CallProgressStage, extra: Partial<CallProgress> = {}): void {
    const h = this.history.get(base.callUuid)
    if (h?.events.some((e) => TERMINAL.has(e.stage))) return
    const event: CallProgress = { ...base, stage, at: new Date().toISOString(), ...extra }
    h?.events.push(event)
    this.deps.events.emit('call.progress', event)
  }

  /** Originate, then follow the call through the bus until it ends. Resolves, never rejects. */
  private async run(inbound: OriginateClient, command: string, base: Omit<CallProgress, 'stage' | 'at'>, log: Logger, ringSec: number): Promise<OutboundCallOutcome> {
    const { events } = this.deps
    const { callUuid } = base
    const seen = new Set<CallProgressStage>()
    const once = (stage: CallProgressStage, extra?: Partial<CallProgress>) => {
      if (seen.has(stage)) return
      seen.add(stage)
      this.emit(base, stage, extra)
    }
    let settle!: (o: OutboundCallOutcome) => void
    const finished = new Promise<OutboundCallOutcome>((resolve) => { settle = resolve })
    let employeeAnswered = false
    const fail = (cause: string, outcome: string | null = null) => {
      once('failed', { cause, outcome })
      settle({ callUuid, stage: 'failed', connected: false, outcome, cause, talkSec: 0, employeeAnswered })
    }
    // Subscribed before the originate: the socket session may start before the job answer arrives.
    let started = false
    const offs = [
      events.on('call.started', (e) => {
        if (e.callUuid !== callUuid) return
        started = true
        employeeAnswered = true
        once('employee_answered')
        if (e.decision === 'dial') once('client_ringing')
      }),
      events.on('call.answered', (e) => {
        if (e.callUuid === callUuid) once('answered')
      }),
      events.on('call.ended', (e) => {
        if (e.callUuid !== callUuid) return
        const connected = e.connectedAt !== null
        const cause = e.hangupCause
        if (connected) {
          once('ended', { cause, outcome: e.outcome, talkSec: e.talkSec })
          settle({ callUuid, stage: 'ended', connected, outcome: e.outcome, cause, talkSec: e.talkSec, employeeAnswered: true })
        } else fail(e.outcome === 'rejected' ? 'CALL_REJECTED' : (cause ?? 'NORMAL_CLEARING'), e.outcome)
      }),
    ]
    let watchdog: NodeJS.Timeout | undefined
    try {
      once('originating')
      let body: string
      try {
        body = await inbound.bgapi(command, (ringSec + 15) * 1000)
      } catch (err) {
        if (err instanceof EslCommandError) body = String(err.details?.reply ?? '-ERR NORMAL_TEMPORARY_FAILURE')
        else {
          log.warn({ err }, 'originate could not be sent')
          fail(err instanceof SwitchboardError && err.code === 'timeout' ? 'ORIGINATE_TIMEOUT' : 'SWITCHBOARD_UNAVAILABLE')
          return await finished
        }
      }
      const result = parseOriginateReply(body)
      if (!result.ok) {
        log.info({ cause: result.cause, reply: result.reply }, "employee's phone did not answer")
        fail(result.cause, 'employee_no_answer')
        return await finished
      }
      employeeAnswered = true
      once('employee_answered')
      // The answered leg must reach our socket; if it does not (address wrong, node full), do not leave it hanging.
      if (!started) {
        watchdog = setTimeout(() => {
          if (started) return
          log.error({ socket: this.deps.socketAddress() }, 'the answered employee leg never reached our ESL socket; hanging it up')
          inbound.api(`uuid_kill ${callUuid} DESTINATION_OUT_OF_ORDER`).catch(() => undefined)
          fail('SOCKET_NOT_REACHED')
        }, this.deps.socketWaitMs ?? 15_000)
        watchdog.unref()
      }
      return await finished
    } finally {
      clearTimeout(watchdog)
      for (const off of offs) off()
    }
  }

  private prune(): void {
    const now = Date.now()
    for (const [id, h] of this.history) if (h.endedAt !== null && now - h.endedAt > HISTORY_TTL_MS) this.history.delete(id)
    // Bounded even if calls never end (a bug elsewhere): the oldest entries go first.
    for (const id of this.history.keys()) {
      if (this.history.size <= HISTORY_MAX_CALLS) break
      this.history.delete(id)
    }
  }
}

function onCall(employeeId: string, what: string): SwitchboardError {
  return new SwitchboardError('employee_on_call', `employee ${employeeId} ${what}`, 409)
}
