import type { Pool } from '../../db/pool.ts'
import { ValidationError } from '../../errors.ts'
import { normalizePhone } from '../../crm/phone.ts'

/**
 * Recording search for QA and legal. Every filter is a bound parameter (never SQL text),
 * results are time-desc with keyset pagination on (created_at, id): page N costs the same
 * as page 1. The call facts filtered on are denormalised onto `recordings` by triggers
 * (migration 0004) so each typical filter is one backward index range scan.
 */
export interface SearchFilters {
  clientId?: string
  /** prefix of the client's name, case-insensitive */
  clientName?: string
  inn?: string
  /** any phone of the client (client_phones) */
  clientPhone?: string
  /** caller or callee of the call */
  phone?: string
  agent?: string
  queue?: string
  did?: string
  source?: string
  direction?: 'inbound' | 'outbound' | 'internal' | 'fmc'
  from?: string
  to?: string
  minDurationMs?: number
  maxDurationMs?: number
  csatMin?: number
  csatMax?: number
  outcome?: string
  minTalkMs?: number
  maxTalkMs?: number
  minSilenceMs?: number
  maxSilenceMs?: number
  minOvertalkMs?: number
  legalHold?: boolean
  state?: 'spooled' | 'transcoding' | 'stored' | 'failed' | 'quarantined' | 'deleted'
  callUuid?: string
  limit?: number
  cursor?: string
}

export interface RecordingSummary {
  id: string
  callUuid: string | null
  createdAt: string
  state: string
  codec: string | null
  channels: number | null
  durationMs: number | null
  bytes: number | null
  sha256: string | null
  legalHold: boolean
  retentionUntil: string | null
  clientId: string | null
  clientName: string | null
  agentId: string | null
  agentName: string | null
  direction: string | null
  caller: string | null
  callee: string | null
  did: string | null
  sourceTag: string | null
  queueId: string | null
  outcome: string | null
  csat: number | null
  talkMs: number | null
  silenceMs: number | null
  overtalkMs: number | null
}

export interface SearchResult { items: RecordingSummary[]; nextCursor: string | null }

export const MAX_LIMIT = 200
export const DEFAULT_LIMIT = 50

export function encodeCursor(createdUs: string, id: string): string {
  return Buffer.from(`${createdUs}.${id}`, 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): { createdUs: string; id: string } {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : ''
  const m = /^(\d{1,17})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text)
  if (!m) throw new ValidationError('cursor is not one this server issued')
  return { createdUs: m[1], id: m[2] }
}

/** `%`, `_` and `\` in a user's prefix are data, not wildcards. */
export function likePrefix(s: string): string {
  return `${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

function phoneOf(raw: string): string {
  return normalizePhone(raw, 'RU') ?? raw.trim()
}

export const SUMMARY_SELECT = `
  r.id, r.call_uuid, r.created_at, (extract(epoch from r.created_at) * 1000000)::bigint::text AS created_us,
  r.state, r.codec, r.channels, r.duration_ms, r.bytes, r.sha256, r.legal_hold, r.retention_until,
  r.client_id, r.agent_id, r.direction, r.caller, r.callee, r.did, r.source_tag, r.queue_id, r.outcome, r.csat,
  r.talk_ms, r.overtalk_ms`

export interface SummaryRow {
  id: string; call_uuid: string | null; created_at: Date; created_us: string; state: string; codec: string | null
  channels: number | null; duration_ms: number | null; bytes: number | null; sha256: string | null; legal_hold: boolean
  retention_until: Date | null; client_id: string | null; client_name?: string | null; agent_id: string | null; agent_name?: string | null
  direction: string | null; caller: string | null; callee: string | null; did: string | null; source_tag: string | null
  queue_id: string | null; outcome: string | null; csat: number | null; talk_ms: number | null; overtalk_ms: number | null
}

export function toSummary(r: SummaryRow): RecordingSummary {
  return {
    id: r.id, callUuid: r.call_uuid, createdAt: r.created_at.toISOString(), state: r.state, codec: r.codec, channels: r.channels,
    durationMs: r.duration_ms, bytes: r.bytes === null ? null : Number(r.bytes), sha256: r.sha256, legalHold: r.legal_hold,
    retentionUntil: r.retention_until ? r.retention_until.toISOString() : null, clientId: r.client_id, clientName: r.client_name ?? null,
    agentId: r.agent_id, agentName: r.agent_name ?? null, direction: r.direction, caller: r.caller, callee: r.callee, did: r.did,
    sourceTag: r.source_tag, queueId: r.queue_id, outcome: r.outcome, csat: r.csat, talkMs: r.talk_ms,
    silenceMs: r.talk_ms === null || r.duration_ms === null ? null : Math.max(0, r.duration_ms - r.talk_ms), overtalkMs: r.overtalk_ms,
  }
}

/** Build the WHERE clause; every value goes into `params`. Exported for EXPLAIN in the bench. */
export function buildSearch(f: SearchFilters, clientIdsOfPrefix?: string[]): { sql: string; params: unknown[]; limit: number } {
  const params: unknown[] = []
  const where: string[] = []
  const p = (v: unknown) => { params.push(v); return `$${params.length}` }

  if (f.clientId !== undefined) where.push(`r.client_id = ${p(f.clientId)}`)
  // Selective lookups become the row source itself (fenced with OFFSET 0 / UNION ALL so the planner
  // cannot turn them into a filter over a time-ordered scan of the whole table), then sorted.
  let source = 'recordings r'
  // A name prefix resolved to a bounded list of clients: top-N per client, then merged (below).
  const perClient = f.phone === undefined && f.clientName !== undefined && clientIdsOfPrefix !== undefined
  if (f.phone !== undefined) {
    const ph = p(phoneOf(f.phone))
    source = `(SELECT * FROM recordings WHERE caller = ${ph} UNION ALL SELECT * FROM recordings WHERE callee = ${ph} AND caller IS DISTINCT FROM ${ph}) r`
  }
  if (f.clientName !== undefined && clientIdsOfPrefix) {
    if (!perClient) where.push(`r.client_id = ANY(${p(clientIdsOfPrefix)}::text[])`) // else the list drives the LATERAL below
  } else if (f.clientName !== undefined) where.push(`r.client_id IN (SELECT c.id FROM clients c WHERE lower(c.name) LIKE ${p(likePrefix(f.clientName))})`)
  if (f.inn !== undefined) where.push(`r.client_id IN (SELECT c.id FROM clients c WHERE c.inn = ${p(f.inn)})`)
  if (f.clientPhone !== undefined) where.push(`r.client_id IN (SELECT cp.client_id FROM client_phones cp WHERE cp.phone = ${p(phoneOf(f.clientPhone))})`)
  if (f.agent !== undefined) where.push(`r.agent_id = ${p(f.agent)}`)
  if (f.queue !== undefined) where.push(`r.queue_id = ${p(f.queue)}`)
  if (f.did !== undefined) where.push(`r.did = ${p(phoneOf(f.did))}`)
  if (f.source !== undefined) where.push(`r.source_tag = ${p(f.source)}`)
  if (f.direction !== undefined) where.push(`r.direction = ${p(f.direction)}`)
  if (f.callUuid !== undefined) where.push(`r.call_uuid = ${p(f.callUuid)}`)
  if (f.from !== undefined) where.push(`r.created_at >= ${p(dateOf(f.from, 'from'))}`)
  if (f.to !== undefined) where.push(`r.created_at < ${p(dateOf(f.to, 'to'))}`)
  if (f.minDurationMs !== undefined) where.push(`r.duration_ms >= ${p(f.minDurationMs)}`)
  if (f.maxDurationMs !== undefined) where.push(`r.duration_ms <= ${p(f.maxDurationMs)}`)
  if (f.csatMin !== undefined) where.push(`r.csat >= ${p(f.csatMin)}`)
  if (f.csatMax !== undefined) where.push(`r.csat <= ${p(f.csatMax)}`)
  if (f.outcome !== undefined) where.push(`r.outcome = ${p(f.outcome)}`)
  if (f.minTalkMs !== undefined) where.push(`r.talk_ms >= ${p(f.minTalkMs)}`)
  if (f.maxTalkMs !== undefined) where.push(`r.talk_ms <= ${p(f.maxTalkMs)}`)
  if (f.minSilenceMs !== undefined) where.push(`(r.duration_ms - r.talk_ms) >= ${p(f.minSilenceMs)}`)
  if (f.maxSilenceMs !== undefined) where.push(`(r.duration_ms - r.talk_ms) <= ${p(f.maxSilenceMs)}`)
  if (f.minOvertalkMs !== undefined) where.push(`r.overtalk_ms >= ${p(f.minOvertalkMs)}`)
  if (f.legalHold !== undefined) where.push(f.legalHold ? 'r.legal_hold' : 'NOT r.legal_hold')
  if (f.state !== undefined) where.push(`r.state = ${p(f.state)}`)
  if (f.cursor !== undefined) {
    const c = decodeCursor(f.cursor)
    where.push(`(r.created_at, r.id) < (timestamptz 'epoch' + ${p(c.createdUs)}::bigint * interval '1 microsecond', ${p(c.id)}::uuid)`)
  }
  const limit = Math.min(Math.max(f.limit ?? DEFAULT_LIMIT, 1), MAX_LIMIT)
  if (perClient) {
    // Client-name prefix: for each matching client, the newest `limit + 1` keys from
    // recordings_client_idx (client_id, created_at, id) — an index(-only) backward scan
    // that stops after limit + 1 — then the merged top `limit + 1`, and only those rows are
    // read in full. Fetching every recording of every matching client (hundreds of
    // clients × their whole history) and sorting it all was the 81 ms p95 of issue 9.
    const lim = p(limit + 1)
    const sql = `
      SELECT page.*, c.name AS client_name, e.name AS agent_name FROM (
        SELECT ${SUMMARY_SELECT} FROM (
          SELECT k.id FROM unnest(${p(clientIdsOfPrefix)}::text[]) AS cid(client_id)
          CROSS JOIN LATERAL (
            SELECT r.created_at, r.id FROM recordings r
            WHERE r.client_id = cid.client_id${where.length ? ` AND ${where.join(' AND ')}` : ''}
            ORDER BY r.created_at DESC, r.id DESC
            LIMIT ${lim}
          ) k
          ORDER BY k.created_at DESC, k.id DESC
          LIMIT ${lim}
        ) top
        JOIN recordings r ON r.id = top.id
      ) page
      LEFT JOIN clients c ON c.id = page.client_id
      LEFT JOIN employees e ON e.id = page.agent_id
      ORDER BY page.created_at DESC, page.id DESC`
    return { sql, params, limit }
  }
  // one extra row tells whether there is a next page
  const sql = `
    SELECT page.*, c.name AS client_name, e.name AS agent_name FROM (
      SELECT ${SUMMARY_SELECT} FROM ${source}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY r.created_at DESC, r.id DESC
      LIMIT ${p(limit + 1)}
    ) page
    LEFT JOIN clients c ON c.id = page.client_id
    LEFT JOIN employees e ON e.id = page.agent_id
    ORDER BY page.created_at DESC, page.id DESC`
  return { sql, params, limit }
}

function dateOf(s: string, name: string): Date {
  const d = new Date(s)
  if (Number.isNaN(d.getTime())) throw new ValidationError(`${name} is not a date-time`)
  return d
}

/** Up to this many clients matched by a name prefix are resolved first and looked up by index, then sorted. */
export const PREFIX_RESOLVE_MAX = 2_000

export async function searchRecordings(pool: Pool, f: SearchFilters): Promise<SearchResult> {
  let clientIds: string[] | undefined
  if (f.clientName !== undefined) {
    // a narrow prefix: fetch the few matching clients, then (client_id, created_at) index scans beat scanning time order
    const r = await pool.query<{ id: string }>('SELECT id FROM clients WHERE lower(name) LIKE $1 LIMIT $2', [likePrefix(f.clientName), PREFIX_RESOLVE_MAX + 1])
    if (r.rows.length <= PREFIX_RESOLVE_MAX) clientIds = r.rows.map((x) => x.id)
  }
  const { sql, params, limit } = buildSearch(f, clientIds)
  const rows = (await pool.query<SummaryRow>(sql, params)).rows
  const more = rows.length > limit
  const page = more ? rows.slice(0, limit) : rows
  const last = page[page.length - 1]
  return { items: page.map(toSummary), nextCursor: more && last ? encodeCursor(last.created_us, last.id) : null }
}
