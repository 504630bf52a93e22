import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import { callEventBase } from '../context.ts'
import type { ConferenceState, TransferParty } from '../transfer-state.ts'
import { SwitchboardError } from '../../errors.ts'
import type { EslEvent } from '../../esl/event.ts'
import { startConferenceRecording } from './record.ts'
import { decideConsult } from './consult.ts'
import { checkTransferRequest, claimColleague, dialVars, finishParty, hangupLeg, releaseColleague, endLegsWithCaller } from '../transfer-legs.ts'

/*
 * Three-way conference, seed 004, with mod_conference: one room per call, named after it.
 *
 *   request   uuid_transfer <agent leg> conference:<room>@<profile> inline
 *   caller    `conference <room>@<profile>` on the caller's socket (until kicked or hung up);
 *             conference::maintenance add-member for the caller's channel comes to the socket
 *   record    conference <room> record <path>: one (mono) file of the whole room
 *   colleague bgapi originate {…}<colleague> &conference(<room>@<profile>)
 *   watch     conference <room> list every legPollMs (the other members' events do not reach
 *             the caller's socket): who left gets their leg row and after-call work
 *   end       nobody left with the caller → kick the caller (CSAT, goodbye); the caller hung
 *             up → norecord, hup all
 */

/** POST /api/calls/:uuid/conference. */
export async function requestConference(ctx: CallContext, employeeId: string, requestedBy: string | null): Promise<void> {
  const { channel, deps, state, log } = ctx
  // During a consultation with this colleague: all three in one room (the consultation's flow does it).
  if (state.consult?.colleagueId === employeeId && state.consult.phase === 'talking') return decideConsult(ctx, 'conference')
  const t = checkTransferRequest(ctx, employeeId)
  const conf: ConferenceState = {
    room: `sb-${state.uuid}`, agentId: t.agentId, agentLegUuid: t.agentLegUuid, colleagueId: t.colleagueId, colleagueEndpoint: t.endpoint,
    colleagueLegUuid: randomUUID(), requestedBy, phase: 'claiming', colleague: null,
  }
  state.conference = conf
  try {
    await claimColleague(ctx, t.colleagueId)
  } catch (err) {
    if (state.conference === conf) state.conference = null
    throw err
  }
  try {
    await endLegsWithCaller(ctx)
    await channel.api(`uuid_transfer ${conf.agentLegUuid} conference:${conf.room}@${deps.config().transfers.conferenceProfile} inline`)
  } catch (err) {
    if (state.conference === conf) state.conference = null
    await releaseColleague(ctx, t.colleagueId, null)
    throw new SwitchboardError('conference_failed', `could not start the conference: ${(err as Error).message}`, 409)
  }
  if (conf.phase === 'claiming') conf.phase = 'starting'
  log.info({ room: conf.room, agent_id: conf.agentId, colleague_id: conf.colleagueId, requested_by: requestedBy }, 'conference requested')
}

/** Runs on the caller's socket once the agent's leg went to the room; returns when the caller has left it. */
export async function runConference(ctx: CallContext, agent: TransferParty): Promise<void> {
  const { channel, deps, state, log } = ctx
  const conf = state.conference!
  const cfg = deps.config().transfers
  const target = `${conf.room}@${cfg.conferenceProfile}`
  const emit = (action: 'started' | 'joined' | 'left' | 'failed' | 'ended', employeeId: string | null, reason: string | null = null) =>
    deps.events?.emit('call.conference', { ...callEventBase(state), action, room: conf.room, employeeId, reason })

  // The caller joins; the conference app returns when they leave the room.
  let memberId: string | null = null
  let roomUuid: string | null = null
  let onEvent!: (e: EslEvent) => void
  const joined = new Promise<void>((resolve) => {
    onEvent = (e) => {
      if (e.name !== 'CUSTOM' || e.headers['Event-Subclass'] !== 'conference::maintenance' || e.headers['Conference-Name'] !== conf.room) return
      if (e.headers['Action'] === 'add-member' && e.headers['Unique-ID'] === state.uuid) {
        memberId = e.headers['Member-ID'] ?? null
        roomUuid = e.headers['Conference-Unique-ID'] ?? null
        resolve()
      }
    }
    channel.on('event', onEvent)
  })
  let callerInRoom = true
  const inRoom = channel.execute('conference', target).then(() => 'left' as const, () => 'hangup' as const).finally(() => { callerInRoom = false })
  await Promise.race([joined, inRoom, sleep(5_000)])
  conf.phase = 'running'
  emit('started', conf.agentId)
  const recording = callerInRoom ? await startConferenceRecording(ctx, conf.room, roomUuid ?? randomUUID(), conf.agentId) : null

  const present = new Map<string, TransferParty>([[agent.legUuid, agent]])
  if (conf.colleague) {
    // Merged from a consultation: the colleague is in the room already.
    present.set(conf.colleague.legUuid, { ...conf.colleague, role: 'consultation' })
    emit('joined', conf.colleagueId)
  } else await ringIntoRoom(ctx, conf, target, agent, present, () => callerInRoom, inRoom, emit)
  if (present.has(conf.colleagueLegUuid)) state.transferReasons.push(`three-way conference: ${conf.agentId} + ${conf.colleagueId}`)
  await watchRoom(ctx, conf, present, () => callerInRoom, inRoom, memberId, emit)
  channel.off('event', onEvent)
  await closeRoom(ctx, conf, present, recording, emit)
}

type Emit = (action: 'started' | 'joined' | 'left' | 'failed' | 'ended', employeeId: string | null, reason?: string | null) => void

/** The colleague is rung straight into the room. */
async function ringIntoRoom(ctx: CallContext, conf: ConferenceState, target: string, agent: TransferParty, present: Map<string, TransferParty>, callerInRoom: () => boolean, inRoom: Promise<'left' | 'hangup'>, emit: Emit): Promise<void> {
  const { channel, deps, state, log } = ctx
  const cfg = deps.config().transfers
  const ringStarted = new Date()
  const vars = dialVars({
    origination_uuid: conf.colleagueLegUuid, originate_timeout: String(cfg.consultRingSec),
    switchboard_call_uuid: state.uuid, switchboard_role: 'conference', ...(state.caller ? { origination_caller_id_number: state.caller } : {}),
  })
  const job = channel.bgapi(`originate ${vars}${conf.colleagueEndpoint} &conference(${target})`, { timeoutMs: (cfg.consultRingSec + 30) * 1000 })
    .catch((err: Error) => `-ERR ${err.message.replace(/\s+/g, '_')}`)
  const rang = callerInRoom() ? await Promise.race([job, inRoom]) : 'hangup'
  if (rang.startsWith('+OK')) {
    present.set(conf.colleagueLegUuid, { employeeId: conf.colleagueId, legUuid: conf.colleagueLegUuid, endpoint: conf.colleagueEndpoint, role: 'conference', startedAt: ringStarted, answeredAt: new Date(), wrapUpSec: agent.wrapUpSec })
    emit('joined', conf.colleagueId)
  } else {
    const cause = rang.startsWith('-ERR') ? rang.replace(/^-ERR\s*/, '').trim() || 'UNKNOWN' : 'ORIGINATOR_CANCEL'
    if (!rang.startsWith('-ERR')) await hangupLeg(ctx, conf.colleagueLegUuid, 'ORIGINATOR_CANCEL') // the caller left while it rang
    await deps.cdr.leg({ uuid: conf.colleagueLegUuid, callUuid: state.uuid, party: 'conference', endpoint: conf.colleagueEndpoint, employeeId: conf.colleagueId, startedAt: ringStarted, answeredAt: null, endedAt: new Date(), hangupCause: cause })
      .catch((err) => log.error({ err }, 'leg write failed'))
    await releaseColleague(ctx, conf.colleagueId, cause)
    emit('failed', conf.colleagueId, `the colleague did not join (${cause})`)
  }
}

/** Who is still there? Asked every legPollMs until the caller leaves the room. */
async function watchRoom(ctx: CallContext, conf: ConferenceState, present: Map<string, TransferParty>, callerInRoom: () => boolean, inRoom: Promise<'left' | 'hangup'>, memberId: string | null, emit: Emit): Promise<void> {
  const { channel, deps, state, log } = ctx
  const cfg = deps.config().transfers
  while (callerInRoom()) {
    if ((await Promise.race([inRoom, sleep(cfg.legPollMs)])) !== undefined) break
    let list: string
    try {
      list = await channel.api(`conference ${conf.room} list`)
    } catch {
      continue // the room is gone: the caller's conference app is returning
    }
    const members = new Set(list.split('\n').map((line) => line.split(';')[2]).filter(Boolean))
    for (const [leg, party] of [...present]) {
      if (members.has(leg)) continue
      present.delete(leg)
      await finishParty(ctx, party, 'NORMAL_CLEARING')
      emit('left', party.employeeId)
      // Whoever stays finishes the call: they are its agent from now on.
      const stays = [...present.values()][0]
      if (state.agentId === party.employeeId && stays) state.agentId = stays.employeeId
    }
    if (present.size === 0 && callerInRoom()) {
      log.info({ room: conf.room }, 'every employee left the conference; the caller leaves it too')
      if (memberId) await channel.api(`conference ${conf.room} kick ${memberId}`).catch(() => undefined)
      await Promise.race([inRoom, sleep(5_000)])
    }
  }
}

/** The caller has left (hung up or kicked): the room, its file and everyone still in it end. */
async function closeRoom(ctx: CallContext, conf: ConferenceState, present: Map<string, TransferParty>, recording: string | null, emit: Emit): Promise<void> {
  const { channel, state } = ctx
  conf.phase = 'ending'
  if (recording) await channel.api(`conference ${conf.room} norecord ${recording}`).catch(() => undefined) // closed with the room otherwise
  if (present.size > 0) await channel.api(`conference ${conf.room} hup all`).catch(() => undefined)
  for (const party of present.values()) {
    await hangupLeg(ctx, party.legUuid)
    await finishParty(ctx, party, channel.isUp ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL')
  }
  state.conference = null
  emit('ended', null, channel.isUp ? 'no employee left in the conference' : 'the caller hung up')
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
