import { EventEmitter } from 'node:events'

/**
 * In-process live events of one Switchboard node: what screen pop, the supervisor's live
 * view, the events stream of click-to-call and the CRM webhooks listen to.
 *
 * Why a plain emitter: these are notifications about things already written (or about to
 * be written) durably elsewhere — calls/legs rows, recordings rows, presence history. A
 * listener that needs a durable, retried delivery (webhooks) copies the event into its own
 * Postgres outbox; a listener that is slow must not block the call, so emit() never
 * awaits and a throwing listener is logged by the bus, never by the call.
 */
export interface CallEventBase {
  callUuid: string
  direction: 'inbound' | 'outbound' | 'internal' | 'fmc'
  caller: string | null
  did: string
  clientId: string | null
  at: string
}

export interface SwitchboardEvents {
  /** the call was identified and routed (before any prompt or ringing) */
  'call.started': CallEventBase & { decision: string; reasons: string[]; sourceTag: string | null }
  /** a call is being offered to (ringing) an employee: screen pop goes out now */
  'call.offered': CallEventBase & { employeeId: string; queueId: string | null; ivrPath: Array<{ menuId: string; label: string; digit: string | null; at: string }> }
  /** a person answered: the conversation starts */
  'call.answered': CallEventBase & { employeeId: string; queueId: string | null }
  /** the call is over and its CDR was handed to the writer */
  'call.ended': CallEventBase & {
    outcome: string; counted: boolean; agentId: string | null; queueId: string | null; billsec: number; talkSec: number
    answeredAt: string | null; connectedAt: string | null; hangupCause: string | null; csat: number | null
    ivrPath: Array<{ menuId: string; label: string; digit: string | null; at: string }>
    /** when the call arrived / was placed, and the recordings it made (ids, for links in webhooks) */
    startedAt?: string; recordingIds?: string[]
  }
  /** progress of a call Switchboard originated (click-to-call, callback): employee first, then the client */
  'call.progress': {
    callUuid: string; stage: CallProgressStage; employeeId: string; callee: string; clientId: string | null
    callbackId: string | null; origin: 'click-to-call' | 'callback' | 'call-plan'; at: string
    cause?: string | null; outcome?: string | null; talkSec?: number
  }
  /**
   * attended transfer: the agent consults a colleague while the caller is on hold.
   * ringing → talking → completed (caller now with the colleague) | cancelled (back to the
   * agent; `reason` says why: asked, no answer, colleague left) | ended (caller hung up)
   */
  'call.consult': CallEventBase & { phase: 'ringing' | 'talking' | 'completed' | 'cancelled' | 'ended'; agentId: string; colleagueId: string; reason: string | null }
  /** three-way conference: started, a participant joined / left / could not be reached, ended */
  'call.conference': CallEventBase & { action: 'started' | 'joined' | 'left' | 'failed' | 'ended'; room: string; employeeId: string | null; reason: string | null }
  /** an agent's presence changed (API, automatic no-answer, wrap-up…) */
  'agent.state': { employeeId: string; state: string; reason: string | null; at: string }
  /** a recording reached the object store, verified */
  'recording.stored': { recordingId: string; callUuid: string | null; legUuid: string | null }
  /** a recording could not be stored (quarantined: broken audio) */
  'recording.failed': { recordingId: string; callUuid: string | null; legUuid: string | null; reason: string }
}

/** originating → employee_answered → client_ringing → answered → ended, or failed (with a cause) at any point. */
export type CallProgressStage = 'originating' | 'employee_answered' | 'client_ringing' | 'answered' | 'ended' | 'failed'

export type SwitchboardEventName = keyof SwitchboardEvents

type Listener<K extends SwitchboardEventName> = (payload: SwitchboardEvents[K]) => void

export class EventBus {
  private readonly emitter = new EventEmitter()
  constructor(private readonly onListenerError: (err: unknown, event: string) => void = () => undefined) {
    // Many SSE clients (500 agents' screen-pop pages) may listen at once.
    this.emitter.setMaxListeners(0)
  }

  on<K extends SwitchboardEventName>(name: K, listener: Listener<K>): () => void {
    const wrapped = (payload: SwitchboardEvents[K]) => {
      try { listener(payload) } catch (err) { this.onListenerError(err, name) }
    }
    this.emitter.on(name, wrapped)
    return () => { this.emitter.off(name, wrapped) }
  }

  emit<K extends SwitchboardEventName>(name: K, payload: SwitchboardEvents[K]): void {
    this.emitter.emit(name, payload)
  }

  listenerCount(name: SwitchboardEventName): number { return this.emitter.listenerCount(name) }
}
