import type { CallChannel, HangupCompleteInfo } from '../esl/call-channel.ts'
import { normalizePhone } from '../crm/phone.ts'
import { decideWithWebhook } from '../routing/decision-webhook.ts'
import { didSourceTag } from '../routing/decide.ts'
import type { CallFacts, RouteDecision } from '../routing/types.ts'
import type { CallContext, CallDeps, CallState, EmployeeCallDecision } from './context.ts'
import { callEventBase } from './context.ts'
import { startCallRecording, finishRecordings, pauseRecordings, resumeRecordings } from './steps/record.ts'
import { bridgeChain } from './steps/bridge-chain.ts'
import { runQueue } from './steps/queue.ts'
import { runIvr } from './steps/ivr.ts'
import { afterHours } from './steps/after-hours.ts'
import { askCsat } from './steps/csat.ts'
import { NotFoundError, SwitchboardError } from '../errors.ts'
import { employeeCallDirection, planEmployeeCall, runEmployeeCall } from './steps/outbound.ts'
import { requestConsult, decideConsult } from './steps/consult.ts'
import { requestConference } from './steps/conference.ts'
import { HoldClock } from './hold-time.ts'

/** How long routing waits for the caller's history (repeat caller, blacklist) before deciding without it. */
const CALLER_HISTORY_WAIT_MS = 200

/** How long we wait after hangup for CHANNEL_HANGUP_COMPLETE (billsec, record_*) before closing anyway. */
const HANGUP_COMPLETE_WAIT_MS = 5_000

/**
 * One call's lifecycle, the shape jambonz's feature-server uses: identify the call,
 * decide the route, run the steps, and — whatever way it ends (caller hangs up
 * mid-prompt, socket drops, Switchboard stops) — write the CDR, hand the recordings to
 * the pipeline and release the agent. `run()` never throws.
 */
export class CallSession {
  readonly ctx: CallContext
  /** The caller's hold time, for the CDR (statistics). */
  private readonly hold: HoldClock

  constructor(channel: CallChannel, deps: CallDeps) {
    const cfg = deps.config()
    const data = channel.channelData
    const caller = normalizePhone(data.callerIdNumber, cfg.defaultRegion)
    const state: CallState = {
      uuid: channel.uuid, caller, did: data.destination, direction: 'inbound',
      clientId: null, segment: null, decision: null, answeredAt: null, connectedAt: null,
      agentId: null, queueId: null, ivrPath: [], outcome: null, csat: null, recordingIds: [], sidecars: new Map(), recordingStarts: new Set(), connectedFsUs: null, activeConversationRecording: null, pausedAtMs: null, currentLegUuid: null, pendingTransfer: null, consult: null, conference: null, transferReasons: [],
    }
    this.ctx = { channel, deps, state, log: deps.log.child({ call_uuid: channel.uuid }) }
    this.hold = new HoldClock(channel)
  }

  async run(): Promise<void> {
    const { channel, state, log } = this.ctx
    const startedAt = new Date()
    channel.once('answer', () => { state.answeredAt ??= new Date() })
    try {
      // Writes the CDR's call row and caller leg (before the call is handled, as crash recovery needs).
      const decision = await this.decide(startedAt)
      state.decision = decision
      log.info({ decision: decision.kind, reasons: decision.reasons, caller: state.caller, did: state.did }, 'call routed')
      this.ctx.deps.events?.emit('call.started', { ...callEventBase(state), decision: decision.kind, reasons: decision.reasons, sourceTag: decision.sourceTag })
      await this.execute(decision)
    } catch (err) {
      // Expected when the caller hangs up mid-step (commands then reject); anything else is a bug or an outage.
      if (channel.isUp) {
        log.error({ err }, 'call flow failed; hanging up')
        state.outcome ??= 'failed'
        await channel.hangup('NORMAL_TEMPORARY_FAILURE').catch(() => undefined)
      } else {
        log.info({ err: (err as Error).message }, 'call ended during a step')
      }
    } finally {
      await this.cleanup(startedAt)
    }
  }

  /** Attended transfer (steps/consult.ts): the caller on hold, the agent talks to a colleague first. */
  requestConsult(employeeId: string, requestedBy: string | null): Promise<void> { return requestConsult(this.ctx, employeeId, requestedBy) }
  /** Hand the caller to the consulted colleague, or take them back off hold to the agent. */
  decideConsult(decision: 'complete' | 'cancel'): void { decideConsult(this.ctx, decision) }
  /** Three-way conference (steps/conference.ts): caller, agent and a colleague in one room. */
  requestConference(employeeId: string, requestedBy: string | null): Promise<void> { return requestConference(this.ctx, employeeId, requestedBy) }

  /** Card data: silence every recording of this call until resume(). false when nothing changed. */
  pauseRecording(): Promise<boolean> { return pauseRecordings(this.ctx) }
  resumeRecording(): Promise<boolean> { return resumeRecordings(this.ctx) }

  /** What the control API and the supervisor view show of a running call. */
  summary() {
    const s = this.ctx.state
    return {
      uuid: s.uuid, direction: s.direction, caller: s.caller, did: s.did, clientId: s.clientId, agentId: s.agentId,
      queueId: s.queueId, answeredAt: s.answeredAt?.toISOString() ?? null, connectedAt: s.connectedAt?.toISOString() ?? null,
      recordingPaused: s.pausedAtMs !== null, recordings: s.recordingIds.length, ivrPath: s.ivrPath,
      consult: s.consult && { colleagueId: s.consult.colleagueId, phase: s.consult.phase },
      conference: s.conference && { room: s.conference.room, colleagueId: s.conference.colleagueId, phase: s.conference.phase },
    }
  }

  private async decide(startedAt: Date): Promise<RouteDecision | EmployeeCallDecision> {
    // Calls employees place (desk-phone outbound, internal, FMC) are not routed: see steps/outbound.ts.
    const direction = employeeCallDirection(this.ctx.channel.channelData.variable)
    if (direction) {
      const plan = await planEmployeeCall(this.ctx, direction)
      await this.startCdr(startedAt, plan.sourceTag, null).written
      return plan
    }
    const { deps, state } = this.ctx
    const cfg = deps.config()
    const directory = deps.directory()
    let identity = directory.identify(state.caller)
    if (identity.kind === 'unidentified' && state.caller && deps.lookupUnknown) {
      identity = await deps.lookupUnknown(state.caller)
    }
    if (identity.kind === 'client') {
      state.clientId = identity.client.id
      state.segment = identity.client.segment
    }
    if (identity.kind === 'employee' && directory.employeesByExtension.has(state.did)) state.direction = 'internal'
    // Everything the CDR's call row holds is known now (the source tag is the DID's): one
    // statement writes it with the caller's leg and reads the caller's history for routing.
    const start = this.startCdr(startedAt, didSourceTag(cfg, state.did), state.caller)
    const facts: CallFacts = { caller: state.caller, did: state.did, identity, ...(await start.history) }
    // The back office may decide (seed 001); without a webhook, or when it is slow, wrong or down, the built-in rules do.
    const { decision, decidedBy, fallback, elapsedMs } = await decideWithWebhook(facts, directory, (id) => deps.presence.get(id), deps.clock, cfg, { logger: this.ctx.log })
    if (cfg.routing.decisionWebhook) this.ctx.log.info({ decided_by: decidedBy, fallback, elapsed_ms: elapsedMs }, 'route decided')
    await start.written
    return decision
  }

  /**
   * The CDR's start: the calls row and the caller's leg (CdrWriter queues them while
   * Postgres is down). With `historyOf`, the repeat-caller and blacklist facts read by the
   * same statement, bounded so a slow database never delays the routing decision; the
   * call is handled only once the write is done (or queued), as before.
   */
  private startCdr(startedAt: Date, sourceTag: string | null, historyOf: string | null): { written: Promise<unknown>; history: Promise<Pick<CallFacts, 'callsTodayByCaller' | 'lastAgentToday'>> } {
    const { channel, deps, state } = this.ctx
    const written = deps.cdr.startWithLeg({
      uuid: state.uuid, direction: state.direction, caller: state.caller ?? (channel.channelData.callerIdNumber || null),
      // For outbound and FMC calls the dialled number is the callee, not a DID of ours.
      callee: state.did, did: state.direction === 'inbound' ? state.did : null, sourceTag, clientId: state.clientId, startedAt, node: deps.node,
    }, { uuid: state.uuid, callUuid: state.uuid, party: 'caller', endpoint: channel.channelData.channelName || null, employeeId: null, startedAt, answeredAt: null, endedAt: null, hangupCause: null },
    historyOf ?? undefined)
    if (historyOf === null) return { written, history: Promise.resolve({}) }
    let timer: NodeJS.Timeout | undefined
    const history = Promise.race([
      written,
      new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), CALLER_HISTORY_WAIT_MS) }),
    ]).then((h) => {
      clearTimeout(timer)
      if (!h) return {}
      return { callsTodayByCaller: h.callsToday, lastAgentToday: h.lastAgent }
    })
    return { written, history }
  }

  private async execute(decision: RouteDecision | EmployeeCallDecision): Promise<void> {
    if ('direction' in decision) return runEmployeeCall(this.ctx, decision)
    const { channel, deps, state } = this.ctx
    if (decision.kind === 'reject') {
      state.outcome = 'rejected'
      await channel.hangup(decision.cause)
      return
    }
    await channel.answer()
    state.answeredAt ??= new Date()
    await startCallRecording(this.ctx)
    switch (decision.kind) {
      case 'after-hours':
        return afterHours(this.ctx, decision.prompt, decision.createCallback)
      case 'direct': {
        const { answeredBy } = await bridgeChain(this.ctx, decision.targets, { wrapUpSec: this.wrapUpSec(decision.fallbackQueueId) })
        if (answeredBy) { state.outcome = 'answered'; return this.endAfterConversation() }
        await runQueue(this.ctx, decision.fallbackQueueId)
        return this.endAfterConversation()
      }
      case 'queue':
        await runQueue(this.ctx, decision.queueId)
        return this.endAfterConversation()
      case 'ivr': {
        const exit = await runIvr(this.ctx, decision.menuId)
        if (exit.action === 'queue' && exit.target) {
          await runQueue(this.ctx, exit.target)
          return this.endAfterConversation()
        }
        if (exit.action === 'extension' && exit.target) {
          const employee = deps.directory().employeesByExtension.get(exit.target)
          if (employee) {
            const { answeredBy } = await bridgeChain(this.ctx, [{ employeeId: employee.id, ringSec: deps.config().routing.colleagueRingSec, role: 'colleague' }], { wrapUpSec: 0 })
            state.outcome = answeredBy ? 'answered' : 'missed'
          }
          return this.endAfterConversation()
        }
        state.outcome ??= 'ivr_hangup'
        return this.endAfterConversation()
      }
    }
  }

  private wrapUpSec(queueId: string): number {
    return this.ctx.deps.config().queues.find((q) => q.id === queueId)?.wrapUpSec ?? 0
  }

  /**
   * A conversation ended with the caller still on the line: hand them to whoever they
   * were transferred to (each transfer a new leg with its own recording), else the
   * survey, then goodbye.
   */
  private async endAfterConversation(): Promise<void> {
    const { channel, state, deps, log } = this.ctx
    while (state.pendingTransfer && channel.isUp) {
      const { employeeId, requestedBy } = state.pendingTransfer
      state.pendingTransfer = null
      log.info({ to: employeeId, requested_by: requestedBy }, 'blind transfer')
      const { answeredBy } = await bridgeChain(this.ctx, [{ employeeId, ringSec: deps.config().routing.colleagueRingSec, role: 'transfer' }], { wrapUpSec: 0 })
      if (!answeredBy) log.info({ to: employeeId }, 'transfer target did not answer')
    }
    if (state.connectedAt) await askCsat(this.ctx)
    if (channel.isUp) await channel.hangup('NORMAL_CLEARING')
  }

  /**
   * Blind transfer of the caller to a colleague (seed 004): the current conversation is
   * ended (the agent's leg is killed; the caller stays, hangup_after_bridge=false) and
   * the caller is bridged to the colleague. Refused when no conversation is running or
   * the colleague cannot take calls now.
   */
  async requestTransfer(employeeId: string, requestedBy: string | null): Promise<void> {
    const { channel, deps, state } = this.ctx
    const legUuid = state.currentLegUuid
    if (!legUuid || !channel.isUp) throw new SwitchboardError('no_conversation', 'the call has no conversation to transfer', 409)
    const target = deps.directory().employees.get(employeeId)
    if (!target) throw new NotFoundError('employee', employeeId)
    if (target.id === state.agentId) throw new SwitchboardError('transfer_to_self', 'the caller is already talking to this employee', 409)
    if (deps.presence.get(target.id) !== 'ready') throw new SwitchboardError('target_not_ready', `employee ${target.id} is ${deps.presence.get(target.id) ?? 'offline'}`, 409)
    state.pendingTransfer = { employeeId: target.id, requestedBy }
    await channel.api(`uuid_kill ${legUuid} NORMAL_CLEARING`)
  }

  /** Always runs: CDR, recordings, agent state. Each part guarded so one failure cannot skip the others. */
  private async cleanup(startedAt: Date): Promise<void> {
    const { channel, deps, state, log } = this.ctx
    if (channel.isUp) await channel.hangup('NORMAL_CLEARING').catch(() => undefined)
    await waitForHangupComplete(channel)
    const endedAt = new Date()
    const info = channel.hangupInfo
    const billsec = info?.billsec ?? (state.connectedAt ? Math.round((endedAt.getTime() - state.connectedAt.getTime()) / 1000) : 0)
    // The few variables read here, without building all ~150 of the hangup event.
    const endVars = info && variablesOf(info, ['end_uepoch', 'hold_accum_usec', 'hold_accum_seconds'])
    const talkSec = talkSeconds(state, endVars, endedAt)
    const holdSec = this.hold.seconds(endVars, endedAt)
    const counted = isCounted(state, talkSec, deps.config().stats)
    if (!state.outcome) state.outcome = state.connectedAt ? 'answered' : state.answeredAt ? 'abandoned' : 'missed'
    await finishRecordings(this.ctx)
    // The caller's leg ends with the call: one statement writes both.
    const callerLeg = { uuid: state.uuid, callUuid: state.uuid, party: 'caller', endpoint: channel.channelData.channelName || null, employeeId: null, startedAt, answeredAt: state.answeredAt, endedAt, hangupCause: channel.hangupCause ?? info?.cause ?? null, holdSec }
    await deps.cdr.end({
      uuid: state.uuid, answeredAt: state.answeredAt, endedAt, billsec, hangupCause: channel.hangupCause ?? info?.cause ?? null,
      outcome: state.outcome, counted, agentId: state.agentId, queueId: state.queueId, ivrPath: state.ivrPath,
      routeReasons: [...(state.decision?.reasons ?? []), ...state.transferReasons], csat: state.csat, talkSec, holdSec,
    }, [callerLeg]).catch((err) => log.error({ err }, 'CDR write failed'))
    log.info({ outcome: state.outcome, billsec, counted, agent_id: state.agentId, recordings: state.recordingIds.length }, 'call ended')
    deps.events?.emit('call.ended', {
      ...callEventBase(state), outcome: state.outcome, counted, agentId: state.agentId, queueId: state.queueId, billsec, talkSec,
      answeredAt: state.answeredAt?.toISOString() ?? null, connectedAt: state.connectedAt?.toISOString() ?? null,
      hangupCause: channel.hangupCause ?? info?.cause ?? null, csat: state.csat, ivrPath: state.ivrPath,
      startedAt: startedAt.toISOString(), recordingIds: [...state.recordingIds],
    })
    channel.close()
  }
}

/**
 * What statistics count (seeds 000, 002): conversations of at least minCountedTalkSec;
 * inbound calls nobody answered (missed, abandoned: the centre's failures must show);
 * never internal calls (unless configured), rejected calls, or unanswered outbound
 * attempts (a dial attempt is not a conversation).
 */
function isCounted(state: CallState, talkSec: number, stats: { minCountedTalkSec: number; countInternal: boolean }): boolean {
  if (state.direction === 'internal' && !stats.countInternal) return false
  if (state.connectedAt) return talkSec >= stats.minCountedTalkSec
  return state.direction === 'inbound' && state.outcome !== 'rejected'
}

/**
 * Talk time starts when a person answered (CHANNEL_BRIDGE), not at the A-leg answer that
 * FreeSWITCH's billsec counts from (IVR included). Measured on FreeSWITCH's clock when
 * it told us both ends; our own clock otherwise.
 */
function variablesOf(info: HangupCompleteInfo, names: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const n of names) {
    const v = info.variable(n)
    if (v !== undefined) out[n] = v
  }
  return out
}

function talkSeconds(state: CallState, vars: Record<string, string> | undefined, endedAt: Date): number {
  if (!state.connectedAt) return 0
  const endUs = Number(vars?.end_uepoch)
  if (state.connectedFsUs && endUs > state.connectedFsUs) return Math.round((endUs - state.connectedFsUs) / 1e6)
  return Math.round((endedAt.getTime() - state.connectedAt.getTime()) / 1000)
}

async function waitForHangupComplete(channel: CallChannel): Promise<void> {
  if (channel.hangupInfo || channel.state === 'ended') return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    new Promise<void>((resolve) => channel.once('hangupComplete', () => resolve())),
    channel.ended.then(() => undefined),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, HANGUP_COMPLETE_WAIT_MS).unref() }),
  ])
  clearTimeout(timer) // not left pending for 5 s after every call
}
