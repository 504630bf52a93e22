/**
 * What a call carries while an attended transfer or a three-way conference runs. The
 * HTTP side (CallSession.request*) writes the request; the call's own flow
 * (steps/consult.ts, steps/conference.ts, run from transfer-flow.ts) carries it out.
 */

/** An employee talking to the caller on a leg of their own (a FreeSWITCH channel uuid). */
export interface TransferParty {
  employeeId: string
  legUuid: string
  endpoint: string | null
  /** the legs row's party: agent, colleague, consultation… */
  role: string
  startedAt: Date
  answeredAt: Date
  /** after-call work once they leave the call */
  wrapUpSec: number
}

/** complete: the colleague takes the caller; cancel: back to the agent; conference: all three in one room */
export type ConsultDecision = 'complete' | 'cancel' | 'conference'

export interface ConsultState {
  /** who consults, on which leg (the leg that was talking to the caller) */
  agentId: string
  agentLegUuid: string
  colleagueId: string
  colleagueEndpoint: string
  /** chosen by Switchboard (origination_uuid) so it can be killed while it still rings */
  colleagueLegUuid: string
  requestedBy: string | null
  /** claiming → (the caller's bridge is broken) holding → ringing → talking → finishing */
  phase: 'claiming' | 'holding' | 'ringing' | 'talking' | 'finishing'
  /** a complete/cancel asked for over HTTP, picked up by the consultation's flow */
  decision: ConsultDecision | null
  /** wakes the consultation's flow when a decision arrives */
  wake: (() => void) | null
}

export interface ConferenceState {
  /** mod_conference room: named after the call, so one call has at most one */
  room: string
  agentId: string
  agentLegUuid: string
  colleagueId: string
  colleagueEndpoint: string
  colleagueLegUuid: string
  requestedBy: string | null
  phase: 'claiming' | 'starting' | 'running' | 'ending'
  /** merged from a consultation: the colleague is already on the call (no originate) */
  colleague: TransferParty | null
}
