/**
 * The per-call record the ERP receives (issue 7): one flat object per counted call, the
 * same facts as a row of the daily CSV. FMC calls carry the manager (the employee whose
 * mobile was anchored), never an anonymous trunk.
 */
export interface ErpCallRecord {
  recordType: 'call'
  callUuid: string
  direction: string
  manager: { id: string; name: string | null } | null
  client: { id: string; name: string | null } | null
  caller: string | null
  callee: string | null
  startedAt: string | null
  answeredAt: string | null
  endedAt: string | null
  talkSec: number
  counted: boolean
  outcome: string | null
  recordingLinks: string[]
}

interface CallEndedData {
  call?: Record<string, unknown> | null
  agent?: { id: string; name: string | null } | null
  client?: { id: string; name: string | null } | null
  recordings?: Array<{ id: string; consoleUrl: string }>
}

/** From the stored call.ended event data (see webhooks/outbox.ts). */
export function erpRecordOf(data: CallEndedData): ErpCallRecord {
  const c = data.call ?? {}
  const s = (k: string) => (typeof c[k] === 'string' ? (c[k] as string) : null)
  return {
    recordType: 'call',
    callUuid: String(c.uuid ?? ''),
    direction: String(c.direction ?? ''),
    manager: data.agent ? { id: data.agent.id, name: data.agent.name } : null,
    client: data.client ? { id: data.client.id, name: data.client.name } : null,
    caller: s('caller'),
    callee: s('callee'),
    startedAt: s('startedAt'),
    answeredAt: s('connectedAt') ?? s('answeredAt'),
    endedAt: s('endedAt'),
    talkSec: typeof c.talkSec === 'number' ? c.talkSec : 0,
    counted: c.counted === true,
    outcome: s('outcome'),
    recordingLinks: (data.recordings ?? []).map((r) => r.consoleUrl),
  }
}
