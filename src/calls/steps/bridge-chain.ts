import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import { endpointOf, callEventBase } from '../context.ts'
import { startConversationRecording, stopConversationRecording } from './record.ts'
import type { DirectTarget } from '../../routing/types.ts'
import type { EslEvent } from '../../esl/event.ts'
import type { BridgeResult } from '../../esl/call-channel.ts'
import { followTransfers, takenOver } from '../transfer-flow.ts'

export interface BridgeChainResult { answeredBy: string | null; tried: number }

/**
 * Ring targets one after another, each for its own time, skipping anyone who is not
 * ready *now* (seed 003: ringing absent agents lost calls). The first who answers
 * talks to the caller; Switchboard tracks their state (on_call, then wrap_up).
 */
export async function bridgeChain(ctx: CallContext, targets: readonly DirectTarget[], opts: { wrapUpSec: number; preClaimed?: boolean }): Promise<BridgeChainResult> {
  const { channel, deps, state, log } = ctx
  let tried = 0
  for (const target of targets) {
    if (!channel.isUp) break
    const employee = deps.directory().employees.get(target.employeeId)
    const cfg = deps.config()
    const endpoint = employee && endpointOf(employee, { gateways: cfg.gateways, fmc: cfg.fmc })
    if (!employee || !endpoint) { log.warn({ employee_id: target.employeeId }, 'target has no endpoint; skipped'); continue }
    // preClaimed: the ACD dispatcher already took the agent (ready → on_call) for this call.
    if (!opts.preClaimed && (deps.presence.get(employee.id) !== 'ready' || !(await claimSafely(ctx, employee.id)))) {
      log.info({ employee_id: employee.id, state: deps.presence.get(employee.id) }, 'target not ready; skipped')
      continue
    }
    tried++
    const legStarted = new Date()
    // CHANNEL_BRIDGE marks the moment the person answered: talk time starts there.
    let bridgedAt: Date | null = null
    let bridgedFsUs: number | null = null
    const onBridge = (e: EslEvent) => {
      if (e.name !== 'CHANNEL_BRIDGE' || bridgedAt) return
      bridgedAt = new Date()
      bridgedFsUs = Number(e.headers['Event-Date-Timestamp']) || null
      state.currentLegUuid = e.headers['Other-Leg-Unique-ID'] ?? e.headers['Bridge-B-Unique-ID'] ?? null
      // Live views and "an agent controls only their own call" need this while they talk.
      state.agentId = employee.id
      if (!state.connectedAt) { state.connectedAt = bridgedAt; state.connectedFsUs = bridgedFsUs }
      deps.events?.emit('call.answered', { ...callEventBase(state), employeeId: employee.id, queueId: state.queueId })
      void startConversationRecording(ctx, state.currentLegUuid ?? '', employee.id)
    }
    channel.on('event', onBridge)
    deps.events?.emit('call.offered', { ...callEventBase(state), employeeId: employee.id, queueId: state.queueId, ivrPath: state.ivrPath })
    let result: BridgeResult
    try {
      result = await channel.bridge(endpoint, {
        timeoutSec: target.ringSec,
        vars: { switchboard_call_uuid: state.uuid, switchboard_role: target.role },
      })
    } catch (err) {
      // The caller hung up (the bridge command then fails) or the socket dropped.
      if (!bridgedAt) {
        // …while it was still ringing: not the agent's fault, they are free again.
        await releaseClaim(ctx, employee.id, 'ready', 'caller left while ringing')
        throw err
      }
      // …during the conversation: it happened, and ends here like any other.
      result = { answered: true, bLegUuid: state.currentLegUuid ?? randomUUID(), hangupCause: channel.hangupCause ?? 'NORMAL_CLEARING' }
    } finally {
      channel.off('event', onBridge)
      state.currentLegUuid = null
    }
    await stopConversationRecording(ctx)
    const legUuid = result.answered ? result.bLegUuid : randomUUID()
    if (!result.answered) {
      await deps.cdr.leg({ uuid: legUuid, callUuid: state.uuid, party: target.role, endpoint, employeeId: employee.id, startedAt: legStarted, answeredAt: null, endedAt: new Date(), hangupCause: result.cause })
      log.info({ employee_id: employee.id, cause: result.cause }, 'target did not answer')
      // Busy elsewhere → back to ready; rang out unanswered → not_ready, so the next call does not ring an empty desk.
      await releaseClaim(ctx, employee.id, result.cause === 'USER_BUSY' ? 'ready' : 'not_ready', `no answer (${result.cause})`)
      continue
    }
    // The bridge app returns when the conversation is over.
    const answeredAt: Date = bridgedAt ?? legStarted
    state.agentId = employee.id
    if (!state.connectedAt) { state.connectedAt = answeredAt; state.connectedFsUs = bridgedFsUs }
    // A consultation or a conference took the agent's leg out of the bridge: the call goes on with them (transfer-flow.ts).
    if (takenOver(ctx, legUuid)) {
      await followTransfers(ctx, { employeeId: employee.id, legUuid, endpoint, role: target.role, startedAt: legStarted, answeredAt, wrapUpSec: opts.wrapUpSec })
      return { answeredBy: employee.id, tried }
    }
    await deps.cdr.leg({ uuid: legUuid, callUuid: state.uuid, party: target.role, endpoint, employeeId: employee.id, startedAt: legStarted, answeredAt, endedAt: new Date(), hangupCause: result.hangupCause ?? 'NORMAL_CLEARING' })
    await afterCallWork(ctx, employee.id, opts.wrapUpSec)
    return { answeredBy: employee.id, tried }
  }
  return { answeredBy: null, tried }
}

async function claimSafely(ctx: CallContext, employeeId: string): Promise<boolean> {
  try {
    return await ctx.deps.presence.claim(employeeId, ctx.state.uuid)
  } catch (err) {
    ctx.log.warn({ err, employee_id: employeeId }, 'cannot claim agent (Postgres?); skipping them')
    return false
  }
}

async function releaseClaim(ctx: CallContext, employeeId: string, state: 'ready' | 'not_ready', reason: string): Promise<void> {
  await ctx.deps.presence.set(employeeId, state, state === 'ready' ? null : reason).catch((err) => ctx.log.warn({ err }, 'could not release agent'))
}

/**
 * wrap_up for the configured seconds, then ready again (unless someone changed it
 * meanwhile). The end time is stored with the state, so if this node dies during
 * wrap-up any other node's sweep (acd/dispatcher.ts) makes the agent ready.
 */
export async function afterCallWork(ctx: CallContext, employeeId: string, wrapUpSec: number): Promise<void> {
  const presence = ctx.deps.presence
  try {
    if (wrapUpSec <= 0) { await presence.set(employeeId, 'ready'); return }
    await presence.startWrapUp(employeeId, wrapUpSec, `after call ${ctx.state.uuid}`)
    if (ctx.deps.acd) { ctx.deps.acd.scheduleWrapUpEnd(employeeId, wrapUpSec); return }
    const t = setTimeout(() => {
      presence.endDueWrapUps(employeeId).catch((err) => ctx.log.warn({ err }, 'could not end wrap-up'))
    }, wrapUpSec * 1000 + 20)
    t.unref()
  } catch (err) {
    ctx.log.warn({ err, employee_id: employeeId }, 'could not set wrap-up state')
  }
}
