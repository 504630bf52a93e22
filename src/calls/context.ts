import type { CallChannel } from '../esl/call-channel.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot, Employee } from '../crm/directory.ts'
import type { PresenceStore } from '../acd/presence.ts'
import type { Clock, RouteDecision } from '../routing/types.ts'
import type { CdrWriter } from './cdr.ts'
import type { Spool, SpoolSidecar } from '../recordings/spool.ts'
import type { Pool } from '../db/pool.ts'
import type { EventBus, CallEventBase } from '../events/bus.ts'
import { mobileEndpoint, type FmcEndpointConfig } from '../fmc/endpoint.ts'

/** What a call needs from the rest of Switchboard. Built once in server.ts, shared by every call. */
export interface CallDeps {
  log: Logger
  pool: Pool
  cdr: CdrWriter
  spool: Spool
  recordings: { enqueue(id: string): Promise<void>; mayStartOptionalRecording(): boolean }
  directory: () => DirectorySnapshot
  presence: PresenceStore
  config: () => SwitchboardFile
  clock: Clock
  node: string
  /** Identity of a number the directory does not know (live CRM lookup); bounded by its own timeout. */
  lookupUnknown?: (e164: string) => Promise<import('../crm/directory.ts').CallerIdentity>
  /** live events (screen pop, supervisor view, webhooks); absent in some tests */
  events?: EventBus
  /** the ACD shared by every node (waiting list, offers); queue.ts runs a local poll-only one when absent */
  acd?: import('../acd/dispatcher.ts').Acd
}

/** The fields every call event carries. */
export function callEventBase(state: CallState): CallEventBase {
  return { callUuid: state.uuid, direction: state.direction, caller: state.caller, did: state.did, clientId: state.clientId, at: new Date().toISOString() }
}

export interface IvrStep { menuId: string; label: string; digit: string | null; at: string }

/** The facts one call accumulates while its steps run; written to the CDR at the end. */
export interface CallState {
  uuid: string
  caller: string | null
  did: string
  direction: 'inbound' | 'outbound' | 'internal' | 'fmc'
  clientId: string | null
  segment: 'A' | 'B' | 'C' | null
  decision: RouteDecision | EmployeeCallDecision | null
  answeredAt: Date | null
  /** when a person (agent/manager) answered: talk time starts here */
  connectedAt: Date | null
  /** FreeSWITCH's own timestamp (µs) of that first CHANNEL_BRIDGE: talk time is measured on its clock */
  connectedFsUs: number | null
  agentId: string | null
  queueId: string | null
  ivrPath: IvrStep[]
  outcome: string | null
  csat: number | null
  recordingIds: string[]
  /** each recording's sidecar as this call last wrote it to the spool: updated without reading it back */
  sidecars: Map<string, SpoolSidecar>
  /** recordings being started right now (started without waiting, on a bridge): the call's end waits for them */
  recordingStarts: Set<Promise<unknown>>
  /** path of the per-conversation file being recorded now, if any */
  activeConversationRecording: string | null
  /** recordings masked (paused for card data) since this time */
  pausedAtMs: number | null
  /** the leg of the person talking to the caller right now (set while a bridge is up) */
  currentLegUuid: string | null
  /** a blind transfer asked for while that conversation runs: who takes the caller next */
  pendingTransfer: { employeeId: string; requestedBy: string | null } | null
  /** an attended transfer (consultation) in progress: steps/consult.ts */
  consult: import('./transfer-state.ts').ConsultState | null
  /** a three-way conference in progress: steps/conference.ts */
  conference: import('./transfer-state.ts').ConferenceState | null
  /** what transfers did to the call (who handed it to whom), added to the CDR's route reasons */
  transferReasons: string[]
}

/**
 * What Switchboard decided for a call an employee placed (desk-phone outbound, internal,
 * FMC mobile-originated; issues 7 and 13): dial one endpoint, or refuse with a cause.
 * Built by steps/outbound.ts and steps/internal.ts.
 */
export type EmployeeCallDecision = {
  direction: 'outbound' | 'internal' | 'fmc'
  reasons: string[]
  sourceTag: null
} & (
  | { kind: 'dial'; endpoint: string; callerIdNumber: string | null; ringSec: number; calleeEmployeeId: string | null }
  | { kind: 'refuse'; cause: string; reason: string }
)

export interface CallContext {
  channel: CallChannel
  deps: CallDeps
  state: CallState
  log: Logger
}

/**
 * FreeSWITCH dial string of an employee: the desk phone, or the mobile through the FMC
 * gateway for mobile-first employees (issue 7). Without `cfg`: the `fmc` gateway, and
 * mobile-first means "has a mobile and no extension".
 */
export function endpointOf(e: Employee, cfg?: FmcEndpointConfig): string | null {
  return mobileEndpoint(e, cfg) ?? (e.extension ? `user/${e.extension}` : null)
}
