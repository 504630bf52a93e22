import { randomUUID } from 'node:crypto'
import type { CallContext } from '../context.ts'
import { endpointOf, callEventBase } from '../context.ts'
import type { QueueConfig } from '../../config/switchboard-file.ts'
import type { Employee } from '../../crm/directory.ts'
import type { EslEvent } from '../../esl/event.ts'
import type { BridgeResult } from '../../esl/call-channel.ts'
import { Acd, type Offer } from '../../acd/dispatcher.ts'
import { callerPriority } from '../../acd/priority.ts'
import { bridgeChain, afterCallWork } from './bridge-chain.ts'
import { createCallbackTask } from './after-hours.ts'
import { startConversationRecording, stopConversationRecording } from './record.ts'
import { leaveVoicemail } from './voicemail.ts'

type WaitEnd = 'answered' | 'timeout' | 'left'

/**
 * A caller in an ACD queue. The waiting list is shared by every node (acd/dispatcher.ts):
 * the caller is put on it with a priority (segment, VIP, callback, attribute rules) and
 * hears music — and, if configured, their position and expected wait every
 * announceIntervalSec — until the dispatcher offers them an agent (or several: ring-all).
 * An offer not answered puts them back in their place (the agent goes not_ready, or
 * ready again when busy); at maxWaitSec, or at once when maxLength callers already
 * wait, the overflow: another queue, voicemail, a callback task, or a callback offer.
 * A caller who hangs up while waiting is an abandoned call with a callback task.
 */
export async function runQueue(ctx: CallContext, queueId: string, hop = 0): Promise<void> {
  const { channel, deps, state, log } = ctx
  const queue = deps.config().queues.find((q) => q.id === queueId)
  state.queueId = queueId
  if (!queue) {
    log.error({ queue_id: queueId }, 'route names a queue that does not exist; hanging up')
    state.outcome = 'failed'
    await channel.hangup('UNALLOCATED_NUMBER')
    return
  }
  const acd = deps.acd ?? fallbackAcd(ctx)
  try {
    return await waitInQueue(ctx, acd, queue, hop)
  } finally {
    // Whatever happened (a bug, Postgres blip), the caller must not stay on the shared list.
    await acd.leave(state.uuid).catch((err) => log.warn({ err }, 'could not take the caller off the waiting list; the reaper will'))
  }
}

async function waitInQueue(ctx: CallContext, acd: Acd, queue: QueueConfig, hop: number): Promise<void> {
  const { channel, deps, state, log } = ctx
  const queueId = queue.id
  const firstEnteredAt = queueEntries.get(state) ?? new Date()
  queueEntries.set(state, firstEnteredAt)
  const priority = await priorityOf(ctx, acd, queue)
  const sticky = queue.strategy === 'sticky' ? await acd.lastAgentOf(state.clientId, state.caller).catch(() => null) : null
  let offersDeclined = 0
  for (;;) {
    const entered = await acd.enqueue({ callUuid: state.uuid, queueId, priority: priority.priority, enteredAt: firstEnteredAt, clientId: state.clientId, caller: state.caller, stickyAgentId: sticky }, queue.maxLength)
    if (entered === 'full') {
      log.info({ queue_id: queueId, max_length: queue.maxLength }, 'queue full: overflow at once')
      return overflow(ctx, queue, hop, 'full')
    }
    log.info({ queue_id: queueId, priority: priority.priority, why: priority.reasons, sticky_agent: sticky }, 'caller queued')
    let end: WaitEnd
    try {
      end = await waitForAgent(ctx, acd, queue, Date.now() + queue.maxWaitSec * 1000)
    } catch (err) {
      // A caller hanging up makes the running prompt/bridge reject: an abandoned call, not a failure.
      await acd.leave(state.uuid).catch(() => undefined)
      if (channel.isUp) throw err
      end = 'left'
    }
    if (end === 'answered') { state.outcome = 'answered'; return }
    await acd.leave(state.uuid, end === 'timeout' ? 'timeout' : 'caller_left')
    if (end === 'left' || !channel.isUp) {
      state.outcome = 'abandoned'
      await createCallbackTask(ctx, 'abandoned')
      return
    }
    // max wait reached
    if (queue.overflow.action === 'callback-offer') {
      const accepted = await offerCallback(ctx)
      if (accepted || !channel.isUp) return
      if (++offersDeclined < deps.config().acd.callbackOffer.maxOffers) { log.info('callback declined: back in the queue, place kept'); continue }
    }
    return overflow(ctx, queue, hop, 'timeout')
  }
}

/** The first time this call entered any queue: an overflowed caller keeps their seniority. */
const queueEntries = new WeakMap<object, Date>()

async function priorityOf(ctx: CallContext, acd: Acd, queue: QueueConfig) {
  const { deps, state } = ctx
  const cfg = deps.config()
  const client = state.clientId ? deps.directory().clients.get(state.clientId) : undefined
  const isCallback = ctx.channel.channelData.variable('switchboard_callback') === 'true' || await acd.hasOpenCallback(state.caller).catch(() => false)
  const d = state.decision
  const decided = d && 'kind' in d && d.kind === 'queue' && d.queueId === queue.id ? d.priority : undefined
  return callerPriority(cfg, queue, { segment: state.segment, client, callback: isCallback, decided })
}

async function overflow(ctx: CallContext, queue: QueueConfig, hop: number, why: 'full' | 'timeout'): Promise<void> {
  const { channel, deps, state, log } = ctx
  state.outcome = 'overflow'
  const o = queue.overflow
  log.info({ queue_id: queue.id, why, action: o.action, target: o.target }, 'queue overflow')
  if (o.action === 'queue' && o.target && o.target !== queue.id && hop < deps.config().acd.maxOverflowHops) {
    return runQueue(ctx, o.target, hop + 1)
  }
  if (o.action === 'voicemail') return leaveVoicemail(ctx, queue.id)
  if (o.action === 'callback-offer' && why === 'full') {
    if (await offerCallback(ctx)) return
  }
  await createCallbackTask(ctx, 'queue_overflow')
  if (channel.isUp) await channel.hangup('NORMAL_CLEARING')
}

/** "Press 1 and we call you back": true when the caller took it (task created, goodbye). */
async function offerCallback(ctx: CallContext): Promise<boolean> {
  const { channel, deps, state, log } = ctx
  const o = deps.config().acd.callbackOffer
  if (!channel.isUp) return false
  const digit = await channel.playAndGetDigits({ min: 1, max: 1, tries: 1, timeoutMs: o.timeoutMs, file: o.prompt, regex: `[${o.digit === '*' || o.digit === '#' ? `\\${o.digit}` : o.digit}]`, terminators: 'none' })
  if (digit !== o.digit) { log.info({ digit }, 'callback offer not taken'); return false }
  await createCallbackTask(ctx, 'requested')
  state.outcome = 'callback_requested'
  if (o.confirmPrompt && channel.isUp) await channel.playback(o.confirmPrompt)
  if (channel.isUp) await channel.hangup('NORMAL_CLEARING')
  return true
}

/** Music (and announcements) until an offer ends in a conversation, the deadline, or the caller leaves. */
async function waitForAgent(ctx: CallContext, acd: Acd, queue: QueueConfig, deadlineMs: number): Promise<WaitEnd> {
  const { channel, state } = ctx
  const announcing = queue.announcePosition || queue.announceExpectedWait
  // The first announcement after a moment: a caller who gets an agent at once hears none.
  let nextAnnounce = announcing ? Date.now() + Math.min(queue.announceIntervalSec, 3) * 1000 : Infinity
  const gone = new Promise<void>((resolve) => {
    if (!channel.isUp) resolve()
    channel.once('hangup', () => resolve())
    void channel.ended.then(() => resolve())
  })
  while (channel.isUp) {
    if (Date.now() >= nextAnnounce) {
      await announce(ctx, acd, queue)
      nextAnnounce = Date.now() + queue.announceIntervalSec * 1000
    }
    const until = Math.min(deadlineMs, nextAnnounce)
    const offer = await withMusic(ctx, queue, () => acd.waitForOffer(state.uuid, until, gone))
    if (!channel.isUp) {
      if (offer) await releaseOffer(ctx, acd, offer, 'caller_left')
      return 'left'
    }
    if (offer) {
      if (await ring(ctx, acd, queue, offer)) return 'answered'
      continue
    }
    if (Date.now() >= deadlineMs) return 'timeout'
  }
  return 'left'
}

/**
 * Music on hold while `wait` runs: `endless_playback` loops the file (or plays a
 * local_stream) until `uuid_break`, sent again until the music really ended (a break
 * that arrives before the app started does nothing).
 */
async function withMusic<T>(ctx: CallContext, queue: QueueConfig, wait: () => Promise<T>): Promise<T> {
  const { channel, log } = ctx
  const moh = queue.musicOnHold ?? 'local_stream://moh'
  let stop = false
  let wakeSleep: (() => void) | null = null
  const music = (async () => {
    while (!stop && channel.isUp) {
      const t0 = Date.now()
      try { await channel.execute('endless_playback', moh) } catch { return }
      // A file that ends at once (missing, unreadable) must not spin: pause before the next round.
      if (!stop && Date.now() - t0 < 200) await new Promise<void>((r) => { wakeSleep = r; setTimeout(r, 1000).unref() })
    }
  })()
  try {
    return await wait()
  } finally {
    stop = true
    ;(wakeSleep as (() => void) | null)?.()
    for (let i = 0; i < 50 && channel.isUp; i++) {
      const done = await Promise.race([music.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), i === 0 ? 5 : 100))])
      if (done) break
      await channel.api(`uuid_break ${channel.uuid}`, { timeoutMs: 2000 }).catch((err) => log.debug({ err: (err as Error).message }, 'uuid_break failed'))
    }
    await Promise.race([music, new Promise((r) => setTimeout(r, 200))])
  }
}

/** Position (and expected wait) in the queue: prompt, then the number said by mod_say. */
async function announce(ctx: CallContext, acd: Acd, queue: QueueConfig): Promise<void> {
  const { channel, state, log } = ctx
  const position = await acd.position(state.uuid).catch(() => null)
  if (position === null || !channel.isUp) return
  log.debug({ position }, 'position announced')
  if (queue.announcePosition) {
    await channel.playback(queue.positionPrompt)
    await channel.say(String(position), { type: 'number' })
  }
  if (queue.announceExpectedWait) {
    const sec = await acd.expectedWaitSec(queue, position).catch(() => null)
    if (sec !== null && channel.isUp) {
      await channel.playback(queue.expectedWaitPrompt)
      await channel.say(String(Math.max(1, Math.ceil(sec / 60))), { type: 'number' })
    }
  }
}

/** Ring the offered agent(s). true when one answered (the conversation is over when this returns). */
async function ring(ctx: CallContext, acd: Acd, queue: QueueConfig, offer: Offer): Promise<boolean> {
  const { channel, deps, state } = ctx
  let answeredBy: string | null = null
  const outcomes = new Map<string, string>()
  try {
    if (offer.employeeIds.length === 1) {
      const r = await bridgeChain(ctx, [{ employeeId: offer.employeeIds[0], ringSec: queue.agentTimeoutSec, role: 'colleague' }], { wrapUpSec: queue.wrapUpSec, preClaimed: true })
      answeredBy = r.answeredBy
    } else {
      answeredBy = await ringAll(ctx, queue, offer, outcomes)
    }
  } finally {
    for (const id of offer.employeeIds) {
      const outcome = id === answeredBy ? 'answered' : outcomes.get(id) ?? (!channel.isUp ? 'caller_left' : deps.presence.get(id) === 'not_ready' ? 'no_answer' : 'busy')
      await acd.offerEnded(offer.offerId, id, outcome).catch(() => undefined)
    }
    await releaseLeftovers(ctx, offer, answeredBy)
  }
  if (answeredBy) {
    await acd.leave(state.uuid, 'answered')
    return true
  }
  if (channel.isUp) await acd.requeue(state.uuid, offer.employeeIds)
  return false
}

async function releaseOffer(ctx: CallContext, acd: Acd, offer: Offer, outcome: string): Promise<void> {
  for (const id of offer.employeeIds) await acd.offerEnded(offer.offerId, id, outcome).catch(() => undefined)
  await releaseLeftovers(ctx, offer, null)
}

/** Offered agents still held for this call (never rung: no endpoint, the caller left first) are ready again. */
async function releaseLeftovers(ctx: CallContext, offer: Offer, answeredBy: string | null): Promise<void> {
  for (const id of offer.employeeIds) {
    if (id === answeredBy) continue
    const row = await ctx.deps.presence.row(id).catch(() => null)
    if (row?.state === 'on_call' && row.callUuid === offer.callUuid) await release(ctx, id, 'ready', null)
  }
}

async function release(ctx: CallContext, employeeId: string, to: 'ready' | 'not_ready', reason: string | null): Promise<void> {
  await ctx.deps.presence.set(employeeId, to, to === 'ready' ? null : reason).catch((err) => ctx.log.warn({ err, employee_id: employeeId }, 'could not release agent'))
}

/**
 * Ring-all: every offered agent rings at once (one bridge, comma-separated endpoints);
 * the first to answer talks, the others are released to ready the moment the bridge
 * is up. Nobody answering is a no-answer for each of them (not_ready).
 */
async function ringAll(ctx: CallContext, queue: QueueConfig, offer: Offer, outcomes: Map<string, string>): Promise<string | null> {
  const { channel, deps, state, log } = ctx
  const cfg = deps.config()
  const dir = deps.directory()
  const targets: Array<{ e: Employee; ep: string }> = []
  for (const id of offer.employeeIds) {
    const e = dir.employees.get(id)
    const ep = e && endpointOf(e, { gateways: cfg.gateways, fmc: cfg.fmc })
    if (e && ep) targets.push({ e, ep })
  }
  if (targets.length === 0) return null
  const legStarted = new Date()
  let winner: { e: Employee; ep: string } | null = null
  let bridgedAt: Date | null = null
  let bridgedFsUs: number | null = null
  const onBridge = (ev: EslEvent) => {
    if (ev.name !== 'CHANNEL_BRIDGE' || bridgedAt) return
    bridgedAt = new Date()
    bridgedFsUs = Number(ev.headers['Event-Date-Timestamp']) || null
    winner = whoAnswered(targets, ev)
    if (!winner) { log.warn({ dest: ev.headers['Other-Leg-Destination-Number'] }, 'ring-all: cannot tell who answered; first target assumed'); winner = targets[0] }
    state.currentLegUuid = ev.headers['Other-Leg-Unique-ID'] ?? ev.headers['Bridge-B-Unique-ID'] ?? null
    state.agentId = winner.e.id
    if (!state.connectedAt) { state.connectedAt = bridgedAt; state.connectedFsUs = bridgedFsUs }
    deps.events?.emit('call.answered', { ...callEventBase(state), employeeId: winner.e.id, queueId: state.queueId })
    void startConversationRecording(ctx, state.currentLegUuid ?? '', winner.e.id)
    // The others stopped ringing: free again at once, not after this conversation.
    for (const t of targets) if (t !== winner) { outcomes.set(t.e.id, 'lost_race'); void release(ctx, t.e.id, 'ready', null) }
  }
  channel.on('event', onBridge)
  for (const t of targets) deps.events?.emit('call.offered', { ...callEventBase(state), employeeId: t.e.id, queueId: state.queueId, ivrPath: state.ivrPath })
  let result: BridgeResult
  try {
    result = await channel.bridge(targets.map((t) => t.ep), { timeoutSec: queue.agentTimeoutSec, vars: { switchboard_call_uuid: state.uuid, switchboard_role: 'colleague' } })
  } catch (err) {
    if (!bridgedAt) {
      for (const t of targets) { outcomes.set(t.e.id, 'caller_left'); await release(ctx, t.e.id, 'ready', null) }
      throw err
    }
    result = { answered: true, bLegUuid: state.currentLegUuid ?? randomUUID(), hangupCause: channel.hangupCause ?? 'NORMAL_CLEARING' }
  } finally {
    channel.off('event', onBridge)
    state.currentLegUuid = null
  }
  await stopConversationRecording(ctx)
  const ended = new Date()
  if (!result.answered) {
    for (const t of targets) {
      await deps.cdr.leg({ uuid: randomUUID(), callUuid: state.uuid, party: 'colleague', endpoint: t.ep, employeeId: t.e.id, startedAt: legStarted, answeredAt: null, endedAt: ended, hangupCause: result.cause })
      const busy = result.cause === 'USER_BUSY'
      outcomes.set(t.e.id, busy ? 'busy' : 'no_answer')
      await release(ctx, t.e.id, busy ? 'ready' : 'not_ready', `no answer (${result.cause})`)
    }
    log.info({ agents: targets.length, cause: result.cause }, 'ring-all: nobody answered')
    return null
  }
  const w = (winner as { e: Employee; ep: string } | null) ?? targets[0]
  state.agentId = w.e.id
  if (!state.connectedAt) { state.connectedAt = bridgedAt ?? legStarted; state.connectedFsUs = bridgedFsUs }
  for (const t of targets) {
    const won = t === w
    await deps.cdr.leg({
      uuid: won ? result.bLegUuid || randomUUID() : randomUUID(), callUuid: state.uuid, party: 'colleague', endpoint: t.ep, employeeId: t.e.id,
      startedAt: legStarted, answeredAt: won ? (bridgedAt ?? legStarted) : null, endedAt: won ? ended : (bridgedAt ?? ended), hangupCause: won ? (result.hangupCause ?? 'NORMAL_CLEARING') : 'LOSE_RACE',
    })
  }
  await afterCallWork(ctx, w.e.id, queue.wrapUpSec)
  return w.e.id
}

/** Which ringing agent answered: the bridged leg's destination number or channel. */
function whoAnswered(targets: Array<{ e: Employee; ep: string }>, ev: EslEvent): { e: Employee; ep: string } | null {
  const dest = ev.headers['Other-Leg-Destination-Number'] ?? ''
  const chan = ev.headers['variable_bridge_channel'] ?? ev.headers['Other-Leg-Channel-Name'] ?? ''
  return targets.find((t) => t.ep === chan || (dest !== '' && (t.ep.split('/').pop() === dest || t.e.extension === dest || t.e.mobile === dest))) ?? null
}

/**
 * Without a shared ACD in the deps (tools, old tests): one poll-only instance per
 * deps object, so queues still work on a single node.
 */
const fallbacks = new WeakMap<object, Acd>()
function fallbackAcd(ctx: CallContext): Acd {
  let acd = fallbacks.get(ctx.deps)
  if (!acd) {
    const d = ctx.deps
    acd = new Acd({ pool: d.pool, log: d.log, presence: d.presence, config: d.config, directory: d.directory, events: d.events, node: d.node, listen: false,
      ringable: (e) => endpointOf(e, { gateways: d.config().gateways, fmc: d.config().fmc }) !== null })
    fallbacks.set(ctx.deps, acd)
    void acd.start().catch((err) => d.log.error({ err }, 'local ACD could not start'))
  }
  return acd
}
