import { randomUUID } from 'node:crypto'
import type { CallContext, EmployeeCallDecision } from '../context.ts'
import { normalizePhone } from '../../crm/phone.ts'
import { chooseCallerId } from '../../routing/caller-id.ts'
import { fmcDestination } from '../../fmc/destination.ts'
import { gatewayDialString } from '../../fmc/endpoint.ts'
import type { Employee } from '../../crm/directory.ts'
import type { EslEvent } from '../../esl/event.ts'
import { startConversationRecording, stopConversationRecording } from './record.ts'
import { callingExtension, planInternal } from './internal.ts'
import { originatedCall, type OriginatedCall } from '../click-to-call.ts'
import { callEventBase } from '../context.ts'

export type EmployeeCallDirection = EmployeeCallDecision['direction']

/**
 * The direction the shipped dialplan set (`switchboard_direction`: public → inbound,
 * fmc → fmc, default → internal/outbound). Anything else is treated as inbound.
 */
export function employeeCallDirection(variable: (name: string) => string | undefined): EmployeeCallDirection | null {
  const d = variable('switchboard_direction')
  return d === 'outbound' || d === 'internal' || d === 'fmc' ? d : null
}

/** Identify, normalise, pick the caller id and link the client card for a call an employee placed. */
export async function planEmployeeCall(ctx: CallContext, direction: EmployeeCallDirection): Promise<EmployeeCallDecision> {
  ctx.state.direction = direction
  if (direction === 'internal') return planInternal(ctx)
  if (direction === 'fmc') return planFmc(ctx)
  return planOutbound(ctx)
}

/**
 * Desk-phone outbound (issue 13): the employee is whoever owns the calling extension;
 * the dialled number becomes E.164 (a legacy city prefix is stripped first, seed 001),
 * the caller id is chosen by the callee's region, and a known client's card is linked.
 */
export async function planOutbound(ctx: CallContext): Promise<EmployeeCallDecision> {
  const { channel, deps, state } = ctx
  const originated = originatedCall(channel.channelData.variable)
  if (originated) return planOriginated(ctx, originated)
  const ext = callingExtension(channel.channelData)
  state.caller = ext || null
  const employee = ext ? deps.directory().employeesByExtension.get(ext) : undefined
  if (!employee) {
    return refuse(ctx, 'outbound', 'CALL_REJECTED', `extension ${JSON.stringify(ext)} is not in the employee directory`)
  }
  state.agentId = employee.id
  return planExternal(ctx, 'outbound', employee, channel.channelData.destination, [`employee ${employee.id} by extension ${ext}`])
}

/**
 * Click-to-call and callbacks (issues 13, 6): Switchboard originated the employee's phone
 * and the leg they answered comes here (click-to-call.ts). The employee and the callee
 * are in the originate's variables, not in the caller id (which showed the client's number
 * on the phone); from here on it is a desk-phone outbound call.
 */
async function planOriginated(ctx: CallContext, o: OriginatedCall): Promise<EmployeeCallDecision> {
  const { deps, state } = ctx
  const employee = deps.directory().employees.get(o.employeeId)
  state.caller = employee?.extension ?? employee?.mobile ?? null
  if (!employee) return refuse(ctx, 'outbound', 'CALL_REJECTED', `${o.origin} for employee ${JSON.stringify(o.employeeId)}, who is not in the employee directory`)
  state.agentId = employee.id
  // The card the employee clicked on, even when this number is not (yet) on it.
  if (o.clientId && deps.directory().clients.has(o.clientId)) state.clientId = o.clientId
  const reasons = [`${o.origin} by employee ${employee.id}${o.callbackId ? ` (callback ${o.callbackId})` : ''}`]
  return planExternal(ctx, 'outbound', employee, o.callee, reasons, o.forcedCallerId)
}

/**
 * FMC mobile-originated (issue 7): the caller must be a manager's mobile (no open relay);
 * the destination comes from where the operator puts it; then the same as a desk-phone
 * outbound call, attributed to the manager.
 */
export async function planFmc(ctx: CallContext): Promise<EmployeeCallDecision> {
  const { channel, deps, state } = ctx
  const cfg = deps.config()
  const data = channel.channelData
  const mobile = normalizePhone(data.callerIdNumber, cfg.defaultRegion)
  state.caller = mobile
  const employee = mobile ? deps.directory().employeesByMobile.get(mobile) : undefined
  if (!employee) {
    return refuse(ctx, 'fmc', cfg.fmc.rejectCause, `FMC call from ${JSON.stringify(data.callerIdNumber)}: not an employee's mobile`)
  }
  state.agentId = employee.id
  const dest = fmcDestination({ destination: data.destination, vars: data.vars }, cfg.fmc)
  if (dest.raw === null) {
    return refuse(ctx, 'fmc', 'INVALID_NUMBER_FORMAT', `FMC call from ${mobile}: no destination in the ${dest.from}`)
  }
  return planExternal(ctx, 'fmc', employee, dest.raw, [`manager ${employee.id} by mobile ${mobile}`, `destination from the ${dest.from}`])
}

async function planExternal(ctx: CallContext, direction: 'outbound' | 'fmc', employee: Employee, dialled: string, reasons: string[], forcedCallerId: string | null = null): Promise<EmployeeCallDecision> {
  const { deps, state, log } = ctx
  const cfg = deps.config()
  const digits = dialled.replace(/[^0-9+*#]/g, '')
  // A legacy prefix ("03" + number, seed 001) is not part of the number: strip it before normalising.
  const stripped = chooseCallerId(null, digits, cfg)?.dial ?? digits
  const callee = normalizePhone(stripped, cfg.defaultRegion)
  if (!callee) {
    return refuse(ctx, direction, 'INVALID_NUMBER_FORMAT', `dialled number ${JSON.stringify(dialled)} cannot be normalised (region ${cfg.defaultRegion})`, reasons)
  }
  state.did = callee
  const client = await linkClient(ctx, callee)
  if (client) reasons.push(`callee is client ${client.id}`)
  // A call plan presents its own number (validated E.164 at upload); everything else follows the callerId rules.
  const choice = forcedCallerId ? { callerId: forcedCallerId, reason: `${forcedCallerId} given by the call plan` } : chooseCallerId(callee, digits, cfg, client?.region ? { clientRegion: client.region } : {})
  if (choice) reasons.push(`caller id ${choice.reason}`)
  else log.warn('no callerId section in the config: the trunk presents its default number')
  const endpoint = gatewayDialString(cfg.gateways.outbound, callee, cfg.gateways.numberFormat)
  log.info({ employee_id: employee.id, direction, dialled, callee, caller_id: choice?.callerId ?? null, client_id: state.clientId }, 'employee call planned')
  return {
    kind: 'dial', direction, reasons, sourceTag: null, endpoint,
    callerIdNumber: choice?.callerId ?? null, ringSec: cfg.gateways.ringSec, calleeEmployeeId: null,
  }
}

/** Client card of the callee: the directory first, then the live lookup (bounded) like inbound calls. */
async function linkClient(ctx: CallContext, e164: string) {
  const { deps, state, log } = ctx
  let identity = deps.directory().identify(e164)
  if (identity.kind === 'unidentified' && deps.lookupUnknown) {
    try {
      identity = await deps.lookupUnknown(e164)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'live lookup of the callee failed; call not linked')
    }
  }
  if (identity.kind !== 'client') {
    // Not this number's owner, but a card given by the caller (click-to-call from a card).
    const preset = state.clientId ? deps.directory().clients.get(state.clientId) : undefined
    if (preset) state.segment = preset.segment
    return preset ?? null
  }
  state.clientId = identity.client.id
  state.segment = identity.client.segment
  return identity.client
}

export function refuse(ctx: CallContext, direction: EmployeeCallDirection, cause: string, reason: string, reasons: string[] = []): EmployeeCallDecision {
  ctx.log.warn({ direction, cause, caller: ctx.channel.channelData.callerIdNumber, dialled: ctx.channel.channelData.destination }, `call refused: ${reason}`)
  return { kind: 'refuse', direction, cause, reason, reasons: [...reasons, reason], sourceTag: null }
}

/**
 * Run an employee call: refuse it, or bridge the one endpoint. The caller's leg is not
 * answered by us (the phone hears the far end ringing); the conversation is recorded
 * in stereo from the moment the callee answers (caller left, callee right), and talk
 * time starts there too.
 */
export async function runEmployeeCall(ctx: CallContext, d: EmployeeCallDecision): Promise<void> {
  const { channel, deps, state, log } = ctx
  if (d.kind === 'refuse') {
    state.outcome = 'rejected'
    await channel.hangup(d.cause)
    return
  }
  const legStarted = new Date()
  let bridgedAt: Date | null = null
  let recording: Promise<unknown> | null = null
  const onBridge = (e: EslEvent) => {
    if (e.name !== 'CHANNEL_BRIDGE' || bridgedAt) return
    bridgedAt = new Date()
    state.connectedAt = bridgedAt
    state.connectedFsUs = Number(e.headers['Event-Date-Timestamp']) || null
    const agent = state.agentId ?? d.calleeEmployeeId
    if (agent) recording = startConversationRecording(ctx, e.headers['Other-Leg-Unique-ID'] ?? e.headers['Bridge-B-Unique-ID'] ?? '', agent)
    if (agent) deps.events?.emit('call.answered', { ...callEventBase(state), employeeId: agent, queueId: null })
  }
  channel.on('event', onBridge)
  let result: Awaited<ReturnType<typeof channel.bridge>> | null = null
  try {
    result = await channel.bridge(d.endpoint, {
      timeoutSec: d.ringSec,
      ...(d.callerIdNumber ? { callerIdNumber: d.callerIdNumber } : {}),
      vars: { switchboard_call_uuid: state.uuid, switchboard_direction: d.direction },
    })
  } catch (err) {
    if (channel.isUp) throw err
  } finally {
    channel.off('event', onBridge)
  }
  if (recording) await recording
  await stopConversationRecording(ctx)
  const answered = result?.answered === true
  const cause = result === null ? 'ORIGINATOR_CANCEL' : result.answered ? (result.hangupCause ?? 'NORMAL_CLEARING') : result.cause
  const legUuid = result?.answered && result.bLegUuid ? result.bLegUuid : randomUUID()
  await deps.cdr.leg({
    uuid: legUuid, callUuid: state.uuid, party: d.direction === 'internal' ? 'colleague' : 'callee', endpoint: d.endpoint,
    employeeId: d.calleeEmployeeId, startedAt: legStarted, answeredAt: answered ? (bridgedAt ?? legStarted) : null, endedAt: new Date(), hangupCause: cause,
  })
  if (answered) {
    state.connectedAt ??= legStarted
    state.outcome = 'answered'
  } else {
    state.outcome = !channel.isUp || cause === 'ORIGINATOR_CANCEL' ? 'cancelled' : cause === 'USER_BUSY' ? 'busy' : cause === 'NO_ANSWER' || cause === 'NO_USER_RESPONSE' ? 'no_answer' : 'failed'
    log.info({ endpoint: d.endpoint, cause }, 'callee did not answer')
  }
  if (channel.isUp) await channel.hangup(answered ? 'NORMAL_CLEARING' : cause)
}
