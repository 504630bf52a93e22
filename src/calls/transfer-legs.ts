import type { CallContext } from './context.ts'
import { endpointOf } from './context.ts'
import type { TransferParty } from './transfer-state.ts'
import { NotFoundError, SwitchboardError } from '../errors.ts'
import { afterCallWork } from './steps/bridge-chain.ts'

/* Leg bookkeeping shared by attended transfer (steps/consult.ts) and conference (steps/conference.ts). */

/** A party leaves the call: their leg row, then after-call work (wrap_up for the configured time). */
export async function finishParty(ctx: CallContext, party: TransferParty, cause: string): Promise<void> {
  await ctx.deps.cdr.leg({
    uuid: party.legUuid, callUuid: ctx.state.uuid, party: party.role, endpoint: party.endpoint, employeeId: party.employeeId,
    startedAt: party.startedAt, answeredAt: party.answeredAt, endedAt: new Date(), hangupCause: cause,
  }).catch((err) => ctx.log.error({ err }, 'leg write failed'))
  await afterCallWork(ctx, party.employeeId, party.wrapUpSec)
}

/** End a leg we started or moved; -ERR (already gone) or a closed socket are fine. */
export async function hangupLeg(ctx: CallContext, legUuid: string, cause = 'NORMAL_CLEARING'): Promise<void> {
  await ctx.channel.api(`uuid_kill ${legUuid} ${cause}`).catch(() => undefined)
}

/** Is this channel still there? (`uuid_exists`; a failing socket counts as "gone".) */
export async function legExists(ctx: CallContext, legUuid: string): Promise<boolean> {
  try {
    return (await ctx.channel.api(`uuid_exists ${legUuid}`)) === 'true'
  } catch {
    return false
  }
}

/**
 * Checks shared by consult and conference requests: a conversation is running, nothing
 * else is, the colleague exists, is someone else and can be dialled. Synchronous, so the
 * caller can mark the call busy before its first await.
 */
export function checkTransferRequest(ctx: CallContext, employeeId: string): { agentId: string; agentLegUuid: string; colleagueId: string; endpoint: string } {
  const { channel, deps, state } = ctx
  if (state.consult || state.conference) throw new SwitchboardError('transfer_in_progress', 'a consultation or conference is already running on this call', 409)
  const legUuid = state.currentLegUuid
  if (!legUuid || !state.agentId || !channel.isUp || state.pendingTransfer) throw new SwitchboardError('no_conversation', 'the call has no conversation to transfer', 409)
  const target = deps.directory().employees.get(employeeId)
  if (!target) throw new NotFoundError('employee', employeeId)
  if (target.id === state.agentId) throw new SwitchboardError('transfer_to_self', 'the caller is already talking to this employee', 409)
  const cfg = deps.config()
  const endpoint = endpointOf(target, { gateways: cfg.gateways, fmc: cfg.fmc })
  if (!endpoint) throw new SwitchboardError('target_unreachable', `employee ${target.id} has no phone to ring`, 409)
  if (deps.presence.get(target.id) !== 'ready') throw new SwitchboardError('target_not_ready', `employee ${target.id} is ${deps.presence.get(target.id) ?? 'offline'}`, 409)
  return { agentId: state.agentId, agentLegUuid: legUuid, colleagueId: target.id, endpoint }
}

/** The atomic claim (ready → on_call in Postgres): two nodes never take one colleague for two calls. */
export async function claimColleague(ctx: CallContext, employeeId: string): Promise<void> {
  let ok = false
  try {
    ok = await ctx.deps.presence.claim(employeeId, ctx.state.uuid)
  } catch (err) {
    ctx.log.warn({ err, employee_id: employeeId }, 'cannot claim colleague (Postgres?)')
  }
  if (!ok) throw new SwitchboardError('target_not_ready', `employee ${employeeId} is no longer ready`, 409)
}

/** A colleague who was claimed but never talked goes back: ready, or not_ready when they did not answer. */
export async function releaseColleague(ctx: CallContext, employeeId: string, cause: string | null): Promise<void> {
  const noAnswer = cause !== null && cause !== 'USER_BUSY' && cause !== 'ORIGINATOR_CANCEL'
  await ctx.deps.presence.set(employeeId, noAnswer ? 'not_ready' : 'ready', noAnswer ? `no answer (${cause})` : null)
    .catch((err) => ctx.log.warn({ err, employee_id: employeeId }, 'could not release colleague'))
}

/** `{k=v,…}` for an originate, with FreeSWITCH's escaping of commas. */
export function dialVars(vars: Record<string, string>): string {
  return `{${Object.entries(vars).map(([k, v]) => `${k}=${v.replace(/,/g, '\\,')}`).join(',')}}`
}

/**
 * The caller's socket closes with the caller (linger only drains the last events), so
 * Switchboard cannot clean up after a caller who hangs up mid-consultation. FreeSWITCH
 * does it: at the caller's hangup `api_hangup_hook` runs `hupall`, which ends every
 * channel carrying this call's switchboard_call_uuid (the agent's leg from its dial
 * string, the colleague's from the originate).
 */
export async function endLegsWithCaller(ctx: CallContext): Promise<void> {
  const uuid = ctx.state.uuid
  await ctx.channel.api(`uuid_setvar ${uuid} api_hangup_hook hupall NORMAL_CLEARING switchboard_call_uuid ${uuid}`)
    .catch((err) => ctx.log.warn({ err: (err as Error).message }, 'could not set the hangup hook; legs may outlive the caller'))
}

/**
 * After a uuid_kill: wait (bounded) until the leg is really gone. FreeSWITCH answers +OK
 * before the hangup has run, and the partner it leaves behind decides park-or-hangup
 * from its park_after_bridge at that moment — which must still be true then.
 */
export async function waitGone(ctx: CallContext, legUuid: string, ms = 3_000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until && ctx.channel.isUp && (await legExists(ctx, legUuid))) {
    await new Promise((resolve) => setTimeout(resolve, 20).unref())
  }
}
