import type { CallContext } from './context.ts'
import { callEventBase } from './context.ts'
import type { TransferParty } from './transfer-state.ts'
import type { EslEvent } from '../esl/event.ts'
import { finishParty, hangupLeg } from './transfer-legs.ts'
import { startConversationRecording, stopConversationRecording } from './steps/record.ts'
import { runConsultation } from './steps/consult.ts'
import { runConference } from './steps/conference.ts'

/**
 * The caller's conversation with `first` was taken over by a consultation or a
 * conference (the agent's leg was moved out of the bridge). Carry it out on the caller's
 * socket: the consultation returns whom the caller talks to next (the agent again after
 * a cancel, the colleague after a completion), who may consult again; a conference runs
 * until the caller leaves it. Every party leaves with a leg row and after-call work.
 */
export async function followTransfers(ctx: CallContext, first: TransferParty): Promise<void> {
  let party: TransferParty | null = first
  while (party) {
    const { state } = ctx
    if (state.consult?.agentLegUuid === party.legUuid) {
      const next = await runConsultation(ctx, party)
      if (next && 'conference' in next) {
        await runConference(ctx, party)
        return
      }
      party = next && (await talk(ctx, next.talk))
    } else if (state.conference?.agentLegUuid === party.legUuid) {
      await runConference(ctx, party)
      return
    } else {
      await finishParty(ctx, party, 'NORMAL_CLEARING')
      return
    }
  }
}

/** Did a consultation or conference take over the conversation on this leg? */
export function takenOver(ctx: CallContext, legUuid: string): boolean {
  return ctx.state.consult?.agentLegUuid === legUuid || ctx.state.conference?.agentLegUuid === legUuid
}

/**
 * The caller talks to `party` (a parked leg): `intercept` bridges the caller's channel to
 * it and returns when that conversation ends. Its own stereo file, as every bridge.
 * Returns the party again when a consultation/conference took it over meanwhile.
 */
export async function talk(ctx: CallContext, party: TransferParty): Promise<TransferParty | null> {
  const { channel, deps, state, log } = ctx
  if (!channel.isUp) {
    await hangupLeg(ctx, party.legUuid)
    await finishParty(ctx, party, 'ORIGINATOR_CANCEL')
    return null
  }
  // If the caller hangs up now, FreeSWITCH should hang this leg up too rather than park it.
  await channel.api(`uuid_setvar ${party.legUuid} park_after_bridge false`).catch(() => undefined)
  let bridged = false
  const onBridge = (e: EslEvent) => {
    if (e.name !== 'CHANNEL_BRIDGE' || bridged) return
    bridged = true
    state.currentLegUuid = party.legUuid
    state.agentId = party.employeeId
    if (!state.connectedAt) { state.connectedAt = new Date(); state.connectedFsUs = Number(e.headers['Event-Date-Timestamp']) || null }
    deps.events?.emit('call.answered', { ...callEventBase(state), employeeId: party.employeeId, queueId: state.queueId })
    void startConversationRecording(ctx, party.legUuid, party.employeeId)
  }
  channel.on('event', onBridge)
  let cause = 'NORMAL_CLEARING'
  try {
    const r = await channel.execute('intercept', party.legUuid)
    cause = r.headers['variable_bridge_hangup_cause'] ?? cause
  } catch {
    cause = channel.hangupCause ?? 'NORMAL_CLEARING' // the caller hung up
  } finally {
    channel.off('event', onBridge)
    state.currentLegUuid = null
  }
  await stopConversationRecording(ctx)
  if (bridged && takenOver(ctx, party.legUuid)) return party
  if (!bridged) log.warn({ leg_uuid: party.legUuid, employee_id: party.employeeId }, 'could not connect the caller back to the leg (gone?)')
  await hangupLeg(ctx, party.legUuid)
  await finishParty(ctx, party, cause)
  return null
}

