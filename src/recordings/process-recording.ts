import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Pool, PoolClient } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { RecordingConfig, RetentionConfig } from '../config/switchboard-file.ts'
import { SwitchboardError } from '../errors.ts'
import type { ObjectStore } from './store/object-store.ts'
import type { Spool, SpoolSidecar } from './spool.ts'
import { probeRecording, BrokenAudioError } from './probe.ts'
import { transcode, type OutputFormat } from './transcode.ts'
import { analyseRecording } from './analyse.ts'
import { sha256File, sha256Stream } from './hash.ts'
import { retentionUntil } from './retention.ts'

export interface ProcessDeps {
  pool: Pool
  store: ObjectStore
  spool: Spool
  log: Logger
  recording: () => RecordingConfig
  retention: () => RetentionConfig
}

export type ProcessOutcome = 'stored' | 'already_stored' | 'quarantined' | 'busy' | 'nothing'

export class VerificationError extends SwitchboardError {
  constructor(message: string, details: Record<string, unknown>) {
    super('recording_verification_failed', message, 500, details)
  }
}

const CONTENT_TYPES: Record<OutputFormat, string> = { opus: 'audio/ogg', mp3: 'audio/mpeg', wav: 'audio/wav' }
const EXTENSIONS: Record<OutputFormat, string> = { opus: 'opus', mp3: 'mp3', wav: 'wav' }

/**
 * One spooled recording, from WAV to a verified object and a `stored` row. Idempotent:
 * a run killed at any step and run again produces exactly one object (the key is
 * derived from the recording id) and one row (keyed by the id). A session advisory
 * lock makes sure two workers — on this node or another — never process it at once;
 * the lock dies with the connection if the process is killed.
 */
export async function processRecording(deps: ProcessDeps, id: string): Promise<ProcessOutcome> {
  const lockClient = await deps.pool.connect()
  try {
    const { rows } = await lockClient.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 7)) AS locked', [id])
    if (!rows[0].locked) return 'busy'
    try {
      return await processLocked(deps, id, lockClient)
    } finally {
      await lockClient.query('SELECT pg_advisory_unlock(hashtextextended($1, 7))', [id]).catch(() => undefined)
    }
  } finally {
    lockClient.release()
  }
}

async function processLocked(deps: ProcessDeps, id: string, db: PoolClient): Promise<ProcessOutcome> {
  const { spool, store } = deps
  const log = deps.log.child({ recording_id: id })
  const wavPath = spool.wavPath(id)
  const wavExists = await stat(wavPath).then(() => true, () => false)

  const existing = await db.query<{ state: string; object_key: string | null; sha256: string | null; bytes: number | null }>(
    'SELECT state, object_key, sha256, bytes FROM recordings WHERE id = $1', [id])
  const row = existing.rows[0]
  if (row?.state === 'stored' && row.object_key) {
    // Killed after the row was written but before the spool was cleaned: finish the cleanup only.
    const info = await store.stat(row.object_key)
    if (info && info.size === row.bytes && info.metadata.sha256 === row.sha256) {
      await spool.remove(id)
      return 'already_stored'
    }
  }
  if (!wavExists) return 'nothing'

  const sidecar = (await spool.read(id)) ?? orphanSidecar(id, (await stat(wavPath)).mtime)
  await ensureCallRow(db, sidecar)
  await db.query(
    `INSERT INTO recordings (id, call_uuid, leg_uuid, client_id, agent_id, spool_path, state, paused_spans, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'transcoding', $7, $8)
     ON CONFLICT (id) DO UPDATE SET state = 'transcoding', failure_reason = NULL`,
    [id, sidecar.callUuid, sidecar.legUuid, await existingOrNull(db, 'clients', sidecar.clientId), await existingOrNull(db, 'employees', sidecar.agentId),
      wavPath, JSON.stringify(sidecar.pausedSpans), sidecar.startedAt])

  // 1. is it audio at all? Broken files go to quarantine with the reason, never away.
  let probe
  try {
    probe = await probeRecording(wavPath, { allowTruncated: true })
  } catch (err) {
    if (err instanceof BrokenAudioError) {
      const target = await spool.quarantine(id, err.reason, err.message)
      await db.query(`UPDATE recordings SET state = 'quarantined', failure_reason = $2, spool_path = $3 WHERE id = $1`, [id, `${err.reason}: ${err.message}`, target])
      log.warn({ reason: err.reason, target }, 'recording quarantined')
      return 'quarantined'
    }
    throw err
  }

  // 2. transcode + analyse (analysis on the original: it has the full dynamics)
  const cfg = deps.recording()
  const format = cfg.format as OutputFormat
  const work = spool.workPath(id, EXTENSIONS[format])
  const [out, analysis] = await Promise.all([
    transcode(wavPath, work, { format, bitrateKbps: cfg.bitrateKbps, channels: probe.channels === 2 ? 2 : 1, input: probe }),
    analyseRecording(wavPath, { input: probe }),
  ])

  // 3. upload, streaming with known size, unless a previous run already did
  const sha256 = await sha256File(work)
  const startedAt = new Date(sidecar.startedAt)
  const key = objectKey(startedAt, sidecar.callUuid, id, EXTENSIONS[format])
  const metadata: Record<string, string> = {
    'recording-id': id, sha256,
    'call-uuid': sidecar.callUuid ?? '', 'leg-uuid': sidecar.legUuid ?? '',
    'client-id': ascii(sidecar.clientId), 'agent-id': ascii(sidecar.agentId),
  }
  const before = await store.stat(key)
  if (!(before && before.size === out.bytes && before.metadata.sha256 === sha256)) {
    await store.put(key, createReadStream(work), out.bytes, metadata, CONTENT_TYPES[format])
  }

  // 4. verify what the store really holds: size, recorded hash, and a re-hash of the bytes
  const info = await store.stat(key)
  if (!info || info.size !== out.bytes || info.metadata.sha256 !== sha256) {
    throw new VerificationError('stored object does not match', { key, expected: { size: out.bytes, sha256 }, got: info && { size: info.size, sha256: info.metadata.sha256 } })
  }
  const rehash = await sha256Stream(await store.get(key))
  if (rehash !== sha256) throw new VerificationError('stored object re-hash differs', { key, expected: sha256, got: rehash })

  // 5. the row says stored only now; then the spool file may go
  const until = retentionUntil(startedAt, { callKind: sidecar.direction, queueId: sidecar.queueId, segment: sidecar.segment }, deps.retention())
  if (await store.setRetention(key, until).catch((err) => { log.warn({ err }, 'could not set object retention'); return false })) {
    log.debug({ key, until }, 'object retention set')
  }
  await db.query(
    `UPDATE recordings SET state = 'stored', object_key = $2, codec = $3, channels = $4, duration_ms = $5, bytes = $6,
       sha256 = $7, metrics = $8, retention_until = $9, stored_at = now(), failure_reason = NULL
     WHERE id = $1`,
    [id, key, out.codec, out.channels, Math.round(out.durationMs), out.bytes, sha256, JSON.stringify(analysis), until])
  await spool.remove(id)
  log.info({ key, bytes: out.bytes, duration_ms: out.durationMs, call_uuid: sidecar.callUuid }, 'recording stored and verified')
  return 'stored'
}

export function objectKey(startedAt: Date, callUuid: string | null, id: string, ext: string): string {
  const d = startedAt.toISOString()
  return `recordings/${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/${callUuid ?? 'no-call'}/${id}.${ext}`
}

/** The call's CDR may be missing when its Switchboard died mid-call: rebuild a minimal one from the sidecar. */
async function ensureCallRow(db: PoolClient, s: SpoolSidecar): Promise<void> {
  if (!s.callUuid) return
  await db.query(
    `INSERT INTO calls (uuid, direction, caller, callee, did, started_at, ended_at, outcome)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'unknown') ON CONFLICT (uuid) DO NOTHING`,
    [s.callUuid, s.direction, s.caller, s.callee, s.did, s.startedAt, s.stoppedAt ?? s.startedAt])
}

/** Links must not fail the store step: a client or agent deleted meanwhile is simply not linked. */
async function existingOrNull(db: PoolClient, table: 'clients' | 'employees', id: string | null): Promise<string | null> {
  if (!id) return null
  const r = await db.query(`SELECT 1 FROM ${table} WHERE id = $1`, [id])
  return r.rowCount ? id : null
}

function orphanSidecar(id: string, mtime: Date): SpoolSidecar {
  return { recordingId: id, callUuid: null, legUuid: null, direction: 'inbound', caller: null, callee: null, did: null, clientId: null, agentId: null, queueId: null, segment: null, stereo: true, startedAt: mtime.toISOString(), stoppedAt: mtime.toISOString(), pausedSpans: [] }
}

function ascii(v: string | null): string {
  return v ? encodeURIComponent(v) : ''
}
