import type { CallContext, EmployeeCallDecision } from '../context.ts'
import { endpointOf } from '../context.ts'

/**
 * Internal call, extension to extension (issue 13; seeds 000, 002): rings the colleague's
 * phone (or mobile, if they are mobile-first), recorded per `recording.recordInternal`,
 * stored but never counted in client statistics. A phone that is not in the directory may
 * still call a colleague (lobby, meeting room); the call is then attributed to nobody.
 */
export async function planInternal(ctx: CallContext): Promise<EmployeeCallDecision> {
  const { channel, deps, state, log } = ctx
  const cfg = deps.config()
  const directory = deps.directory()
  const fromExt = callingExtension(channel.channelData)
  const toExt = channel.channelData.destination
  state.caller = fromExt || null
  state.did = toExt
  const caller = fromExt ? directory.employeesByExtension.get(fromExt) : undefined
  const callee = directory.employeesByExtension.get(toExt)
  if (!callee) return refuse(ctx, `extension ${JSON.stringify(toExt)} is not in the employee directory`)
  const endpoint = endpointOf(callee, cfg)
  if (!endpoint) return refuse(ctx, `employee ${callee.id} has no phone`)
  const reasons = [`internal call to ${callee.id} (extension ${toExt})`]
  if (caller) {
    state.agentId = caller.id
    reasons.unshift(`employee ${caller.id} by extension ${fromExt}`)
  } else {
    log.info({ extension: fromExt }, 'internal call from a phone that is not in the employee directory')
  }
  return { kind: 'dial', direction: 'internal', reasons, sourceTag: null, endpoint, callerIdNumber: null, ringSec: cfg.gateways.ringSec, calleeEmployeeId: callee.id }
}

/**
 * The extension a phone call comes from: the directory user the phone authenticated as
 * (`switchboard_extension`, set by the shipped dialplan from `${user_name}`), else the
 * caller id number — which the phone itself fills in.
 */
export function callingExtension(data: { callerIdNumber: string; vars: Readonly<Record<string, string>> }): string {
  return data.vars.switchboard_extension || data.callerIdNumber
}

function refuse(ctx: CallContext, reason: string): EmployeeCallDecision {
  const { callerIdNumber, destination } = ctx.channel.channelData
  ctx.log.warn({ direction: 'internal', cause: 'UNALLOCATED_NUMBER', caller: callerIdNumber, dialled: destination }, `call refused: ${reason}`)
  return { kind: 'refuse', direction: 'internal', cause: 'UNALLOCATED_NUMBER', reason, reasons: [reason], sourceTag: null }
}
