/** Shapes of the API answers the console reads (see README "API" and src/http/plugins). */
export interface Span { startMs: number; endMs: number }

export interface RecordingSummary {
  id: string; callUuid: string | null; createdAt: string; state: string; codec: string | null; channels: number | null
  durationMs: number | null; bytes: number | null; sha256: string | null; legalHold: boolean; retentionUntil: string | null
  clientId: string | null; clientName: string | null; agentId: string | null; agentName: string | null; direction: string | null
  caller: string | null; callee: string | null; did: string | null; sourceTag: string | null; queueId: string | null
  outcome: string | null; csat: number | null; talkMs: number | null; silenceMs: number | null; overtalkMs: number | null
}

export interface Metrics {
  durationMs?: number
  channels?: Array<{ talkMs: number; silenceMs: number; talk?: Span[] }>
  overtalkMs?: number
  silences?: Span[]
}

export interface RecordingDetail extends RecordingSummary { metrics: Metrics | null }

export interface SearchResult { items: RecordingSummary[]; nextCursor: string | null }

export interface IvrStep { menuId?: string; label?: string; digit?: string | null; at?: string }

export interface CallContext {
  recordingId: string
  pausedSpans: Span[] | null
  call: {
    uuid: string; direction: string; caller: string | null; callee: string | null; did: string | null; sourceTag: string | null
    clientId: string | null; agentId: string | null; queueId: string | null; startedAt: string | null; answeredAt: string | null
    endedAt: string | null; billsec: number | null; hangupCause: string | null; outcome: string | null; counted: boolean
    ivrPath: IvrStep[]; routeReasons: unknown; csat: number | null
  } | null
  legs: Array<{ uuid: string; party: string; endpoint: string | null; employeeId: string | null; employeeName: string | null; startedAt: string | null; answeredAt: string | null; endedAt: string | null; hangupCause: string | null }>
  holds: Hold[] | null
}

export interface Hold { id: number; scope: 'recording' | 'call' | 'client'; target: string; reason: string; caseRef: string; createdBy: string; createdAt: string | null; liftedAt?: string | null }

export interface QaReview { recordingId: string; score: number | null; rubric: Array<{ criterion: string; score: number }>; notes: string; reviewer: string; version: number; createdAt: string; updatedAt: string }

export interface AuditEntry { id: number; at: string; actor: string; action: string; recordingId: string | null; subject: string | null; ip: string | null; details: Record<string, unknown>; hash: string | null }

export interface ClientCard {
  client: { id: string; name: string; inn: string | null; segment: string | null; kind: string; region: string | null; tz: string | null; attributes: unknown; createdAt: string }
  phones: string[]
  manager: { id: string; name: string; group: string | null; extension: string | null; mobile: string | null } | null
  recentCalls: Array<{ uuid: string; direction: string; caller: string | null; callee: string | null; did: string | null; startedAt: string; answeredAt: string | null; endedAt: string | null; billsec: number | null; outcome: string | null; csat: number | null; agentId: string | null; queueId: string | null }>
  recordings: RecordingSummary[]
  callbacks: Array<{ id: number; phone: string; reason: string; state: string; attempts: number; createdAt: string; doneAt: string | null }>
  csat: { average: number | null; count: number }
  stats: { calls: number; recordings: number }
}

/** GET /api/stats/live, event `snapshot` (issue 11 contract) */
export interface LiveSnapshot {
  at: string
  queues: Array<{ id: string; name: string; waiting: number; longestWaitSec: number; agentsReady: number }>
  agents: Array<{ id: string; name: string; state: string; since: string | null; reason: string | null }>
  today: { offered: number; answered: number; abandoned: number; serviceLevelPct: number | null; asaSec: number | null; ahtSec: number | null; csatAvg: number | null }
}
