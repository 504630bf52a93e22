import type { Pool, PoolClient } from '../../db/pool.ts'
import { withTransaction } from '../../db/pool.ts'
import { NotFoundError, SwitchboardError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { audit } from './audit.ts'

/**
 * Legal holds: on one recording, on every recording of a call, or on all of a client's
 * recordings (also those recorded later, while the hold is active — see the trigger in
 * migration 0004). `recordings.legal_hold` is true while any active hold covers the row;
 * the retention sweeper never touches such rows. Where the object store supports S3
 * Object Lock the object gets an object legal hold too; elsewhere that degrades to
 * Switchboard's own flag with a log line.
 */
export type HoldScope = 'recording' | 'call' | 'client'

export interface LegalHold {
  id: number
  scope: HoldScope
  target: string
  reason: string
  caseRef: string
  createdBy: string
  createdAt: string
  liftedAt: string | null
  liftedBy: string | null
  liftReason: string | null
  recordings?: number
}

export interface HoldDeps { pool: Pool; store: ObjectStore; log: Logger }

export class HoldStateError extends SwitchboardError {
  constructor(message: string) { super('legal_hold_state', message, 409) }
}

/** SQL: recordings `r` covered by a hold of this scope on target `param` (index-friendly, one column per scope). */
function covers(scope: HoldScope, param: string): string {
  return scope === 'recording' ? `r.id = ${param}::uuid` : scope === 'call' ? `r.call_uuid = ${param}::uuid` : `r.client_id = ${param}`
}

interface HoldRow { id: number; scope: HoldScope; target: string; reason: string; case_ref: string; created_by: string; created_at: Date; lifted_at: Date | null; lifted_by: string | null; lift_reason: string | null }
function toHold(r: HoldRow): LegalHold {
  return { id: Number(r.id), scope: r.scope, target: r.target, reason: r.reason, caseRef: r.case_ref, createdBy: r.created_by, createdAt: r.created_at.toISOString(), liftedAt: r.lifted_at?.toISOString() ?? null, liftedBy: r.lifted_by, liftReason: r.lift_reason }
}

async function assertTargetExists(db: PoolClient, scope: HoldScope, id: string): Promise<void> {
  const sql = scope === 'recording' ? 'SELECT 1 FROM recordings WHERE id = $1::uuid'
    : scope === 'call' ? 'SELECT 1 FROM calls WHERE uuid = $1::uuid' : 'SELECT 1 FROM clients WHERE id = $1'
  if (!(await db.query(sql, [id])).rowCount) throw new NotFoundError(scope, id)
}

export async function placeHold(deps: HoldDeps, input: { scope: HoldScope; id: string; reason: string; caseRef: string; actor: string; ip?: string }): Promise<LegalHold> {
  const { hold, changed } = await withTransaction(deps.pool, async (db) => {
    await assertTargetExists(db, input.scope, input.id)
    const h = (await db.query<HoldRow>(
      `INSERT INTO legal_holds (scope, target, reason, case_ref, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [input.scope, input.id, input.reason, input.caseRef, input.actor])).rows[0]
    const covered = (await db.query<{ id: string; object_key: string | null; was: boolean }>(
      `WITH hit AS (SELECT r.id, r.legal_hold AS was FROM recordings r WHERE ${covers(input.scope, '$1')} FOR UPDATE OF r)
       UPDATE recordings r SET legal_hold = true FROM hit WHERE r.id = hit.id RETURNING r.id, r.object_key, hit.was`, [input.id])).rows
    await audit(db, { actor: input.actor, action: 'legal_hold.place', subject: `${input.scope}:${input.id}`, ip: input.ip,
      details: { holdId: Number(h.id), reason: input.reason, caseRef: input.caseRef, recordings: covered.map((c) => c.id) } })
    for (const c of covered) {
      await audit(db, { actor: input.actor, action: 'legal_hold.on', recordingId: c.id, ip: input.ip, details: { holdId: Number(h.id), caseRef: input.caseRef } })
    }
    return { hold: { ...toHold(h), recordings: covered.length }, changed: covered.filter((c) => !c.was) }
  })
  await syncObjectHolds(deps, changed, true)
  return hold
}

export async function liftHold(deps: HoldDeps, input: { holdId: number; reason: string; actor: string; ip?: string }): Promise<LegalHold> {
  const { hold, released } = await withTransaction(deps.pool, async (db) => {
    const h = (await db.query<HoldRow>('SELECT * FROM legal_holds WHERE id = $1 FOR UPDATE', [input.holdId])).rows[0]
    if (!h) throw new NotFoundError('legal hold', String(input.holdId))
    if (h.lifted_at) throw new HoldStateError(`legal hold ${input.holdId} was already lifted`)
    const lifted = (await db.query<HoldRow>(
      `UPDATE legal_holds SET lifted_at = now(), lifted_by = $2, lift_reason = $3 WHERE id = $1 RETURNING *`, [input.holdId, input.actor, input.reason])).rows[0]
    // released = covered by this hold and by no other active one
    const released = (await db.query<{ id: string; object_key: string | null }>(
      `UPDATE recordings r SET legal_hold = false
       WHERE ${covers(h.scope, '$1')} AND r.legal_hold
         AND NOT EXISTS (SELECT 1 FROM legal_holds o WHERE o.lifted_at IS NULL AND
           ((o.scope = 'recording' AND o.target = r.id::text) OR (o.scope = 'call' AND o.target = r.call_uuid::text) OR (o.scope = 'client' AND o.target = r.client_id)))
       RETURNING r.id, r.object_key`, [h.target])).rows
    await audit(db, { actor: input.actor, action: 'legal_hold.lift', subject: `${h.scope}:${h.target}`, ip: input.ip,
      details: { holdId: input.holdId, reason: input.reason, caseRef: h.case_ref, released: released.map((r) => r.id) } })
    for (const r of released) {
      await audit(db, { actor: input.actor, action: 'legal_hold.off', recordingId: r.id, ip: input.ip, details: { holdId: input.holdId, caseRef: h.case_ref } })
    }
    return { hold: { ...toHold(lifted), recordings: released.length }, released }
  })
  await syncObjectHolds(deps, released, false)
  return hold
}

async function syncObjectHolds(deps: HoldDeps, rows: Array<{ id: string; object_key: string | null }>, on: boolean): Promise<void> {
  for (const r of rows) {
    if (!r.object_key) continue
    try {
      const applied = await deps.store.setLegalHold(r.object_key, on)
      if (!applied) deps.log.info({ recording_id: r.id, on }, 'object store has no object legal hold: the hold is enforced by Switchboard only')
    } catch (err) {
      deps.log.warn({ err, recording_id: r.id, on }, 'could not set the object legal hold; Switchboard flag still applies')
    }
  }
}

export async function listHolds(pool: Pool, opts: { active?: boolean; caseRef?: string } = {}): Promise<LegalHold[]> {
  const where: string[] = []
  const params: unknown[] = []
  if (opts.active !== undefined) where.push(opts.active ? 'lifted_at IS NULL' : 'lifted_at IS NOT NULL')
  if (opts.caseRef !== undefined) { params.push(opts.caseRef); where.push(`case_ref = $${params.length}`) }
  const r = await pool.query<HoldRow>(`SELECT * FROM legal_holds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT 1000`, params)
  return r.rows.map(toHold)
}

export async function getHold(pool: Pool, id: number): Promise<LegalHold> {
  const h = (await pool.query<HoldRow>('SELECT * FROM legal_holds WHERE id = $1', [id])).rows[0]
  if (!h) throw new NotFoundError('legal hold', String(id))
  const n = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM recordings r WHERE ${covers(h.scope, '$1')}`, [h.target])).rows[0].n
  return { ...toHold(h), recordings: n }
}

/** Recording ids covered by the holds of one case (active or lifted: an export documents the case). */
export async function recordingsOfCase(pool: Pool, caseRef: string): Promise<string[]> {
  const holds = (await pool.query<{ scope: HoldScope; target: string }>('SELECT DISTINCT scope, target FROM legal_holds WHERE case_ref = $1', [caseRef])).rows
  const ids = new Map<string, number>()
  for (const h of holds) {
    const r = await pool.query<{ id: string; created_at: Date }>(`SELECT r.id, r.created_at FROM recordings r WHERE ${covers(h.scope, '$1')} LIMIT 10000`, [h.target])
    for (const x of r.rows) ids.set(x.id, x.created_at.getTime())
  }
  return [...ids.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).map(([id]) => id)
}
