import type { Pool } from '../../db/pool.ts'
import { NotFoundError, SwitchboardError } from '../../errors.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { sha256Stream } from '../hash.ts'
import { audit } from './audit.ts'
import { SUMMARY_SELECT, toSummary, type RecordingSummary, type SummaryRow } from './search.ts'

/** One recording with what streaming needs; NotFoundError when there is no such row. */
export interface RecordingDetail extends RecordingSummary { objectKey: string | null; metrics: unknown }

export async function getRecording(pool: Pool, id: string): Promise<RecordingDetail> {
  const r = (await pool.query<SummaryRow & { object_key: string | null; metrics: unknown }>(
    `SELECT ${SUMMARY_SELECT}, r.object_key, r.metrics, c.name AS client_name, e.name AS agent_name FROM recordings r
     LEFT JOIN clients c ON c.id = r.client_id LEFT JOIN employees e ON e.id = r.agent_id WHERE r.id = $1`, [id])).rows[0]
  if (!r) throw new NotFoundError('recording', id)
  return { ...toSummary(r), objectKey: r.object_key, metrics: r.metrics }
}

/** What streaming needs, from one primary-key lookup of recordings alone (no joins). */
export interface AudioFacts { id: string; state: string; objectKey: string | null; codec: string | null; bytes: number | null; sha256: string | null; storedAt: Date | null }

export async function getAudioFacts(pool: Pool, id: string): Promise<AudioFacts> {
  const r = (await pool.query<{ id: string; state: string; object_key: string | null; codec: string | null; bytes: number | null; sha256: string | null; stored_at: Date | null }>(
    'SELECT id, state, object_key, codec, bytes, sha256, stored_at FROM recordings WHERE id = $1', [id])).rows[0]
  if (!r) throw new NotFoundError('recording', id)
  return { id: r.id, state: r.state, objectKey: r.object_key, codec: r.codec, bytes: r.bytes === null ? null : Number(r.bytes), sha256: r.sha256, storedAt: r.stored_at }
}

export class NoAudioError extends SwitchboardError {
  constructor(id: string, state: string) { super('no_audio', `recording ${id} has no audio (state ${state})`, 409, { state }) }
}

/** The object of a stored recording, or a 409 problem for rows without audio (deleted, failed, not yet stored). */
export function audioKeyOf(rec: Pick<RecordingDetail, 'id' | 'state' | 'objectKey'>): string {
  if (rec.state !== 'stored' || !rec.objectKey) throw new NoAudioError(rec.id, rec.state)
  return rec.objectKey
}

export interface TamperVerdict { id: string; ok: boolean; expectedSha256: string | null; actualSha256: string | null; expectedBytes: number | null; actualBytes: number | null; reason?: string }

/** Re-hash the stored object and compare with the SHA-256 recorded at storage; audited either way. */
export async function verifyRecordingIntegrity(deps: { pool: Pool; store: ObjectStore }, id: string, who: { actor: string; ip?: string }): Promise<TamperVerdict> {
  const rec = await getRecording(deps.pool, id)
  const key = audioKeyOf(rec)
  const info = await deps.store.stat(key)
  let verdict: TamperVerdict
  if (!info) {
    verdict = { id, ok: false, expectedSha256: rec.sha256, actualSha256: null, expectedBytes: rec.bytes, actualBytes: null, reason: 'object missing' }
  } else {
    const actual = await sha256Stream(await deps.store.get(key))
    const ok = actual === rec.sha256 && (rec.bytes === null || rec.bytes === info.size)
    verdict = { id, ok, expectedSha256: rec.sha256, actualSha256: actual, expectedBytes: rec.bytes, actualBytes: info.size, ...(ok ? {} : { reason: actual !== rec.sha256 ? 'sha256 differs' : 'size differs' }) }
  }
  await audit(deps.pool, { actor: who.actor, action: verdict.ok ? 'verify.ok' : 'verify.mismatch', recordingId: id, ip: who.ip, details: { ...verdict } })
  return verdict
}
