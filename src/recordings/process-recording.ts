import { createReadStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import type { Pool, PoolClient } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { RecordingConfig, RetentionConfig } from '../config/switchboard-file.ts'
import { SwitchboardError } from '../errors.ts'
import type { ObjectStore } from './store/object-store.ts'
import type { Spool, SpoolSidecar } from './spool.ts'
import { probeRecording, probeWavHeader, BrokenAudioError, type ProbeResult } from './probe.ts'
import { transcode, type OutputFormat } from './transcode.ts'
import { analysePcmFile, analysisPcmArgs, canAnalysePcmFile, createPcmAnalyser } from './analyse.ts'
import { recordingFormat } from './format-policy.ts'
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
  const steps = stepTimer()
  const wavPath = spool.wavPath(id)
  const [wavStat, existing, sidecarRead] = await Promise.all([
    stat(wavPath).catch(() => null),
    db.query<{ state: string; object_key: string | null; sha256: string | null; bytes: number | null }>(
      'SELECT state, object_key, sha256, bytes FROM recordings WHERE id = $1', [id]),
    spool.read(id),
  ])
  const row = existing.rows[0]
  if (row?.state === 'stored' && row.object_key) {
    // Killed after the row was written but before the spool was cleaned: finish the cleanup only.
    const info = await store.stat(row.object_key)
    if (info && info.size === row.bytes && info.metadata.sha256 === row.sha256) {
      await spool.remove(id)
      return 'already_stored'
    }
  }
  if (!wavStat) return 'nothing'

  const sidecar = sidecarRead ?? orphanSidecar(id, wavStat.mtime)
  const facts = { callKind: sidecar.direction, queueId: sidecar.queueId, segment: sidecar.segment }
  const policy = recordingFormat(facts, deps.recording())
  const ext = EXTENSIONS[policy.format]
  const startedAt = new Date(sidecar.startedAt)
  const key = objectKey(startedAt, sidecar.callUuid, id, ext)

  // What does not depend on the audio runs beside the work that does: the rows, and
  // whether a previous (killed) run already uploaded this object. The probe (an ffprobe
  // run) gates the transcode: its facts pick ffmpeg's input arguments.
  const rowsReady = (async () => {
    await ensureCallRow(db, sidecar)
    await db.query(
      `INSERT INTO recordings (id, call_uuid, leg_uuid, client_id, agent_id, spool_path, state, paused_spans, created_at)
       VALUES ($1, $2, $3, (SELECT id FROM clients WHERE id = $4), (SELECT id FROM employees WHERE id = $5), $6, 'transcoding', $7, $8)
       ON CONFLICT (id) DO UPDATE SET state = 'transcoding', failure_reason = NULL`,
      // links must not fail the store step: a client or agent deleted meanwhile is simply not linked
      [id, sidecar.callUuid, sidecar.legUuid, sidecar.clientId, sidecar.agentId, wavPath, JSON.stringify(sidecar.pausedSpans), sidecar.startedAt])
  })()
  const beforeP = store.stat(key)
  // no unhandled rejection while we wait on the probe; both are awaited below
  rowsReady.catch(() => undefined)
  beforeP.catch(() => undefined)

  // 1. is it audio at all? Broken files go to quarantine with the reason, never away.
  // A plain PCM WAV (what FreeSWITCH writes) is known from its header alone: every byte
  // after it is a sample, so ffprobe would add nothing (probe.ts `probeWavHeader`) and is
  // not run. Anything else is asked of ffprobe. A header promising more than the file holds
  // is asked too, but ffmpeg starts from the header's facts beside it; ffprobe's verdict
  // still decides (broken → transcode stopped, quarantine; other facts → redone).
  // 2. transcode + analyse at once. An 8 kHz PCM WAV is analysed straight from the file
  // beside ffmpeg (`analysePcmFile`: no second ffmpeg output to encode, pipe and read
  // back); other inputs get the analysis PCM as a second output of the same ffmpeg run.
  const work = spool.workPath(id, ext)
  const run = (input: ProbeResult, signal?: AbortSignal) => {
    const opts = { format: policy.format, bitrateKbps: policy.bitrateKbps, channels: input.channels === 2 ? 2 as const : 1 as const, input, signal }
    if (canAnalysePcmFile(input)) {
      return Promise.all([transcode(wavPath, work, opts), analysePcmFile(wavPath, input, { signal })])
        .then(([out, analysis]) => ({ out, analysis }))
    }
    const analyser = createPcmAnalyser(input.channels)
    return transcode(wavPath, work, {
      ...opts, pcmTap: { args: analysisPcmArgs(analyser.channels), onData: (chunk) => analyser.push(chunk) },
    }).then((out) => ({ out, analysis: analyser.finish() }))
  }
  const quarantine = async (err: BrokenAudioError): Promise<ProcessOutcome> => {
    await rowsReady
    const target = await spool.quarantine(id, err.reason, err.message)
    await db.query(`UPDATE recordings SET state = 'quarantined', failure_reason = $2, spool_path = $3 WHERE id = $1`, [id, `${err.reason}: ${err.message}`, target])
    log.warn({ reason: err.reason, target }, 'recording quarantined')
    return 'quarantined'
  }
  let early: ProbeResult | undefined
  try {
    early = await probeWavHeader(wavPath, { allowTruncated: true })
  } catch (err) {
    if (err instanceof BrokenAudioError) return quarantine(err)
    throw err
  }
  let result
  if (early && early.header !== 'truncated') {
    steps.mark('probe')
    result = await run(early)
  } else {
    const abort = new AbortController()
    const earlyRun = early ? run(early, abort.signal) : null
    earlyRun?.catch(() => undefined) // awaited below, or abandoned after abort
    let probe: ProbeResult
    try {
      probe = await probeRecording(wavPath, { allowTruncated: true })
    } catch (err) {
      abort.abort()
      await earlyRun?.catch(() => undefined)
      await rm(work, { force: true }) // in case ffmpeg had finished before the verdict
      if (err instanceof BrokenAudioError) return quarantine(err)
      throw err
    }
    steps.mark('probe')
    if (earlyRun && early && sameAudioFacts(early, probe)) {
      result = await earlyRun
    } else {
      if (earlyRun) {
        abort.abort()
        await earlyRun.catch(() => undefined)
        log.warn({ header: early, probe }, 'WAV header and ffprobe disagree; transcoding with ffprobe\'s facts')
      }
      result = await run(probe)
    }
  }
  const { out } = result
  // hold spans (caller on music during a consultation) travel with the QA metrics
  const analysis = { ...result.analysis, ...(sidecar.holdSpans?.length ? { holdSpans: sidecar.holdSpans } : {}) }
  await rowsReady
  steps.mark('transcode')

  // 3. upload, streaming with known size, unless a previous run already did
  const sha256 = await sha256File(work)
  const metadata: Record<string, string> = {
    'recording-id': id, sha256,
    'call-uuid': sidecar.callUuid ?? '', 'leg-uuid': sidecar.legUuid ?? '',
    'client-id': ascii(sidecar.clientId), 'agent-id': ascii(sidecar.agentId),
  }
  const before = await beforeP
  if (!(before && before.size === out.bytes && before.metadata.sha256 === sha256)) {
    await store.put(key, createReadStream(work), out.bytes, metadata, CONTENT_TYPES[policy.format])
  }
  steps.mark('upload')

  // 4. verify what the store really holds: size, recorded hash, and a re-hash of the
  // bytes read back (both asked at once: two round trips to the store become one wait)
  const [info, rehash] = await Promise.all([store.stat(key), store.get(key).then((s) => sha256Stream(s))])
  if (!info || info.size !== out.bytes || info.metadata.sha256 !== sha256) {
    throw new VerificationError('stored object does not match', { key, expected: { size: out.bytes, sha256 }, got: info && { size: info.size, sha256: info.metadata.sha256 } })
  }
  if (rehash !== sha256) throw new VerificationError('stored object re-hash differs', { key, expected: sha256, got: rehash })
  steps.mark('verify')

  // 5. the row says stored only now; then the spool file may go. Object retention is
  // best effort (the row's retention_until and the sweeper are the rule), so it is set
  // beside the row write rather than before it.
  const until = retentionUntil(startedAt, facts, deps.retention())
  await Promise.all([
    store.setRetention(key, until).then(
      (set) => { if (set) log.debug({ key, until }, 'object retention set') },
      (err) => log.warn({ err }, 'could not set object retention')),
    db.query(
      `UPDATE recordings SET state = 'stored', object_key = $2, codec = $3, channels = $4, duration_ms = $5, bytes = $6,
         sha256 = $7, metrics = $8, retention_until = $9, stored_at = now(), failure_reason = NULL
       WHERE id = $1`,
      [id, key, out.codec, out.channels, Math.round(out.durationMs), out.bytes, sha256, JSON.stringify(sidecar.holdSpans?.length ? { ...analysis, holdSpans: sidecar.holdSpans } : analysis), until]),
  ])
  steps.mark('row')
  await spool.remove(id)
  steps.mark('cleanup')
  log.info({ key, format: policy.format, policy: policy.name, bytes: out.bytes, duration_ms: out.durationMs, call_uuid: sidecar.callUuid, started_at_ms: steps.startedAt, steps_ms: steps.result() }, 'recording stored and verified')
  return 'stored'
}

/** The facts ffmpeg's input arguments and the analysis depend on. */
function sameAudioFacts(a: ProbeResult, b: ProbeResult): boolean {
  return a.codec === b.codec && a.channels === b.channels && a.sampleRate === b.sampleRate && a.header === b.header &&
    a.pcm?.dataOffset === b.pcm?.dataOffset && a.pcm?.dataBytes === b.pcm?.dataBytes
}

/** Where a job's time went, for the log line (and for finding latency, issue 8). */
function stepTimer(): { startedAt: number; mark(step: string): void; result(): Record<string, number> } {
  const startedAt = Date.now()
  let last = performance.now()
  const out: Record<string, number> = {}
  return {
    startedAt,
    mark(step) { const now = performance.now(); out[step] = Math.round((now - last) * 10) / 10; last = now },
    result: () => out,
  }
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

function orphanSidecar(id: string, mtime: Date): SpoolSidecar {
  return { recordingId: id, callUuid: null, legUuid: null, direction: 'inbound', caller: null, callee: null, did: null, clientId: null, agentId: null, queueId: null, segment: null, stereo: true, startedAt: mtime.toISOString(), stoppedAt: mtime.toISOString(), pausedSpans: [] }
}

function ascii(v: string | null): string {
  return v ? encodeURIComponent(v) : ''
}
