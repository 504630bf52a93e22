import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import type { SpoolSidecar } from '../../recordings/spool.ts'
import { TimeoutError } from '../../errors.ts'

/**
 * Start recording the caller's leg from answer (IVR included): stereo, caller on the
 * left, everything the caller hears (prompts, agent) on the right. The sidecar goes to
 * the spool first so the file can never become an orphan nobody can attribute.
 */
export async function startCallRecording(ctx: CallContext): Promise<void> {
  const { channel, deps, state } = ctx
  const cfg = deps.config().recording
  if (!mayRecord(ctx)) return
  const { recordingId, wavPath } = await openSpoolEntry(ctx, state.uuid, state.agentId)
  await channel.startRecording(wavPath, { stereo: cfg.stereo, vars: { switchboard_recording_id: recordingId } })
  state.recordingIds.push(recordingId)
}

/**
 * A separate stereo file for one bridged conversation (caller left, the person who
 * answered right), started the moment they answer. Started with `api uuid_record`,
 * which FreeSWITCH runs at once even though the bridge is still running on the channel.
 */
export function startConversationRecording(ctx: CallContext, otherLegUuid: string, employeeId: string): Promise<string | null> {
  // Started without waiting (on CHANNEL_BRIDGE); finishRecordings waits for it, so a
  // conversation shorter than its start is still marked stopped and handed over.
  const started = beginConversationRecording(ctx, otherLegUuid, employeeId)
  const starts = ctx.state.recordingStarts
  starts.add(started)
  const done = () => { starts.delete(started) }
  started.then(done, done)
  return started
}

async function beginConversationRecording(ctx: CallContext, otherLegUuid: string, employeeId: string): Promise<string | null> {
  const { channel, state } = ctx
  if (!mayRecord(ctx)) return null
  const { recordingId, wavPath } = await openSpoolEntry(ctx, otherLegUuid || state.uuid, employeeId)
  try {
    await channel.recordLeg(wavPath, { stereo: ctx.deps.config().recording.stereo, minSec: 0 })
  } catch (err) {
    ctx.log.error({ err, recording_id: recordingId }, 'could not start the conversation recording; the call recording still runs')
    await forgetUnstarted(ctx, recordingId, err)
    return null
  }
  state.recordingIds.push(recordingId)
  state.activeConversationRecording = wavPath
  return wavPath
}

export async function stopConversationRecording(ctx: CallContext): Promise<void> {
  const path = ctx.state.activeConversationRecording
  if (!path) return
  ctx.state.activeConversationRecording = null
  if (ctx.channel.isUp) await ctx.channel.stopLegRecording(path).catch((err) => ctx.log.warn({ err }, 'stop of the conversation recording failed; hangup closes it'))
}

/**
 * A consultation between the agent and a colleague while the caller is on hold: its own
 * stereo file (the agent's leg left, the colleague right), recorded on the agent's leg
 * through this call's socket (`uuid_record <agent leg> start`), linked to `legUuid`.
 */
export async function startLegRecording(ctx: CallContext, recordOnUuid: string, legUuid: string, agentId: string): Promise<string | null> {
  if (!mayRecord(ctx)) return null
  const { recordingId, wavPath } = await openSpoolEntry(ctx, legUuid, agentId)
  try {
    await ctx.channel.recordLeg(wavPath, { uuid: recordOnUuid, stereo: ctx.deps.config().recording.stereo, minSec: 0 })
  } catch (err) {
    ctx.log.error({ err, recording_id: recordingId, leg_uuid: recordOnUuid }, 'could not start the leg recording')
    await forgetUnstarted(ctx, recordingId, err)
    return null
  }
  ctx.state.recordingIds.push(recordingId)
  return wavPath
}

/** A conference room's own file: mod_conference's mix of every member (mono), `conference <room> record <path>`. */
export async function startConferenceRecording(ctx: CallContext, room: string, legUuid: string, agentId: string): Promise<string | null> {
  if (!mayRecord(ctx)) return null
  const { recordingId, wavPath } = await openSpoolEntry(ctx, legUuid, agentId, false)
  try {
    await ctx.channel.api(`conference ${room} record ${wavPath}`)
  } catch (err) {
    ctx.log.error({ err, recording_id: recordingId, room }, 'could not start the conference recording')
    await forgetUnstarted(ctx, recordingId, err)
    return null
  }
  ctx.state.recordingIds.push(recordingId)
  return wavPath
}

/**
 * FreeSWITCH refused to start a recording (or the channel was gone): its sidecar goes,
 * unless a WAV exists after all. After a timeout FreeSWITCH may still start it, so the
 * sidecar stays for the scanner.
 */
async function forgetUnstarted(ctx: CallContext, recordingId: string, err: unknown): Promise<void> {
  if (err instanceof TimeoutError) return
  ctx.state.sidecars.delete(recordingId)
  await ctx.deps.spool.discardUnstarted(recordingId).catch((e) => ctx.log.warn({ err: e, recording_id: recordingId }, 'sidecar of an unstarted recording left in the spool'))
}

/** The caller was on hold (music) from `fromMs` to `toMs`: marked in the caller-leg file, for QA. */
export async function markHoldSpan(ctx: CallContext, fromMs: number, toMs: number): Promise<void> {
  for (const id of ctx.state.recordingIds) {
    const known = ctx.state.sidecars.get(id)
    if (known && known.legUuid !== ctx.state.uuid) continue
    await updateSidecar(ctx, id, (sidecar) => {
      if (sidecar.legUuid !== ctx.state.uuid) return {}
      const t0 = Date.parse(sidecar.startedAt)
      return { holdSpans: [...(sidecar.holdSpans ?? []), { startMs: Math.max(0, fromMs - t0), endMs: Math.max(0, toMs - t0) }] }
    }).catch((err) => ctx.log.warn({ err, recording_id: id }, 'could not mark the hold span'))
  }
}

/** Change one of this call's sidecars from the copy the call keeps (no read back), and keep the copy current. */
async function updateSidecar(ctx: CallContext, id: string, patch: (current: SpoolSidecar) => Partial<SpoolSidecar>): Promise<void> {
  const { sidecars } = ctx.state
  try {
    const written = await ctx.deps.spool.update(id, patch, sidecars.get(id))
    if (written) sidecars.set(id, written)
    else sidecars.delete(id)
  } catch (err) {
    sidecars.delete(id) // what is on disk is not known now: read it next time
    throw err
  }
}

/**
 * Pause (for card data, PCI) masks every file of this call at once, so caller and agent
 * are silenced together; the span is written into each sidecar for the QA console.
 */
export async function pauseRecordings(ctx: CallContext): Promise<boolean> {
  if (ctx.state.pausedAtMs !== null || !ctx.channel.isUp) return false
  await ctx.channel.maskRecordings()
  ctx.state.pausedAtMs = Date.now()
  return true
}

export async function resumeRecordings(ctx: CallContext): Promise<boolean> {
  const startedMs = ctx.state.pausedAtMs
  if (startedMs === null) return false
  if (ctx.channel.isUp) await ctx.channel.unmaskRecordings()
  ctx.state.pausedAtMs = null
  await markPausedSpan(ctx, startedMs, Date.now())
  return true
}

async function markPausedSpan(ctx: CallContext, fromMs: number, toMs: number): Promise<void> {
  for (const id of ctx.state.recordingIds) {
    await updateSidecar(ctx, id, (sidecar) => {
      const t0 = Date.parse(sidecar.startedAt)
      return { pausedSpans: [...sidecar.pausedSpans, { startMs: Math.max(0, fromMs - t0), endMs: toMs - t0 }] }
    })
  }
}

function mayRecord(ctx: CallContext): boolean {
  const { deps, state } = ctx
  const cfg = deps.config().recording
  if (state.direction === 'internal' && !cfg.recordInternal) return false
  if (state.direction === 'internal' && !deps.recordings.mayStartOptionalRecording()) {
    ctx.log.warn('spool disk critical: optional internal-call recording not started')
    return false
  }
  return true
}

/** The sidecar goes to the spool before FreeSWITCH writes a byte, so no file is ever unattributable. */
async function openSpoolEntry(ctx: CallContext, legUuid: string, agentId: string | null, stereo?: boolean): Promise<{ recordingId: string; wavPath: string }> {
  const { deps, state } = ctx
  const recordingId = randomUUID()
  const sidecar: SpoolSidecar = {
    recordingId, callUuid: state.uuid, legUuid, direction: state.direction,
    caller: state.caller, callee: state.did, did: state.did, clientId: state.clientId, agentId,
    queueId: state.queueId, segment: state.segment, stereo: stereo ?? deps.config().recording.stereo, startedAt: new Date().toISOString(), stoppedAt: null, pausedSpans: [],
  }
  const wavPath = await deps.spool.open(sidecar)
  state.sidecars.set(recordingId, sidecar)
  return { recordingId, wavPath }
}

/**
 * After hangup: FreeSWITCH has closed the files. Record who finally handled the call in
 * the sidecars (the agent may be known only now), mark them stopped and hand them to
 * the pipeline. A failure here loses nothing: the spool scanner finds the files later.
 */
export async function finishRecordings(ctx: CallContext): Promise<void> {
  const { deps, state } = ctx
  if (state.recordingStarts.size > 0) await Promise.allSettled([...state.recordingStarts])
  if (state.pausedAtMs !== null) await markPausedSpan(ctx, state.pausedAtMs, Date.now()).catch(() => undefined)
  for (const id of state.recordingIds) {
    try {
      // The call recording is attributed to whoever finally handled the call; a conversation file keeps its own agent.
      // Stopped → eligible for the scanner at once too (its quiet period is only for orphans).
      await updateSidecar(ctx, id, (sidecar) => ({ stoppedAt: new Date().toISOString(), agentId: sidecar.agentId ?? state.agentId, clientId: state.clientId, queueId: state.queueId }))
      await deps.recordings.enqueue(id)
    } catch (err) {
      ctx.log.error({ err, recording_id: id }, 'could not hand the recording to the pipeline; the spool scanner will')
    }
  }
}
