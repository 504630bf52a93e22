import type { ChannelData } from '../esl/channel-data.ts'
import { normalizePhone } from '../crm/phone.ts'
import { employeeCallDirection } from './steps/outbound.ts'
import type { CallDeps } from './context.ts'

/** Hangup cause written for a call whose socket failed before Switchboard could handle it. */
export const LOST_BEFORE_HANDLING_CAUSE = 'SWITCHBOARD_SOCKET_LOST'

/**
 * The CDR of a call whose outbound socket failed after FreeSWITCH told us which call it is
 * (the `connect` reply) but before it was handled: the caller hung up in that instant, the
 * socket dropped, a reply timed out or a frame was malformed. FreeSWITCH goes on with the
 * dialplan's next action, so what happened to the caller is not ours to know: outcome
 * 'failed', not counted in statistics, the reason kept in route_reasons. Idempotent (the
 * writes are upserts), and queued by the CdrWriter while Postgres is down.
 */
export async function writeLostChannelCdr(deps: Pick<CallDeps, 'cdr' | 'config' | 'node' | 'log'>, data: ChannelData, reason: string, at = new Date()): Promise<void> {
  const caller = normalizePhone(data.callerIdNumber, deps.config().defaultRegion) ?? (data.callerIdNumber || null)
  const direction = employeeCallDirection(data.variable) ?? 'inbound'
  const destination = data.destination || null
  try {
    await deps.cdr.start({ uuid: data.uuid, direction, caller, callee: destination, did: direction === 'inbound' ? destination : null, sourceTag: null, clientId: null, startedAt: at, node: deps.node })
    await deps.cdr.end({
      uuid: data.uuid, answeredAt: null, endedAt: at, billsec: 0, hangupCause: LOST_BEFORE_HANDLING_CAUSE, outcome: 'failed', counted: false,
      agentId: null, queueId: null, ivrPath: [], routeReasons: [`socket lost before the call was handled: ${reason}`], csat: null,
    })
  } catch (err) {
    deps.log.error({ err, call_uuid: data.uuid }, 'CDR of a lost call could not be written')
  }
}
