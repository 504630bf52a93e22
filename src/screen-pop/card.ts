import type { Pool } from '../db/pool.ts'
import type { Client, DirectorySnapshot } from '../crm/directory.ts'

/**
 * The client card an agent sees when a call rings (seeds 002, 004): who is calling, their
 * manager, what happened before (recent calls, recordings, open callbacks) and what the
 * CRM import knows about them (attributes: orders, receivables…). For a number nobody
 * knows: the same history by that number and the "create client" form.
 *
 * Built from Postgres with one query for a known client (every list a LIMITed subselect on
 * an index: calls_client_idx, recordings_client_idx, callbacks_client_open_idx) and at most
 * one more for an unknown number (calls_caller_idx, callbacks_phone_open_idx), so a pop
 * stays within a few milliseconds whatever the size of the history.
 */
export interface CardLimits { recentCalls: number; recordings: number; callbacks: number }

export interface CardCall {
  uuid: string; direction: string; did: string | null; startedAt: string; outcome: string | null
  agentId: string | null; queueId: string | null; billsec: number | null; csat: number | null
}
export interface CardRecording { id: string; callUuid: string | null; durationMs: number | null; createdAt: string; agentId: string | null }
export interface CardCallback { id: number; phone: string; reason: string; state: string; attempts: number; createdAt: string }

export interface KnownCard {
  unknown: false
  /** 'db' = the clients table; 'live' = only the live CRM lookup knows them (not imported yet) */
  source: 'db' | 'live'
  client: {
    id: string; name: string; segment: string | null; kind: string; inn: string | null; region: string | null; tz: string | null
    attributes: Record<string, unknown>
  }
  phones: string[]
  manager: { id: string; name: string; extension: string | null; mobile: string | null; groupId: string | null } | null
  recentCalls: CardCall[]
  recordings: CardRecording[]
  openCallbacks: CardCallback[]
}

export interface UnknownCard {
  unknown: true
  phone: string | null
  recentCalls: CardCall[]
  openCallbacks: CardCallback[]
  createForm: CreateClientForm
}

export type ScreenPopCard = KnownCard | UnknownCard

export interface CreateClientForm {
  method: 'POST'
  url: '/api/clients'
  fields: {
    name: { required: true; maxLength: number }
    segment: { required: false; enum: Array<'A' | 'B' | 'C'> }
    kind: { required: false; enum: Array<'client' | 'supplier' | 'partner' | 'other'>; default: 'client' }
    phone: { required: true; value: string | null }
    attributes: { required: false; type: 'object' }
  }
}

export const CLIENT_NAME_MAX = 200

export function createClientForm(phone: string | null): CreateClientForm {
  return {
    method: 'POST', url: '/api/clients',
    fields: {
      name: { required: true, maxLength: CLIENT_NAME_MAX },
      segment: { required: false, enum: ['A', 'B', 'C'] },
      kind: { required: false, enum: ['client', 'supplier', 'partner', 'other'], default: 'client' },
      phone: { required: true, value: phone },
      attributes: { required: false, type: 'object' },
    },
  }
}

const ISO = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

const CALL_JSON = `json_build_object('uuid', x.uuid, 'direction', x.direction, 'did', x.did, 'startedAt', ${ISO('x.started_at')},
  'outcome', x.outcome, 'agentId', x.agent_id, 'queueId', x.queue_id, 'billsec', x.billsec, 'csat', x.csat)`
const CALLBACK_JSON = `json_build_object('id', b.id, 'phone', b.phone, 'reason', b.reason, 'state', b.state, 'attempts', b.attempts, 'createdAt', ${ISO('b.created_at')})`

/**
 * $1 client id (or NULL), $2 phone (or NULL; used when $1 is NULL), $3 call to leave out
 * of "recent calls" (the one ringing now), $4/$5/$6 limits.
 */
const KNOWN_SQL = `
WITH c AS (
  SELECT * FROM clients WHERE id = coalesce($1::text, (SELECT client_id FROM client_phones WHERE phone = $2::text))
)
SELECT c.id, c.name, c.segment, c.kind, c.inn, c.region, c.tz, c.attributes,
  ARRAY(SELECT p.phone FROM client_phones p WHERE p.client_id = c.id ORDER BY p.phone LIMIT 20) AS phones,
  (SELECT json_build_object('id', m.id, 'name', m.name, 'extension', m.extension, 'mobile', m.mobile, 'groupId', m.group_id)
     FROM employees m WHERE m.id = c.assigned_manager_id) AS manager,
  (SELECT coalesce(json_agg(${CALL_JSON} ORDER BY x.started_at DESC), '[]'::json) FROM (
     SELECT * FROM calls WHERE client_id = c.id AND uuid IS DISTINCT FROM $3::uuid ORDER BY started_at DESC LIMIT $4) x) AS recent_calls,
  (SELECT coalesce(json_agg(json_build_object('id', r.id, 'callUuid', r.call_uuid, 'durationMs', r.duration_ms,
       'createdAt', ${ISO('r.created_at')}, 'agentId', r.agent_id) ORDER BY r.created_at DESC, r.id DESC), '[]'::json) FROM (
     SELECT id, call_uuid, duration_ms, created_at, agent_id FROM recordings
      WHERE client_id = c.id AND state = 'stored' ORDER BY created_at DESC, id DESC LIMIT $5) r) AS recordings,
  (SELECT coalesce(json_agg(${CALLBACK_JSON} ORDER BY b.created_at DESC), '[]'::json) FROM (
     SELECT * FROM callbacks WHERE client_id = c.id AND state IN ('open', 'in_progress') ORDER BY created_at DESC LIMIT $6) b) AS callbacks
FROM c`

const UNKNOWN_SQL = `
SELECT
  (SELECT coalesce(json_agg(${CALL_JSON} ORDER BY x.started_at DESC), '[]'::json) FROM (
     SELECT * FROM calls WHERE caller = $1 AND uuid IS DISTINCT FROM $2::uuid ORDER BY started_at DESC LIMIT $3) x) AS recent_calls,
  (SELECT coalesce(json_agg(${CALLBACK_JSON} ORDER BY b.created_at DESC), '[]'::json) FROM (
     SELECT * FROM callbacks WHERE phone = $1 AND state IN ('open', 'in_progress') ORDER BY created_at DESC LIMIT $4) b) AS callbacks`

interface KnownRow {
  id: string; name: string; segment: string | null; kind: string; inn: string | null; region: string | null; tz: string | null
  attributes: Record<string, unknown> | null; phones: string[]; manager: KnownCard['manager']
  recent_calls: CardCall[]; recordings: CardRecording[]; callbacks: CardCallback[]
}

export interface CardQuery {
  clientId?: string | null
  /** E.164 */
  phone?: string | null
  /** the call ringing now: left out of the history */
  excludeCallUuid?: string | null
}

/**
 * The card for a client id or a phone number. `directory` is the fallback for a client the
 * live CRM lookup identified during this call but who is not in the clients table yet.
 */
export async function loadCard(pool: Pool, q: CardQuery, limits: CardLimits, directory?: () => DirectorySnapshot): Promise<ScreenPopCard> {
  const clientId = q.clientId ?? null
  const phone = q.phone ?? null
  const exclude = q.excludeCallUuid ?? null
  if (clientId !== null || phone !== null) {
    const r = await pool.query<KnownRow>(KNOWN_SQL, [clientId, phone, exclude, limits.recentCalls, limits.recordings, limits.callbacks])
    const row = r.rows[0]
    if (row) return knownCard(row)
    const snapshot = clientId !== null ? directory?.() : undefined
    const live = snapshot?.clients.get(clientId as string)
    if (snapshot && live) return liveCard(live, phone, snapshot)
  }
  if (phone === null) return { unknown: true, phone: null, recentCalls: [], openCallbacks: [], createForm: createClientForm(null) }
  const u = await pool.query<{ recent_calls: CardCall[]; callbacks: CardCallback[] }>(UNKNOWN_SQL, [phone, exclude, limits.recentCalls, limits.callbacks])
  return { unknown: true, phone, recentCalls: u.rows[0].recent_calls, openCallbacks: u.rows[0].callbacks, createForm: createClientForm(phone) }
}

function knownCard(row: KnownRow): KnownCard {
  return {
    unknown: false, source: 'db',
    client: { id: row.id, name: row.name, segment: row.segment, kind: row.kind, inn: row.inn, region: row.region, tz: row.tz, attributes: row.attributes ?? {} },
    phones: row.phones, manager: row.manager, recentCalls: row.recent_calls, recordings: row.recordings, openCallbacks: row.callbacks,
  }
}

function liveCard(c: Client, phone: string | null, directory: DirectorySnapshot): KnownCard {
  const m = c.assignedManagerId ? directory.employees.get(c.assignedManagerId) : undefined
  return {
    unknown: false, source: 'live',
    client: { id: c.id, name: c.name, segment: c.segment, kind: c.kind, inn: c.inn ?? null, region: c.region ?? null, tz: c.tz ?? null, attributes: c.attributes ?? {} },
    phones: phone ? [phone] : [],
    manager: m ? { id: m.id, name: m.name, extension: m.extension ?? null, mobile: m.mobile ?? null, groupId: m.groupId ?? null } : null,
    recentCalls: [], recordings: [], openCallbacks: [],
  }
}
