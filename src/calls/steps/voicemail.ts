import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import type { SpoolSidecar } from '../../recordings/spool.ts'
import { createCallbackTask } from './after-hours.ts'

/**
 * Queue overflow to voicemail: prompt, beep, then the caller's message is recorded into
 * the spool like any other recording (sidecar first: call, client, queue), so the
 * pipeline transcodes, stores and links it; a `voicemails` row makes it an inbox item.
 * The message ends with any key, the caller hanging up, or acd.voicemail.maxSec.
 */
export async function leaveVoicemail(ctx: CallContext, queueId: string): Promise<void> {
  const { channel, deps, state, log } = ctx
  const vm = deps.config().acd.voicemail
  state.outcome = 'voicemail'
  if (!channel.isUp) return
  await channel.playback(vm.prompt)
  await channel.playback(vm.beep)
  const recordingId = randomUUID()
  const sidecar: SpoolSidecar = {
    recordingId, callUuid: state.uuid, legUuid: state.uuid, direction: state.direction, caller: state.caller, callee: state.did, did: state.did,
    clientId: state.clientId, agentId: null, queueId, segment: state.segment, stereo: false, startedAt: new Date().toISOString(), stoppedAt: null, pausedSpans: [],
  }
  const wavPath = await deps.spool.open(sidecar)
  state.sidecars.set(recordingId, sidecar)
  try {
    await channel.recordLeg(wavPath, { stereo: false, limitSec: vm.maxSec, minSec: 0 })
  } catch (err) {
    log.error({ err }, 'voicemail recording could not start; callback task instead')
    await createCallbackTask(ctx, 'queue_overflow')
    return
  }
  // Handed to the pipeline with the call's other recordings when the call ends.
  state.recordingIds.push(recordingId)
  await deps.pool.query(
    `INSERT INTO voicemails (call_uuid, recording_id, queue_id, client_id, caller) VALUES ($1, $2, $3, (SELECT id FROM clients WHERE id = $4), $5)`,
    [state.uuid, recordingId, queueId, state.clientId, state.caller]).catch((err) => log.error({ err }, 'voicemail row not written; the recording is still stored'))
  log.info({ recording_id: recordingId, queue_id: queueId }, 'voicemail recording')
  try {
    await channel.playAndGetDigits({ min: 1, max: 1, tries: 1, timeoutMs: vm.maxSec * 1000, file: 'silence_stream://250', regex: '[0-9*#]', terminators: 'none' })
  } finally {
    if (channel.isUp) await channel.stopLegRecording(wavPath).catch((err) => log.warn({ err }, 'voicemail stop failed; hangup closes it'))
  }
  if (vm.thanksPrompt && channel.isUp) await channel.playback(vm.thanksPrompt)
  if (channel.isUp) await channel.hangup('NORMAL_CLEARING')
}
