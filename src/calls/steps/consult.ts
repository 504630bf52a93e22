import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import { callEventBase } from '../context.ts'
import type { ConsultDecision, ConsultState, TransferParty } from '../transfer-state.ts'
import { SwitchboardError } from '../../errors.ts'
import type { EslEvent } from '../../esl/event.ts'
import { markHoldSpan, startLegRecording } from './record.ts'
import { checkTransferRequest, claimColleague, dialVars, finishParty, hangupLeg, legExists, releaseColleague, endLegsWithCaller, waitGone } from '../transfer-legs.ts'

/*
 * Attended (consultative) transfer, seed 004, the way FreeSWITCH does it for a call its
 * outbound socket controls:
 *
 *   request   uuid_transfer <agent leg> park inline    the agent leaves the caller's bridge
 *                                                      (park_after_bridge=true keeps the leg)
 *   hold      uuid_hold <caller> + endless_playback <holdMusic> on the caller's socket
 *   ring      bgapi originate {origination_uuid=…}<colleague> &park()   (BACKGROUND_JOB)
 *   consult   uuid_bridge <agent leg> <colleague leg>, uuid_record on the agent's leg
 *   complete  uuid_kill <agent leg>; intercept <colleague leg> on the caller's socket
 *   cancel    uuid_kill <colleague leg>; intercept <agent leg>
 *   unhold    uuid_break <caller> all + uuid_hold off <caller>
 *
 * The consultation's legs are not the socket's channel, so their events never reach it
 * (myevents): whether they are still there is asked with uuid_exists every legPollMs.
 */

/** POST /api/calls/:uuid/consult: put the caller on hold and ring a colleague for the agent. */
export async function requestConsult(ctx: CallContext, employeeId: string, requestedBy: string | null): Promise<void> {
  const { channel, state, log } = ctx
  const t = checkTransferRequest(ctx, employeeId)
  const c: ConsultState = {
    agentId: t.agentId, agentLegUuid: t.agentLegUuid, colleagueId: t.colleagueId, colleagueEndpoint: t.endpoint,
    colleagueLegUuid: randomUUID(), requestedBy, phase: 'claiming', decision: null, wake: null,
  }
  // Marked before the first await: a second request (or a blind transfer) is refused from now on.
  state.consult = c
  try {
    await claimColleague(ctx, t.colleagueId)
  } catch (err) {
    if (state.consult === c) state.consult = null
    throw err
  }
  try {
    await endLegsWithCaller(ctx)
    // The agent's leg must outlive the bridges it leaves (the caller's now, the consultation's later).
    await channel.api(`uuid_setvar ${c.agentLegUuid} park_after_bridge true`)
    // Out of the caller's bridge: the caller's `bridge` returns and the call's own flow carries on (transfer-flow.ts).
    await channel.api(`uuid_transfer ${c.agentLegUuid} park inline`)
  } catch (err) {
    if (state.consult === c) state.consult = null
    await releaseColleague(ctx, t.colleagueId, null)
    throw new SwitchboardError('consult_failed', `could not start the consultation: ${(err as Error).message}`, 409)
  }
  if (c.phase === 'claiming') c.phase = 'holding'
  log.info({ agent_id: c.agentId, colleague_id: c.colleagueId, requested_by: requestedBy }, 'consultation requested')
}

/** POST …/consult/complete | …/consult/cancel. */
export function decideConsult(ctx: CallContext, decision: ConsultDecision): void {
  const c = ctx.state.consult
  if (!c || c.phase === 'finishing' || c.decision) throw new SwitchboardError('no_consultation', `there is no consultation to ${decision} on this call`, 409)
  if (decision !== 'cancel' && c.phase !== 'talking') throw new SwitchboardError('consultation_not_connected', 'the colleague has not answered yet; cancel or wait', 409)
  c.decision = decision
  c.wake?.()
  // Still ringing: stop the originate now (its BACKGROUND_JOB then reports the cancel).
  if (decision === 'cancel' && c.phase === 'ringing') void hangupLeg(ctx, c.colleagueLegUuid, 'ORIGINATOR_CANCEL')
  ctx.log.info({ decision, agent_id: c.agentId, colleague_id: c.colleagueId }, 'consultation decided')
}

type Outcome = ConsultDecision | 'colleague_left' | 'agent_left' | 'caller_left' | 'no_answer'

/** What the caller's flow does next: talk to one party, join the conference the consultation became, or nothing (caller gone). */
export type AfterConsultation = { talk: TransferParty } | { conference: true } | null

/**
 * Runs on the caller's socket once the agent's leg has left the caller's bridge. Returns
 * whom the caller talks to next — the colleague (completed), the agent (cancelled, no
 * answer, colleague left) — or null when the caller is gone.
 */
export async function runConsultation(ctx: CallContext, agent: TransferParty): Promise<AfterConsultation> {
  const { channel, deps, state, log } = ctx
  const c = state.consult!
  const cfg = deps.config().transfers
  const emit = (phase: 'ringing' | 'talking' | 'completed' | 'cancelled' | 'ended', reason: string | null = null) =>
    deps.events?.emit('call.consult', { ...callEventBase(state), phase, agentId: c.agentId, colleagueId: c.colleagueId, reason })
  const hold = await holdCaller(ctx, cfg.holdMusic)
  const ringStarted = new Date()
  let answeredAt: Date | null = null
  let failCause: string | null = null
  let recording: string | null = null
  let rung = false
  let outcome: Outcome
  if (c.decision === 'cancel' || !channel.isUp) {
    outcome = channel.isUp ? 'cancel' : 'caller_left'
  } else {
    c.phase = 'ringing'
    emit('ringing')
    rung = true
    const rang = await ringColleague(ctx, c, cfg.consultRingSec)
    if (rang === 'caller_left') outcome = 'caller_left'
    else if (!rang.startsWith('+OK')) {
      failCause = rang.replace(/^-ERR\s*/, '').trim() || 'UNKNOWN'
      outcome = (c.decision as ConsultDecision | null) === 'cancel' ? 'cancel' : 'no_answer'
    } else {
      answeredAt = new Date()
      try {
        await channel.api(`uuid_bridge ${c.agentLegUuid} ${c.colleagueLegUuid}`)
        recording = await startLegRecording(ctx, c.agentLegUuid, c.colleagueLegUuid, c.agentId)
        c.phase = 'talking'
        emit('talking')
        outcome = await waitForDecision(ctx, c, cfg.legPollMs)
      } catch (err) {
        // The agent's leg is gone (hung up while the colleague rang): the colleague takes the caller.
        log.warn({ err: (err as Error).message }, 'could not bridge the agent to the colleague')
        outcome = channel.isUp ? 'agent_left' : 'caller_left'
      }
    }
  }
  c.phase = 'finishing'
  if (recording) await channel.stopLegRecording(recording).catch(() => undefined) // gone with its leg otherwise
  const colleague: TransferParty = {
    employeeId: c.colleagueId, legUuid: c.colleagueLegUuid, endpoint: c.colleagueEndpoint, role: 'consultation',
    startedAt: ringStarted, answeredAt: answeredAt ?? ringStarted, wrapUpSec: agent.wrapUpSec,
  }
  const colleagueOut = async (cause: string) => {
    await hangupLeg(ctx, c.colleagueLegUuid)
    if (answeredAt) await finishParty(ctx, { ...colleague, wrapUpSec: 0 }, cause)
    else if (!rung) await releaseColleague(ctx, c.colleagueId, null) // cancelled before it rang: no leg
    else {
      await deps.cdr.leg({ uuid: c.colleagueLegUuid, callUuid: state.uuid, party: 'consultation', endpoint: c.colleagueEndpoint, employeeId: c.colleagueId, startedAt: ringStarted, answeredAt: null, endedAt: new Date(), hangupCause: failCause ?? cause })
        .catch((err) => log.error({ err }, 'leg write failed'))
      await releaseColleague(ctx, c.colleagueId, failCause ?? 'ORIGINATOR_CANCEL')
    }
  }
  if (outcome === 'conference') {
    // Agent and colleague go to the room first, so the caller never joins an empty one.
    const room = `sb-${state.uuid}`
    const target = `conference:${room}@${cfg.conferenceProfile}`
    try {
      await channel.api(`uuid_transfer ${c.agentLegUuid} ${target} inline`)
      await channel.api(`uuid_transfer ${c.colleagueLegUuid} ${target} inline`)
      state.conference = {
        room, agentId: c.agentId, agentLegUuid: c.agentLegUuid, colleagueId: c.colleagueId, colleagueEndpoint: c.colleagueEndpoint,
        colleagueLegUuid: c.colleagueLegUuid, requestedBy: c.requestedBy, phase: 'starting', colleague,
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not move the consultation into a conference; cancelling it')
      outcome = 'cancel'
    }
  }
  await unholdCaller(ctx, hold)
  state.consult = null
  switch (outcome) {
    case 'conference':
      log.info({ agent_id: c.agentId, colleague_id: c.colleagueId }, 'consultation merged into a conference')
      emit('completed', 'merged into a three-way conference')
      return { conference: true }
    case 'complete':
    case 'agent_left': {
      await hangupLeg(ctx, c.agentLegUuid)
      await waitGone(ctx, c.agentLegUuid) // the colleague parks (park_after_bridge) before the caller picks them up
      await finishParty(ctx, agent, 'NORMAL_CLEARING')
      state.transferReasons.push(`attended transfer: ${c.agentId} → ${c.colleagueId}${outcome === 'agent_left' ? ' (agent hung up during the consultation)' : ''}`)
      log.info({ from: c.agentId, to: c.colleagueId, outcome }, 'attended transfer completed')
      emit('completed', outcome === 'agent_left' ? 'the agent hung up during the consultation' : null)
      return { talk: colleague }
    }
    case 'caller_left':
      await colleagueOut('ORIGINATOR_CANCEL')
      await hangupLeg(ctx, c.agentLegUuid)
      await finishParty(ctx, agent, 'ORIGINATOR_CANCEL')
      emit('ended', 'the caller hung up during the consultation')
      return null
    default: {
      const reason = outcome === 'no_answer' ? `the colleague did not answer (${failCause})` : outcome === 'colleague_left' ? 'the colleague hung up' : 'cancelled'
      await colleagueOut('NORMAL_CLEARING')
      await waitGone(ctx, c.colleagueLegUuid) // the agent parks before the caller picks them up
      log.info({ colleague_id: c.colleagueId, reason }, 'consultation cancelled; caller back to the agent')
      emit('cancelled', reason)
      if (!(await legExists(ctx, c.agentLegUuid))) {
        await finishParty(ctx, agent, 'NORMAL_CLEARING')
        return null
      }
      return { talk: agent }
    }
  }
}

/** Ring the colleague into park; the BACKGROUND_JOB body (`+OK <uuid>`, `-ERR NO_ANSWER`), or 'caller_left'. */
async function ringColleague(ctx: CallContext, c: ConsultState, ringSec: number): Promise<string> {
  const { channel, state } = ctx
  const vars = dialVars({
    origination_uuid: c.colleagueLegUuid, originate_timeout: String(ringSec), park_after_bridge: 'true',
    switchboard_call_uuid: state.uuid, switchboard_role: 'consultation', ...(state.caller ? { origination_caller_id_number: state.caller } : {}),
  })
  const job = channel.bgapi(`originate ${vars}${c.colleagueEndpoint} &park()`, { timeoutMs: (ringSec + 30) * 1000 })
    .catch((err: Error) => `-ERR ${channel.isUp ? err.message.replace(/\s+/g, '_') : 'ORIGINATOR_CANCEL'}`)
  let onHangup!: () => void
  const callerLeft = new Promise<'caller_left'>((resolve) => { onHangup = () => resolve('caller_left'); channel.once('hangup', onHangup) })
  const r = channel.isUp ? await Promise.race([job, callerLeft]) : 'caller_left'
  channel.off('hangup', onHangup)
  if (r === 'caller_left') await hangupLeg(ctx, c.colleagueLegUuid, 'ORIGINATOR_CANCEL')
  return r
}

/** Until a decision arrives, a leg disappears (polled with uuid_exists) or the caller hangs up. */
function waitForDecision(ctx: CallContext, c: ConsultState, pollMs: number): Promise<Outcome> {
  const { channel } = ctx
  return new Promise((resolve) => {
    let settled = false
    let checking = false
    const done = (o: Outcome) => {
      if (settled) return
      settled = true
      clearInterval(timer)
      channel.off('hangup', onHangup)
      c.wake = null
      resolve(o)
    }
    const onHangup = () => done('caller_left')
    channel.once('hangup', onHangup)
    const timer = setInterval(() => {
      if (checking) return
      checking = true
      void Promise.all([legExists(ctx, c.colleagueLegUuid), legExists(ctx, c.agentLegUuid)]).then(([colleague, agent]) => {
        if (!channel.isUp) done('caller_left')
        else if (!colleague) done('colleague_left')
        else if (!agent) done('agent_left')
      }).finally(() => { checking = false })
    }, pollMs)
    timer.unref()
    c.wake = () => { if (c.decision) done(c.decision) }
    if (!channel.isUp) done('caller_left')
    else c.wake()
  })
}

interface Hold { startedMs: number; playing: Promise<unknown>; started: Promise<void>; stopListening: () => void }

/** Hold: FreeSWITCH signals it to the caller's phone (CHANNEL_HOLD) and the caller hears the hold music. */
async function holdCaller(ctx: CallContext, music: string): Promise<Hold> {
  const { channel, state, log } = ctx
  const startedMs = Date.now()
  let onEvent!: (e: EslEvent) => void
  const started = new Promise<void>((resolve) => {
    onEvent = (e) => { if (e.name === 'CHANNEL_EXECUTE' && e.headers['Application'] === 'endless_playback') resolve() }
    channel.on('event', onEvent)
  })
  if (!channel.isUp) return { startedMs, playing: Promise.resolve(), started: Promise.resolve(), stopListening: () => channel.off('event', onEvent) }
  // CHANNEL_EXECUTE says the music is on; the socket drops it unless asked (esl/defaults.ts). Without it the wait below times out after 2 s.
  await channel.subscribe(['CHANNEL_EXECUTE']).catch((err) => log.warn({ err: (err as Error).message }, 'CHANNEL_EXECUTE subscription failed'))
  await channel.api(`uuid_hold ${state.uuid}`).catch((err) => log.warn({ err: (err as Error).message }, 'uuid_hold failed; music only'))
  const playing = channel.execute('endless_playback', music).catch(() => undefined)
  return { startedMs, playing, started, stopListening: () => channel.off('event', onEvent) }
}

/** Music off (uuid_break ends endless_playback), hold off, and the span marked in the caller's recording. */
async function unholdCaller(ctx: CallContext, hold: Hold): Promise<void> {
  const { channel, state } = ctx
  if (channel.isUp) {
    // A break sent before the music started would miss it, and the caller would never leave hold.
    await Promise.race([hold.started, hold.playing, sleep(2_000)])
    await channel.api(`uuid_break ${state.uuid} all`).catch(() => undefined)
    await channel.api(`uuid_hold off ${state.uuid}`).catch(() => undefined)
    await Promise.race([hold.playing, sleep(5_000)])
  }
  hold.stopListening()
  await markHoldSpan(ctx, hold.startedMs, Date.now())
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
