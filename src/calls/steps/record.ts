import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'

/**
 * Start recording the caller's leg from answer (IVR included): stereo, caller on the
 * left, everything the caller hears (prompts, agent) on the right. The sidecar goes to
 * the spool first so the file can never become an orphan nobody can attribute.
 */
export async function startCallRecording(ctx: CallContext): Promise<void> {
  const { channel, deps, state } = ctx
  const cfg = deps.config().recording
  if (state.direction === 'internal' && !cfg.recordInternal) return
  if (state.direction === 'internal' && !deps.recordings.mayStartOptionalRecording()) {
    ctx.log.warn('spool disk critical: optional internal-call recording not started')
    return
  }
  const recordingId = randomUUID()
  const wavPath = await deps.spool.open({
    recordingId, callUuid: state.uuid, legUuid: state.uuid, direction: state.direction,
    caller: state.caller, callee: state.did, did: state.did, clientId: state.clientId, agentId: state.agentId,
    queueId: state.queueId, segment: state.segment, stereo: cfg.stereo, startedAt: new Date().toISOString(), stoppedAt: null, pausedSpans: [],
  })
  await channel.set('RECORD_MIN_SEC', '0')
  await channel.startRecording(wavPath, { stereo: cfg.stereo, vars: { switchboard_recording_id: recordingId } })
  state.recordingIds.push(recordingId)
}

/**
 * After hangup: FreeSWITCH has closed the files. Record who finally handled the call in
 * the sidecars (the agent may be known only now), mark them stopped and hand them to
 * the pipeline. A failure here loses nothing: the spool scanner finds the files later.
 */
export async function finishRecordings(ctx: CallContext): Promise<void> {
  const { deps, state } = ctx
  for (const id of state.recordingIds) {
    try {
      await deps.spool.update(id, { stoppedAt: new Date().toISOString(), agentId: state.agentId, clientId: state.clientId, queueId: state.queueId })
      await deps.recordings.enqueue(id)
    } catch (err) {
      ctx.log.error({ err, recording_id: id }, 'could not hand the recording to the pipeline; the spool scanner will')
    }
  }
}
