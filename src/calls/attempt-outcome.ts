/**
 * What one employee-first outbound attempt (OutboundCalls) means for whoever retries it —
 * the callback worker and the call-plan dialler read it the same way. Pure.
 *
 * - answered: the client picked up and talked (connected).
 * - busy / no_answer / failed: the client's side; these count as an attempt on the client.
 * - agent_no_answer: the employee's phone was not picked up — not the client's attempt.
 * - switchboard_error: our side (FreeSWITCH unreachable, the answered leg never reached our
 *   socket, originate timed out) — not the client's attempt either.
 */
import type { OutboundCallOutcome } from './click-to-call.ts'

export type AttemptKind = 'answered' | 'busy' | 'no_answer' | 'failed' | 'agent_no_answer' | 'switchboard_error'

/** Failure causes of OutboundCalls that are Switchboard's or FreeSWITCH's doing, not the client's. */
export const SWITCHBOARD_CAUSES: ReadonlySet<string> = new Set(['SOCKET_NOT_REACHED', 'SWITCHBOARD_UNAVAILABLE', 'ORIGINATE_TIMEOUT'])

/** Causes after which dialling the same number again is pointless (Q.850: the number does not exist / refuses). */
export const PERMANENT_CAUSES: ReadonlySet<string> = new Set([
  'UNALLOCATED_NUMBER', 'NO_ROUTE_DESTINATION', 'NUMBER_CHANGED', 'INVALID_NUMBER_FORMAT', 'INCOMPATIBLE_DESTINATION', 'CALL_REJECTED',
])

export interface AttemptVerdict {
  kind: AttemptKind
  /** Does it count against the client's attempts? */
  counts: boolean
  /** A failure not worth retrying (the number is wrong). */
  permanent: boolean
}

export function classifyAttempt(r: Pick<OutboundCallOutcome, 'connected' | 'cause' | 'outcome' | 'employeeAnswered'>): AttemptVerdict {
  if (r.connected) return { kind: 'answered', counts: true, permanent: false }
  if (r.cause !== null && SWITCHBOARD_CAUSES.has(r.cause)) return { kind: 'switchboard_error', counts: false, permanent: false }
  if (!r.employeeAnswered) return { kind: 'agent_no_answer', counts: false, permanent: false }
  // The CDR's own verdict first (calls.outcome of the bridge to the client), the cause otherwise.
  const kind: AttemptKind = r.outcome === 'busy' || r.outcome === 'no_answer' ? r.outcome
    : r.cause === 'USER_BUSY' ? 'busy' : r.cause === 'NO_ANSWER' || r.cause === 'NO_USER_RESPONSE' ? 'no_answer' : 'failed'
  return { kind, counts: true, permanent: kind === 'failed' && r.cause !== null && PERMANENT_CAUSES.has(r.cause) }
}
