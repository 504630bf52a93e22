import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Transform, type Readable } from 'node:stream'
import { Type, type Static } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../../recordings/store/object-store.ts'
import { NotFoundError, SwitchboardError, ValidationError } from '../../errors.ts'
import { auditOfRecording, AuditBatcher } from '../../recordings/access/audit.ts'
import { searchRecordings, MAX_LIMIT, type SearchFilters } from '../../recordings/access/search.ts'
import { audioKeyOf, getRecording, verifyRecordingIntegrity, type AudioFacts } from '../../recordings/access/recordings.ts'
import { audioContentType, etagMatches, parseRange } from '../../recordings/access/range.ts'
import { getHold, liftHold, listHolds, placeHold } from '../../recordings/access/legal-hold.ts'
import { sweep } from '../../recordings/access/retention-sweeper.ts'
import { buildExport } from '../../recordings/access/export-bundle.ts'
import { actorOf, ID_PATTERN, LEGAL_ADMIN, LEGAL_ONLY, limitUrlLength, QA_UP, UUID_PATTERN, UUID_RE } from '../../recordings/access/http-common.ts'

export interface RecordingsRoutesDeps {
  pool: Pool
  store: ObjectStore
  log: Logger
  /** lifetime of presigned download URLs (default 300 s) */
  presignExpirySec?: number
  /** one `play` audit entry per user and recording per this window (default 600 s): seeks are many requests */
  playAuditWindowSec?: number
  /** group-committing audit writer (one is made when omitted) */
  auditBatcher?: AuditBatcher
}

const IdParams = Type.Object({ id: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false })
type IdParams = Static<typeof IdParams>
const Str = (max = 200) => Type.String({ minLength: 1, maxLength: max })
const Int = (min = 0, max = 2_147_483_647) => Type.Integer({ minimum: min, maximum: max })

const SearchQuery = Type.Object({
  clientId: Type.Optional(Str(128)),
  clientName: Type.Optional(Str(200)),
  inn: Type.Optional(Type.String({ pattern: '^[0-9]{10,12}$' })),
  clientPhone: Type.Optional(Str(32)),
  phone: Type.Optional(Str(32)),
  agent: Type.Optional(Str(128)),
  queue: Type.Optional(Str(128)),
  did: Type.Optional(Str(32)),
  source: Type.Optional(Str(128)),
  direction: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound'), Type.Literal('internal'), Type.Literal('fmc')])),
  callUuid: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
  minDurationMs: Type.Optional(Int()),
  maxDurationMs: Type.Optional(Int()),
  csatMin: Type.Optional(Int(1, 10)),
  csatMax: Type.Optional(Int(1, 10)),
  outcome: Type.Optional(Str(64)),
  minTalkMs: Type.Optional(Int()),
  maxTalkMs: Type.Optional(Int()),
  minSilenceMs: Type.Optional(Int()),
  maxSilenceMs: Type.Optional(Int()),
  minOvertalkMs: Type.Optional(Int()),
  legalHold: Type.Optional(Type.Boolean()),
  state: Type.Optional(Type.Union(['spooled', 'transcoding', 'stored', 'failed', 'quarantined', 'deleted'].map((s) => Type.Literal(s)))),
  limit: Type.Optional(Int(1, MAX_LIMIT)),
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$' })),
}, { additionalProperties: false })

const HoldBody = Type.Object({
  scope: Type.Union([Type.Literal('recording'), Type.Literal('call'), Type.Literal('client')]),
  id: Type.String({ pattern: ID_PATTERN }),
  reason: Str(2000),
  caseRef: Str(200),
}, { additionalProperties: false })
const LiftBody = Type.Object({ reason: Str(2000) }, { additionalProperties: false })
const ExportBody = Type.Union([
  Type.Object({ callUuid: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false }),
  Type.Object({ caseRef: Str(200) }, { additionalProperties: false }),
])

export class PresignUnsupportedError extends SwitchboardError {
  constructor() { super('presign_unsupported', 'this object store cannot issue presigned URLs (filesystem store): stream /audio instead', 409) }
}
export class AudioMissingError extends SwitchboardError {
  constructor(id: string) { super('audio_missing', `the audio object of recording ${id} is missing from the store`, 404) }
}
export class PlayAuditFailedError extends SwitchboardError {
  constructor(id: string, cause: unknown) { super('audit_failed', `the play of recording ${id} could not be audited: stream aborted`, 503, undefined, { cause }) }
}
export class ObjectSizeMismatchError extends SwitchboardError {
  constructor(id: string, expected: number, got: number) { super('object_size_mismatch', `the object of recording ${id} ended after ${got} of ${expected} expected bytes`, 500) }
}

/** QA & legal recording API: search, playback with Range, download URL, tamper check, audit, legal holds, retention preview, exports. */
export function recordingsRoutes(deps: RecordingsRoutesDeps) {
  const presignSec = deps.presignExpirySec ?? 300
  const playWindowMs = (deps.playAuditWindowSec ?? 600) * 1000
  const auditor = deps.auditBatcher ?? new AuditBatcher(deps.pool)
  const recentPlays = new Map<string, { at: number; written: Promise<void> }>()
  const audioFacts = audioFactsLoader(deps.pool)

  /**
   * The `play` entry of a stream, NOT awaited before the first byte (issue 9 target: first
   * byte p99 ≤ 30 ms under 200 concurrent streams; awaiting the chain lock per play cost
   * ~0.6 s). The guarantee is kept differently: the entry is queued before any header is
   * sent (a full audit backlog → 503, nothing streamed), and the body's LAST byte is held
   * back until the entry is committed (see `exactly`). If the append fails, the failure is
   * logged here once and every stream relying on it is aborted mid-body (the client sees a
   * truncated transfer, never a complete unaudited one), and the window entry is dropped so
   * the next request tries again. A client hanging up early was still audited: the append
   * does not depend on the response. Seeks within the window reuse the window's entry (and
   * wait on the same commit).
   */
  function auditPlay(req: FastifyRequest, recordingId: string, details: Record<string, unknown>): Promise<void> {
    const key = `${actorOf(req)}\u0000${recordingId}`
    const now = Date.now()
    const last = recentPlays.get(key)
    if (last !== undefined && now - last.at < playWindowMs) return last.written
    if (recentPlays.size > 50_000) recentPlays.clear()
    const actor = actorOf(req)
    const entry = {
      at: now,
      written: auditor.append({ actor, action: 'play', recordingId, ip: req.ip, details }).then(() => undefined, (err: unknown) => {
        if (recentPlays.get(key) === entry) recentPlays.delete(key)
        deps.log.error({ err, recordingId, actor, ip: req.ip }, 'play audit append failed: streams of this play are aborted')
        throw new PlayAuditFailedError(recordingId, err)
      }),
    }
    entry.written.catch(() => undefined) // handled above (logged); streams waiting on it see the rejection themselves
    recentPlays.set(key, entry)
    return entry.written
  }

  /** The object (or one range of it); a store that has no such object → 404 after asking it. */
  async function openObject(key: string, recordingId: string, span?: { start: number; end: number }): Promise<Readable> {
    try {
      return await deps.store.get(key, span)
    } catch (err) {
      const info = await deps.store.stat(key).catch(() => undefined)
      if (info === null) throw new AudioMissingError(recordingId)
      throw err
    }
  }

  return async function recordingsPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)

    app.get<{ Querystring: SearchFilters }>('/api/recordings', {
      config: { roles: QA_UP },
      schema: { tags: ['recordings'], summary: 'Search recordings (time-desc, keyset pagination with an opaque cursor)', querystring: SearchQuery },
    }, async (req) => {
      const f = req.query
      if (f.from && f.to && new Date(f.from) >= new Date(f.to)) throw new ValidationError('from must be before to')
      const result = await searchRecordings(deps.pool, f)
      const { cursor, ...filters } = f
      // awaited: a list is never answered before its audit entry is committed (group commit, see AuditBatcher)
      await auditor.append({ actor: actorOf(req), action: 'search', ip: req.ip, details: { filters, page: cursor ? 'next' : 'first', count: result.items.length } })
      return result
    })

    app.get<{ Params: IdParams }>('/api/recordings/:id', {
      config: { roles: QA_UP }, schema: { tags: ['recordings'], summary: 'One recording', params: IdParams },
    }, async (req) => {
      const rec = await getRecording(deps.pool, req.params.id)
      await auditor.append({ actor: actorOf(req), action: 'view', recordingId: rec.id, ip: req.ip })
      const { objectKey: _k, ...rest } = rec
      return rest
    })

    app.get<{ Params: IdParams }>('/api/recordings/:id/audio', {
      config: { roles: QA_UP },
      schema: {
        tags: ['recordings'], params: IdParams,
        summary: 'Stream the audio (HTTP Range)',
        description: 'Single ranges `bytes=a-b`, `bytes=a-` and `bytes=-n` → 206 with Content-Range; a range past the end → 416 with `Content-Range: bytes */size`; multi-range requests are answered with the full representation (200). ETag is the recording\'s SHA-256; If-Range and If-None-Match are honoured. One `play` audit entry per user and recording per window, not per seek request.',
      },
    }, async (req, reply) => {
      // one primary-key read; the object is immutable once stored, so its size, ETag (the
      // SHA-256) and Last-Modified (stored_at) come from the row and the store is not asked
      // first. The store is consulted when it disagrees: a missing object → stat → 404, an
      // object shorter than recorded → stream aborted + logged. Rows without those facts
      // (older rows) keep the stat round trip.
      const rec = await audioFacts(req.params.id)
      const key = audioKeyOf(rec)
      let facts: { size: number; etag: string; lastModified: Date }
      if (rec.bytes !== null && rec.sha256 && rec.storedAt) {
        facts = { size: rec.bytes, etag: `"${rec.sha256}"`, lastModified: rec.storedAt }
      } else {
        const info = await deps.store.stat(key)
        if (!info) throw new AudioMissingError(rec.id)
        facts = { size: info.size, etag: rec.sha256 && rec.bytes === info.size ? `"${rec.sha256}"` : info.etag, lastModified: info.lastModified }
      }
      const { size, etag } = facts
      reply.header('Accept-Ranges', 'bytes').header('ETag', etag).header('Cache-Control', 'private, no-cache')
        .header('Last-Modified', facts.lastModified.toUTCString())
      const inm = req.headers['if-none-match']
      if (typeof inm === 'string' && etagMatches(inm, etag, true)) return reply.code(304).send()
      let range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size)
      const ifRange = req.headers['if-range']
      if (range.kind !== 'full' && typeof ifRange === 'string' && !ifRangeHolds(ifRange, etag, facts.lastModified)) range = { kind: 'full' }
      if (range.kind === 'unsatisfiable') {
        reply.header('Content-Range', `bytes */${size}`)
        throw new SwitchboardError('range_not_satisfiable', `range ${String(req.headers.range)} is outside 0-${size - 1}`, 416)
      }
      const span = range.kind === 'partial' ? { start: range.start, end: range.end } : undefined
      const source = await openObject(key, rec.id, span)
      // queued before any header goes out; the body's end waits for the commit (auditPlay)
      let audited: Promise<void>
      try {
        audited = auditPlay(req, rec.id, { range: req.headers.range ?? null })
      } catch (err) {
        source.destroy()
        throw err
      }
      reply.type(audioContentType(key, rec.codec))
      const onShort = (got: number, expected: number) => deps.log.error({ recordingId: rec.id, key, expected, got, recordedBytes: size },
        'object shorter than the recorded size: stream aborted (run POST /verify on this recording)')
      if (range.kind === 'partial') {
        const n = range.end - range.start + 1
        return sendStream(reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`).header('Content-Length', n),
          exactly(source, n, audited, (got) => onShort(got, n), rec.id))
      }
      return sendStream(reply.code(200).header('Content-Length', size), exactly(source, size, audited, (got) => onShort(got, size), rec.id))
    })

    app.get<{ Params: IdParams }>('/api/recordings/:id/download-url', {
      config: { roles: QA_UP }, schema: { tags: ['recordings'], summary: 'A short-lived presigned download URL (S3 stores only; 409 on the filesystem store)', params: IdParams },
    }, async (req) => {
      const rec = await getRecording(deps.pool, req.params.id)
      const key = audioKeyOf(rec)
      const url = await deps.store.presignedGetUrl(key, presignSec)
      if (!url) throw new PresignUnsupportedError()
      await auditor.append({ actor: actorOf(req), action: 'download_url', recordingId: rec.id, ip: req.ip, details: { expiresInSec: presignSec } })
      return { url, expiresAt: new Date(Date.now() + presignSec * 1000).toISOString() }
    })

    app.post<{ Params: IdParams }>('/api/recordings/:id/verify', {
      config: { roles: QA_UP }, schema: { tags: ['recordings'], summary: 'Re-hash the stored object and compare with the SHA-256 recorded at storage (tamper check)', params: IdParams },
    }, async (req) => verifyRecordingIntegrity(deps, req.params.id, { actor: actorOf(req), ip: req.ip }))

    app.get<{ Params: IdParams; Querystring: { limit?: number; beforeId?: number } }>('/api/recordings/:id/audit', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['audit'], summary: 'Audit entries of one recording, newest first', params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Int(1, 1000)), beforeId: Type.Optional(Int(1, Number.MAX_SAFE_INTEGER)) }, { additionalProperties: false }) },
    }, async (req) => {
      const rec = await getRecording(deps.pool, req.params.id)
      const entries = await auditOfRecording(deps.pool, rec.id, { limit: req.query.limit ?? 200, beforeId: req.query.beforeId })
      return { recordingId: rec.id, entries }
    })

    // legal holds
    app.get<{ Querystring: { active?: boolean; caseRef?: string } }>('/api/legal-holds', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['legal'], summary: 'Legal holds', querystring: Type.Object({ active: Type.Optional(Type.Boolean()), caseRef: Type.Optional(Str(200)) }, { additionalProperties: false }) },
    }, async (req) => ({ holds: await listHolds(deps.pool, req.query) }))

    app.get<{ Params: { holdId: number } }>('/api/legal-holds/:holdId', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['legal'], summary: 'One legal hold', params: Type.Object({ holdId: Int(1, Number.MAX_SAFE_INTEGER) }, { additionalProperties: false }) },
    }, async (req) => getHold(deps.pool, req.params.holdId))

    app.post<{ Body: Static<typeof HoldBody> }>('/api/legal-holds', {
      config: { roles: LEGAL_ONLY },
      schema: { tags: ['legal'], summary: 'Place a legal hold on a recording, a call or all of a client\'s recordings', body: HoldBody },
    }, async (req, reply) => {
      const b = req.body
      if (b.scope !== 'client' && !UUID_RE.test(b.id)) throw new ValidationError(`id of a ${b.scope} must be a UUID`)
      const hold = await placeHold(deps, { scope: b.scope, id: b.id, reason: b.reason, caseRef: b.caseRef, actor: actorOf(req), ip: req.ip })
      return reply.code(201).send(hold)
    })

    app.delete<{ Params: { holdId: number }; Body: Static<typeof LiftBody> }>('/api/legal-holds/:holdId', {
      config: { roles: LEGAL_ONLY },
      schema: { tags: ['legal'], summary: 'Lift a legal hold (reason required)', params: Type.Object({ holdId: Int(1, Number.MAX_SAFE_INTEGER) }, { additionalProperties: false }), body: LiftBody },
    }, async (req) => liftHold(deps, { holdId: req.params.holdId, reason: req.body.reason, actor: actorOf(req), ip: req.ip }))

    // retention
    app.get<{ Querystring: { limit?: number; at?: string } }>('/api/retention/preview', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['legal'], summary: 'Dry run of the retention sweep: what it would delete now (or at `at`)',
        querystring: Type.Object({ limit: Type.Optional(Int(1, 10_000)), at: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }) },
    }, async (req) => sweep(deps, { dryRun: true, limit: req.query.limit ?? 1000, now: req.query.at ? new Date(req.query.at) : new Date() }))

    // exports
    app.post<{ Body: { callUuid: string } | { caseRef: string } }>('/api/exports', {
      config: { roles: LEGAL_ADMIN },
      schema: { tags: ['legal'], summary: 'Export a call or a legal case as a zip (audio, metadata.json, audit.json, manifest.sha256), streamed', body: ExportBody },
    }, async (req, reply) => {
      const bundle = await buildExport(deps, req.body, { actor: actorOf(req), ip: req.ip })
      reply.type('application/zip').header('Content-Disposition', `attachment; filename="${bundle.filename}"`)
        .header('X-Recording-Count', String(bundle.recordingIds.length)).header('Cache-Control', 'no-store')
      return reply.send(bundle.stream)
    })
  }
}

/**
 * getAudioFacts for many requests at once: lookups that arrive while earlier ones are on
 * their way go to Postgres together as one `id = ANY($1)` query (at most `maxInFlight`
 * queries out at a time; a lone request is sent at once, in the same event-loop turn's
 * batch). Each request still reads its row fresh — nothing is cached, so a hold, a
 * deletion or a new object is seen at once — but 200 players starting together cost a
 * few queries instead of 200 round trips queued on the pool, which was most of the
 * first-byte wait of a 200-request burst on a loaded host.
 */
export function audioFactsLoader(pool: Pick<Pool, 'query'>, opts: { maxBatch?: number; maxInFlight?: number } = {}): (id: string) => Promise<AudioFacts> {
  const maxBatch = opts.maxBatch ?? 500
  const maxInFlight = opts.maxInFlight ?? 2
  type Waiter = { id: string; resolve: (f: AudioFacts) => void; reject: (e: unknown) => void }
  const waiting = new Map<string, Waiter[]>()
  let scheduled = false
  let inFlight = 0
  const schedule = () => {
    if (scheduled || waiting.size === 0 || inFlight >= maxInFlight) return
    scheduled = true
    setImmediate(flush) // the lookups of this event-loop turn join the batch
  }
  const flush = () => {
    scheduled = false
    const batch = new Map<string, Waiter[]>()
    for (const [k, v] of waiting) {
      if (batch.size >= maxBatch) break
      batch.set(k, v)
    }
    for (const k of batch.keys()) waiting.delete(k)
    const ids = [...batch.keys()]
    inFlight++
    pool.query<{ id: string; state: string; object_key: string | null; codec: string | null; bytes: string | number | null; sha256: string | null; stored_at: Date | null }>(
      'SELECT id, state, object_key, codec, bytes, sha256, stored_at FROM recordings WHERE id = ANY($1::uuid[])', [ids]).then((r) => {
      const rows = new Map(r.rows.map((x) => [x.id, x]))
      for (const [key, ws] of batch) {
        const row = rows.get(key)
        for (const w of ws) {
          if (!row) w.reject(new NotFoundError('recording', w.id))
          else w.resolve({ id: row.id, state: row.state, objectKey: row.object_key, codec: row.codec, bytes: row.bytes === null ? null : Number(row.bytes), sha256: row.sha256, storedAt: row.stored_at })
        }
      }
    }, (err: unknown) => { for (const ws of batch.values()) for (const w of ws) w.reject(err) }).finally(() => {
      inFlight--
      schedule()
    })
    schedule()
  }
  return (id: string) => new Promise<AudioFacts>((resolve, reject) => {
    // ids are validated against UUID_PATTERN by the route schema; lower-case, as Postgres
    // prints a uuid, to match the rows that come back
    const key = id.toLowerCase()
    const list = waiting.get(key)
    if (list) list.push({ id, resolve, reject })
    else waiting.set(key, [{ id, resolve, reject }])
    schedule()
  })
}

function ifRangeHolds(ifRange: string, etag: string, lastModified: Date): boolean {
  const v = ifRange.trim()
  if (v.startsWith('"') || v.startsWith('W/')) return etagMatches(v, etag, false)
  const d = Date.parse(v)
  return !Number.isNaN(d) && Math.floor(lastModified.getTime() / 1000) <= Math.floor(d / 1000)
}

function sendStream(reply: FastifyReply, stream: Readable): FastifyReply {
  return reply.send(stream)
}

/**
 * Exactly `n` bytes of `source`: a store that ignores or widens a range (s3rver answers
 * `bytes=0-0` with the whole object) must not make the body disagree with Content-Length,
 * and a source ending early (object shorter than recorded) aborts the response with an
 * error instead of ending it short. The LAST byte is held back until `audited` resolves
 * (a client counts a body complete once Content-Length bytes arrived, so holding back only
 * the end of the stream would not do); if it rejects, the response is aborted one byte
 * short (see auditPlay).
 */
function exactly(source: Readable, n: number, audited: Promise<void>, onShort: (got: number) => void, recordingId: string): Readable {
  let left = n
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left <= 0) return cb()
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk
      left -= part.length
      if (left > 0) return cb(null, part)
      cb(null, part.subarray(0, part.length - 1))
      const last = part.subarray(part.length - 1)
      source.unpipe(this)
      source.destroy()
      audited.then(() => {
        if (!this.destroyed) { this.push(last); this.push(null) }
      }, (err: Error) => this.destroy(err))
    },
    flush(cb) {
      if (left > 0) {
        onShort(n - left)
        return cb(new ObjectSizeMismatchError(recordingId, n, n - left))
      }
      audited.then(() => cb(), (err: Error) => cb(err)) // n = 0: nothing to hold back but the end
    },
  })
  source.on('error', (err) => out.destroy(err))
  out.on('close', () => { if (!source.destroyed) source.destroy() })
  return source.pipe(out)
}
