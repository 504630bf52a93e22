/** The vocabulary of routing: call facts in, a RouteDecision with a reasons trail out. */
import type { CallerIdentity, CounterpartyKind, Segment } from '../crm/directory.ts'

export type PresenceState = 'ready' | 'not_ready' | 'on_call' | 'wrap_up' | 'offline'

/** employeeId → state. A missing employee counts as offline. */
export type PresenceView = ReadonlyMap<string, PresenceState> | ((employeeId: string) => PresenceState | undefined)

export interface Clock { now(): Date }

export const systemClock: Clock = { now: () => new Date() }
export function fixedClock(at: Date | string): Clock {
  const d = typeof at === 'string' ? new Date(at) : at
  return { now: () => new Date(d.getTime()) }
}

export interface CallFacts {
  /** Caller in E.164, or null when withheld / not a phone number. */
  caller: string | null
  /** The dialled number (DID) as delivered; looked up by its digits. */
  did: string
  /** When the call arrived; defaults to clock.now(). */
  time?: Date
  /** Earlier calls from this caller today (the current one excluded). */
  callsTodayByCaller?: number
  /** Agent who last talked to this caller today. */
  lastAgentToday?: string | null
  /** Calls from this number flagged as abusive/spam today. */
  blacklistFlagsToday?: number
  /** Identity from the live lookup, when the directory did not know the number. */
  identity?: CallerIdentity
}

/** Who a target is for this call; 'transfer' = someone an agent handed the caller to. */
export type TargetRole = 'last-agent' | 'manager' | 'colleague' | 'supervisor' | 'secretary' | 'transfer'

export interface DirectTarget {
  employeeId: string
  ringSec: number
  role: TargetRole
}

export type CallerSummary =
  | { kind: 'client'; clientId: string; segment: Segment; clientKind: CounterpartyKind; source: 'directory' | 'live' }
  | { kind: 'employee'; employeeId: string }
  | { kind: 'unidentified' }

export interface DecisionCommon {
  /** Human-readable trail of every rule that fired, in order. */
  reasons: string[]
  /** Call-tracking source of the DID, null for an unconfigured DID. */
  sourceTag: string | null
  noIvr: boolean
  did: string
  /** Office whose hours applied. */
  officeId: string
  caller: CallerSummary
}

export type RouteDecision = DecisionCommon & (
  | { kind: 'direct'; targets: DirectTarget[]; fallbackQueueId: string; priority: number }
  | { kind: 'queue'; queueId: string; priority: number }
  | { kind: 'ivr'; menuId: string; priority: number }
  | { kind: 'after-hours'; prompt: string; createCallback: boolean }
  | { kind: 'reject'; cause: 'CALL_REJECTED'; reason: string }
)

export type RouteDecisionKind = RouteDecision['kind']
