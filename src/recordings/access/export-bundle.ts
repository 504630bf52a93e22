import { ZipFile } from 'yazl'
import type { Readable } from 'node:stream'
import type { Pool } from '../../db/pool.ts'
import { NotFoundError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../store/object-store.ts'
import { HashingStream } from '../hash.ts'
import { audit, auditEntriesById, auditOfRecordings, canonicalJson } from './audit.ts'
import { recordingsOfCase } from './legal-hold.ts'
import { SUMMARY_SELECT, toSummary, type RecordingSummary, type SummaryRow } from './search.ts'
import { createHash } from 'node:crypto'

/**
 * A legal export: one zip, streamed while it is built (audio is stored uncompressed —
 * it is compressed already — and hashed on the way through), containing
 *   audio/<recording id>.<ext>  the stored objects, byte for byte
 *   metadata.json               recordings, calls, holds; per recording the stored SHA-256
 *                               and the SHA-256 of the bytes actually exported
 *   audit.json                  the audit entries of those recordings (each entry's hash
 *                               can be recomputed offline from its content + prev_hash)
 *   manifest.sha256             sha256sum format over every other file
 * `npm run verify-bundle -- file.zip` re-checks it offline.
 */
export interface ExportDeps { pool: Pool; store: ObjectStore; log: Logger }
export type ExportSelector = { callUuid: string } | { caseRef: string }

export interface ExportBundle { filename: string; recordingIds: string[]; stream: Readable }

export const MANIFEST = 'manifest.sha256'

export async function buildExport(deps: ExportDeps, sel: ExportSelector, who: { actor: string; ip?: string }): Promise<ExportBundle> {
  const ids = 'callUuid' in sel
    ? (await deps.pool.query<{ id: string }>('SELECT id FROM recordings WHERE call_uuid = $1 ORDER BY created_at, id', [sel.callUuid])).rows.map((r) => r.id)
    : await recordingsOfCase(deps.pool, sel.caseRef)
  const label = 'callUuid' in sel ? `call ${sel.callUuid}` : `case ${sel.caseRef}`
  if (ids.length === 0) throw new NotFoundError('recordings of', label)

  const rows = (await deps.pool.query<SummaryRow & { object_key: string | null }>(
    `SELECT ${SUMMARY_SELECT}, r.object_key, c.name AS client_name, e.name AS agent_name FROM recordings r
     LEFT JOIN clients c ON c.id = r.client_id LEFT JOIN employees e ON e.id = r.agent_id
     WHERE r.id = ANY($1::uuid[]) ORDER BY r.created_at, r.id`, [ids])).rows
  const callUuids = [...new Set(rows.map((r) => r.call_uuid).filter((x): x is string => !!x))]
  const calls = (await deps.pool.query('SELECT * FROM calls WHERE uuid = ANY($1::uuid[]) ORDER BY started_at', [callUuids])).rows
  const holds = (await deps.pool.query(
    `SELECT * FROM legal_holds WHERE (scope = 'recording' AND target = ANY($1)) OR (scope = 'call' AND target = ANY($2))
       OR (scope = 'client' AND target = ANY($3)) ORDER BY id`,
    [ids, callUuids, [...new Set(rows.map((r) => r.client_id).filter(Boolean))]])).rows

  // the export itself is audited before the excerpt is taken, so the bundle documents its own making
  const bundleEntry = await audit(deps.pool, { actor: who.actor, action: 'export.bundle', subject: label, ip: who.ip, details: { recordings: ids } })
  for (const id of ids) await audit(deps.pool, { actor: who.actor, action: 'export', recordingId: id, ip: who.ip, details: { bundle: bundleEntry.id } })
  const excerpt = await auditOfRecordings(deps.pool, ids)
  const bundleAudit = (await auditEntriesById(deps.pool, [bundleEntry.id]))[0] ?? null

  // object facts first, so a missing object is reported in metadata.json instead of breaking the zip mid-stream
  const present = new Map<string, number>()
  for (const r of rows) {
    if (r.state !== 'stored' || !r.object_key) continue
    const info = await deps.store.stat(r.object_key)
    if (info) present.set(r.id, info.size)
  }

  const zip = new ZipFile()
  const out = zip.outputStream
  const manifest: Array<[string, string]> = []
  const fileHash = (name: string, buf: Buffer) => manifest.push([createHash('sha256').update(buf).digest('hex'), name])

  const produce = async () => {
    const recordings: Array<RecordingSummary & { objectKey: string | null; file: string | null; sha256Exported: string | null; hashMatches: boolean | null; note?: string }> = []
    for (const r of rows) {
      const summary = toSummary(r)
      const size = present.get(r.id)
      if (size === undefined || !r.object_key) {
        recordings.push({ ...summary, objectKey: r.object_key, file: null, sha256Exported: null, hashMatches: null,
          note: r.state === 'stored' ? 'object missing from the store' : `no audio (state ${r.state})` })
        continue
      }
      const file = `audio/${r.id}${extOf(r.object_key)}`
      const hasher = new HashingStream()
      const source = await deps.store.get(r.object_key)
      source.on('error', (err) => hasher.destroy(err))
      zip.addReadStream(source.pipe(hasher), file, { compress: false, mtime: r.created_at, size })
      const digest = await hasher.digest
      manifest.push([digest, file])
      recordings.push({ ...summary, objectKey: r.object_key, file, sha256Exported: digest, hashMatches: digest === r.sha256 })
    }
    const metadata = Buffer.from(JSON.stringify({
      format: 'switchboard-export/1', exportedAt: new Date().toISOString(), exportedBy: who.actor, selector: sel,
      recordings, calls, legalHolds: holds,
    }, null, 2))
    zip.addBuffer(metadata, 'metadata.json', { compress: true })
    fileHash('metadata.json', metadata)
    const auditJson = Buffer.from(JSON.stringify({ hashAlgorithm: 'sha256(prev_hash + canonical_json(entry))', bundleEntry: bundleAudit, entries: excerpt }, null, 2))
    zip.addBuffer(auditJson, 'audit.json', { compress: true })
    fileHash('audit.json', auditJson)
    zip.addBuffer(Buffer.from(manifest.map(([h, n]) => `${h}  ${n}\n`).join('')), MANIFEST, { compress: true })
    zip.end()
  }
  produce().catch((err: unknown) => {
    deps.log.error({ err, selector: canonicalJson(sel) }, 'export bundle failed while streaming')
    out.destroy(err as Error)
  })
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)
  const safe = ('callUuid' in sel ? sel.callUuid : sel.caseRef).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60)
  return { filename: `switchboard-export-${safe}-${stamp}.zip`, recordingIds: ids, stream: out }
}

function extOf(key: string): string {
  const m = /\.[A-Za-z0-9]{1,8}$/.exec(key)
  return m ? m[0] : ''
}
