import { rm } from 'node:fs/promises'
import type { Pool, PoolClient } from '../db/pool.ts'
import { withTransaction } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { ObjectStore } from '../recordings/store/object-store.ts'
import { NotFoundError, SwitchboardError } from '../errors.ts'
import { audit } from '../recordings/access/audit.ts'
import { DIRECTORY_CHANNEL } from '../crm/import.ts'

/**
 * Right to erasure for one client (data-protection request). One function computes the
 * plan — exactly what would go — and the real run computes the same plan again inside
 * the transaction that then carries it out (client and recordings locked FOR UPDATE, so
 * nothing moves between planning and deleting): a dry run and the following real run
 * report the same thing unless data changed in between.
 *
 * What goes: the audio objects and rows of the client's recordings (by client or by a
 * call of the client) — except those under an active legal hold, which are kept and
 * listed with every hold's reason and case reference; the client's phone numbers; the
 * card fields (name, INN, region, time zone, segment, manager, attributes); the phone
 * numbers on the client's calls (calls stay for statistics, without number or client);
 * callback tasks; undelivered/kept webhook events about the client. The client row itself
 * is deleted, or — while held recordings still point at it — kept as an id with
 * `erased_at` set and every card field blanked. Recordings still being processed
 * (spooled/transcoding) are listed and kept: run the erasure again once they are stored.
 *
 * The audit chain gets a tombstone: who, when, and counts; no names, numbers or keys.
 * (Earlier audit entries are immutable by design — the hash chain — and carry ids only.)
 */
export interface HoldRef { holdId: number; scope: string; reason: string; caseRef: string }
export interface RecordingToDelete { id: string; state: string; objectKey: string | null; bytes: number; spoolFile: string | null }
export interface RecordingRetained { id: string; state: string; objectKey: string | null; bytes: number; reason: 'legal_hold' | 'in_progress'; holds: HoldRef[] }

export interface ErasurePlan {
  clientId: string
  client: { action: 'delete' | 'anonymise'; fields: string[] }
  phones: string[]
  recordings: { delete: RecordingToDelete[]; retained: RecordingRetained[] }
  calls: { anonymised: number }
  callbacks: { deleted: number }
  webhookEvents: { deleted: number }
  totals: { recordings: number; objects: number; bytes: number; phones: number; cardFields: number; retainedRecordings: number }
}

export interface ErasureResult { dryRun: boolean; plan: ErasurePlan; auditId: number | null; erasedAt: string | null }

export interface ErasureDeps { pool: Pool; store: ObjectStore; log: Logger }

export class ErasureFailedError extends SwitchboardError {
  constructor(message: string, cause: unknown) { super('erasure_failed', `${message}; nothing was changed in the database, run the erasure again`, 503, undefined, { cause }) }
}

type Db = Pick<PoolClient, 'query'>

/** Outbox events about the client: by client id, or by one of its numbers as caller/callee (calls before the number was known). */
const EVENTS_OF_CLIENT = `(data #>> '{client,id}' = $1 OR data #>> '{call,caller}' = ANY($2::text[]) OR data #>> '{call,callee}' = ANY($2::text[]))`

interface ClientRow {
  id: string; name: string; inn: string | null; segment: string | null; kind: string; region: string | null; tz: string | null
  assigned_manager_id: string | null; attributes: Record<string, unknown> | null; erased_at: Date | null
}

function cardFields(c: ClientRow): string[] {
  const out: string[] = []
  if (c.erased_at === null && c.name) out.push('name')
  for (const [k, v] of [['inn', c.inn], ['segment', c.segment], ['region', c.region], ['tz', c.tz], ['assignedManagerId', c.assigned_manager_id]] as const) {
    if (v !== null && v !== '') out.push(k)
  }
  for (const k of Object.keys(c.attributes ?? {}).sort()) out.push(`attributes.${k}`)
  return out
}

/** The plan, read with `db` (a pool for the dry run, the locking transaction for the real run). */
async function plan(db: Db, clientId: string, lock: boolean): Promise<ErasurePlan> {
  const c = (await db.query<ClientRow>(`SELECT id, name, inn, segment, kind, region, tz, assigned_manager_id, attributes, erased_at FROM clients WHERE id = $1 ${lock ? 'FOR UPDATE' : ''}`, [clientId])).rows[0]
  if (!c) throw new NotFoundError('client', clientId)
  const phones = (await db.query<{ phone: string }>('SELECT phone FROM client_phones WHERE client_id = $1 ORDER BY phone', [clientId])).rows.map((r) => r.phone)
  const recs = (await db.query<{ id: string; state: string; object_key: string | null; bytes: string | null; spool_path: string; legal_hold: boolean; holds: HoldRef[] }>(
    `SELECT r.id, r.state, r.object_key, r.bytes::text, r.spool_path, r.legal_hold,
            coalesce((SELECT json_agg(json_build_object('holdId', h.id, 'scope', h.scope, 'reason', h.reason, 'caseRef', h.case_ref) ORDER BY h.id)
                        FROM legal_holds h WHERE h.lifted_at IS NULL AND (
                          (h.scope = 'recording' AND h.target = r.id::text) OR (h.scope = 'call' AND h.target = r.call_uuid::text)
                          OR (h.scope = 'client' AND h.target = r.client_id))), '[]'::json) AS holds
       FROM recordings r
      WHERE r.client_id = $1 OR r.call_uuid IN (SELECT uuid FROM calls WHERE client_id = $1)
      ORDER BY r.created_at, r.id ${lock ? 'FOR UPDATE OF r' : ''}`, [clientId])).rows
  const del: RecordingToDelete[] = []
  const retained: RecordingRetained[] = []
  for (const r of recs) {
    const bytes = r.bytes === null ? 0 : Number(r.bytes)
    const objectKey = r.state === 'deleted' ? null : r.object_key
    if (r.legal_hold || r.holds.length > 0) {
      retained.push({ id: r.id, state: r.state, objectKey, bytes, reason: 'legal_hold', holds: r.holds.map((h) => ({ ...h, holdId: Number(h.holdId) })) })
    } else if (r.state === 'spooled' || r.state === 'transcoding') {
      retained.push({ id: r.id, state: r.state, objectKey, bytes, reason: 'in_progress', holds: [] })
    } else {
      del.push({ id: r.id, state: r.state, objectKey, bytes: objectKey ? bytes : 0, spoolFile: r.state === 'quarantined' || r.state === 'failed' ? r.spool_path : null })
    }
  }
  const keptCalls = [...new Set((await db.query<{ call_uuid: string }>(
    'SELECT DISTINCT call_uuid::text FROM recordings WHERE id = ANY($1::uuid[]) AND call_uuid IS NOT NULL', [retained.map((r) => r.id)])).rows.map((r) => r.call_uuid))]
  const calls = (await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM calls WHERE (client_id = $1 OR caller = ANY($2::text[]) OR callee = ANY($2::text[])) AND NOT (uuid::text = ANY($3::text[]))`,
    [clientId, phones, keptCalls])).rows[0].n
  const callbacks = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM callbacks WHERE client_id = $1 OR phone = ANY($2::text[])', [clientId, phones])).rows[0].n
  const events = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_events WHERE ${EVENTS_OF_CLIENT}`, [clientId, phones])).rows[0].n
  const fields = cardFields(c)
  return {
    clientId,
    client: { action: retained.length > 0 ? 'anonymise' : 'delete', fields },
    phones,
    recordings: { delete: del, retained },
    calls: { anonymised: calls },
    callbacks: { deleted: callbacks },
    webhookEvents: { deleted: events },
    totals: {
      recordings: del.length, objects: del.filter((r) => r.objectKey).length, bytes: del.reduce((s, r) => s + r.bytes, 0),
      phones: phones.length, cardFields: fields.length, retainedRecordings: retained.length,
    },
  }
}

/** What the tombstone says: counts and hold ids, nothing that identifies the person. */
function tombstone(p: ErasurePlan): Record<string, unknown> {
  return {
    clientRow: p.client.action, cardFields: p.totals.cardFields, phones: p.totals.phones, recordingsDeleted: p.totals.recordings,
    objectsDeleted: p.totals.objects, bytesDeleted: p.totals.bytes, callsAnonymised: p.calls.anonymised, callbacksDeleted: p.callbacks.deleted,
    webhookEventsDeleted: p.webhookEvents.deleted, recordingsRetained: p.totals.retainedRecordings,
    retainedUnderHold: p.recordings.retained.filter((r) => r.reason === 'legal_hold').length,
    holdIds: [...new Set(p.recordings.retained.flatMap((r) => r.holds.map((h) => h.holdId)))].sort((a, b) => a - b),
  }
}

export async function eraseClient(deps: ErasureDeps, clientId: string, opts: { dryRun: boolean; actor: string; ip?: string }): Promise<ErasureResult> {
  if (opts.dryRun) {
    const p = await plan(deps.pool, clientId, false)
    const a = await audit(deps.pool, { actor: opts.actor, action: 'erasure.preview', subject: `client:${clientId}`, ip: opts.ip, details: tombstone(p) })
    return { dryRun: true, plan: p, auditId: a.id, erasedAt: null }
  }
  return withTransaction(deps.pool, async (db) => {
    const p = await plan(db, clientId, true)
    // Objects first, inside the transaction: if the store fails, the rows stay and the
    // erasure can simply be run again (deleting a missing object is not an error).
    for (const r of p.recordings.delete) {
      try {
        if (r.objectKey) await deps.store.delete(r.objectKey)
        if (r.spoolFile) await rm(r.spoolFile, { force: true })
      } catch (err) {
        deps.log.error({ err, recording_id: r.id }, 'erasure: could not delete an object')
        throw new ErasureFailedError(`could not delete the audio of recording ${r.id}`, err)
      }
    }
    const deleteIds = p.recordings.delete.map((r) => r.id)
    const keptIds = p.recordings.retained.map((r) => r.id)
    for (const id of deleteIds) await audit(db, { actor: opts.actor, action: 'recording.erased', recordingId: id, ip: opts.ip, details: { reason: 'erasure' } })
    await db.query('DELETE FROM recordings WHERE id = ANY($1::uuid[])', [deleteIds])
    const kept = (await db.query<{ call_uuid: string }>('SELECT DISTINCT call_uuid::text FROM recordings WHERE id = ANY($1::uuid[]) AND call_uuid IS NOT NULL', [keptIds])).rows.map((r) => r.call_uuid)
    await db.query(
      `UPDATE calls SET caller = CASE WHEN caller = ANY($2::text[]) OR client_id = $1 AND direction = 'inbound' THEN NULL ELSE caller END,
                        callee = CASE WHEN callee = ANY($2::text[]) OR client_id = $1 AND direction IN ('outbound', 'fmc') THEN NULL ELSE callee END,
                        client_id = NULL
        WHERE (client_id = $1 OR caller = ANY($2::text[]) OR callee = ANY($2::text[])) AND NOT (uuid::text = ANY($3::text[]))`,
      [clientId, p.phones, kept])
    await db.query('DELETE FROM callbacks WHERE client_id = $1 OR phone = ANY($2::text[])', [clientId, p.phones])
    await db.query(`DELETE FROM webhook_events WHERE ${EVENTS_OF_CLIENT}`, [clientId, p.phones])
    await db.query('DELETE FROM client_phones WHERE client_id = $1', [clientId])
    if (p.client.action === 'delete') {
      await db.query('DELETE FROM clients WHERE id = $1', [clientId])
    } else {
      await db.query(`UPDATE clients SET name = '[erased]', inn = NULL, segment = NULL, region = NULL, tz = NULL, assigned_manager_id = NULL,
                             attributes = '{}'::jsonb, erased_at = coalesce(erased_at, now()), updated_at = now() WHERE id = $1`, [clientId])
    }
    const a = await audit(db, { actor: opts.actor, action: 'erasure', subject: `client:${clientId}`, ip: opts.ip, details: tombstone(p) })
    // every node drops the erased numbers from its in-memory directory
    await db.query('SELECT pg_notify($1, $2)', [DIRECTORY_CHANNEL, 'erasure'])
    return { dryRun: false, plan: p, auditId: a.id, erasedAt: new Date().toISOString() }
  })
}
