import { createHash } from 'node:crypto'
import type { Pool, PoolClient } from '../../db/pool.ts'
import { SwitchboardError } from '../../errors.ts'

/**
 * The audit log, hash-chained: every entry carries the hash of the one before it and
 * its own hash = SHA-256(prev_hash + canonical JSON of the entry). Appends go through
 * the SQL function audit_append() (migration 0004), which takes one advisory lock, reads
 * the chain head, inserts and moves the head in a single statement — concurrent writers on
 * any number of nodes keep one linear chain, and the lock is held for well under a ms.
 */
export const GENESIS_HASH = '0'.repeat(64)

export interface AuditInput {
  actor: string
  action: string
  recordingId?: string | null
  subject?: string | null
  ip?: string | null
  details?: Record<string, unknown>
}

export interface AuditEntry {
  id: number
  at: string
  actor: string
  action: string
  recordingId: string | null
  subject: string | null
  ip: string | null
  details: Record<string, unknown>
  prevHash: string | null
  hash: string | null
}

type Queryable = Pick<Pool | PoolClient, 'query'>

/** JSON with object keys sorted at every depth and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null'
    return JSON.stringify(value) ?? 'null'
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

/** The hashed body of one entry (everything but id, prev_hash and hash). */
export function entryBody(e: Pick<AuditEntry, 'at' | 'actor' | 'action' | 'recordingId' | 'subject' | 'ip' | 'details'>): string {
  return canonicalJson({ at: e.at, actor: e.actor, action: e.action, recordingId: e.recordingId, subject: e.subject, ip: e.ip, details: e.details })
}

export function chainHash(prevHash: string, body: string): string {
  return createHash('sha256').update(prevHash + body, 'utf8').digest('hex')
}

interface PreparedEntry { at: string; actor: string; action: string; recordingId: string | null; subject: string | null; ip: string | null; details: Record<string, unknown>; body: string }

function prepare(input: AuditInput): PreparedEntry {
  const at = new Date().toISOString()
  // round-trip the details through JSON so what is hashed is exactly what jsonb gives back
  const details = JSON.parse(JSON.stringify(input.details ?? {}, (_k, v: unknown) => typeof v === 'string' ? v.replace(/\u0000/g, '\uFFFD') : v)) as Record<string, unknown>
  const entry = { at, actor: input.actor, action: input.action, recordingId: input.recordingId ?? null, subject: input.subject ?? null, ip: input.ip ?? null, details }
  return { ...entry, body: entryBody(entry) }
}

/** Append one entry to the chain; returns its id and hash. Works on a pool or inside a transaction. */
export async function audit(db: Queryable, input: AuditInput): Promise<{ id: number; hash: string }> {
  const e = prepare(input)
  const r = await db.query<{ id: number; hash: string }>('SELECT id, hash FROM audit_append($1, $2, $3, $4, $5, $6, $7, $8)',
    [e.at, e.actor, e.action, e.recordingId, e.subject, e.ip, JSON.stringify(e.details), e.body])
  return { id: Number(r.rows[0].id), hash: r.rows[0].hash }
}

export class AuditBacklogError extends SwitchboardError {
  constructor(pending: number) { super('audit_backlog', `${pending} audit entries are waiting to be written; try again shortly`, 503) }
}

/**
 * Group commit for the audit chain. Every append takes the chain's advisory lock and holds
 * it until its transaction commits, so one-by-one appends are serialised commits (one WAL
 * flush each): 200 simultaneous plays waited ~0.6 s for the last one. Here at most one
 * batch per node is in flight; entries arriving meanwhile are appended together by the
 * next call of audit_append_batch() (migration 0005): one lock, one commit, the same chain
 * and hashes as audit(). Each caller's promise settles when ITS entry is committed (or the
 * batch failed) — nothing is acknowledged before it is durable. The backlog is bounded:
 * beyond `maxPending` appends are refused at once (AuditBacklogError, 503) rather than queued.
 */
export class AuditBatcher {
  private queue: Array<{ e: PreparedEntry; resolve: (v: { id: number; hash: string }) => void; reject: (err: unknown) => void }> = []
  private flushing = false
  private readonly maxBatch: number
  private readonly maxPending: number

  constructor(private readonly pool: Pick<Pool, 'query'>, opts: { maxBatch?: number; maxPending?: number } = {}) {
    this.maxBatch = opts.maxBatch ?? 500
    this.maxPending = opts.maxPending ?? 10_000
  }

  get pending(): number { return this.queue.length }

  /** Throws AuditBacklogError (synchronously) when the backlog is full. */
  append(input: AuditInput): Promise<{ id: number; hash: string }> {
    if (this.queue.length >= this.maxPending) throw new AuditBacklogError(this.queue.length)
    const e = prepare(input)
    const p = new Promise<{ id: number; hash: string }>((resolve, reject) => this.queue.push({ e, resolve, reject }))
    if (!this.flushing) {
      this.flushing = true
      setImmediate(() => void this.flush()) // let the entries of this event-loop turn join the first batch
    }
    return p
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch)
        try {
          const col = <K extends keyof PreparedEntry>(k: K) => batch.map((b) => b.e[k])
          const r = await this.pool.query<{ id: number; hash: string }>(
            `SELECT t.id, t.hash FROM audit_append_batch($1::timestamptz[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::jsonb[], $8::text[])
               WITH ORDINALITY AS t(id, hash, n) ORDER BY t.n`,
            [col('at'), col('actor'), col('action'), col('recordingId'), col('subject'), col('ip'), batch.map((b) => JSON.stringify(b.e.details)), col('body')])
          if (r.rows.length !== batch.length) throw new Error(`audit_append_batch returned ${r.rows.length} rows for ${batch.length} entries`)
          batch.forEach((b, i) => b.resolve({ id: Number(r.rows[i].id), hash: r.rows[i].hash }))
        } catch (err) {
          for (const b of batch) b.reject(err)
        }
      }
    } finally {
      this.flushing = false
    }
  }
}

interface AuditRow {
  id: number; at: Date; actor: string; action: string; recording_id: string | null; subject: string | null
  ip: string | null; details: Record<string, unknown>; prev_hash: string | null; hash: string | null
}

function toEntry(r: AuditRow): AuditEntry {
  return { id: Number(r.id), at: r.at.toISOString(), actor: r.actor, action: r.action, recordingId: r.recording_id, subject: r.subject, ip: r.ip, details: r.details, prevHash: r.prev_hash, hash: r.hash }
}

const COLUMNS = 'id, at, actor, action, recording_id, subject, ip, details, prev_hash, hash'

export interface ChainVerdict {
  ok: boolean
  checked: number
  /** first entry whose hash or link is wrong (altered, reordered, or following a removed entry) */
  firstBadId?: number
  reason?: 'hash_mismatch' | 'broken_link' | 'missing_hash' | 'tail_truncated' | 'head_mismatch'
  headId?: number | null
}

/**
 * Walk the whole chain in id order (keyset batches, constant memory): each entry's
 * prev_hash must equal the previous entry's hash and its hash must be recomputable from
 * its content; the last entry must be the recorded head (a removed tail is noticed).
 */
export async function verifyAuditChain(pool: Pool, batch = 5_000): Promise<ChainVerdict> {
  const head = (await pool.query<{ last_id: number | null; hash: string | null; entries: number }>('SELECT last_id, hash, entries FROM audit_chain_head')).rows[0]
  let prev = GENESIS_HASH
  let lastId = 0
  let checked = 0
  for (;;) {
    const rows = (await pool.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2`, [lastId, batch])).rows
    if (rows.length === 0) break
    for (const row of rows) {
      const e = toEntry(row)
      checked++
      if (!e.hash || !e.prevHash) return { ok: false, checked, firstBadId: e.id, reason: 'missing_hash' }
      if (e.prevHash !== prev) return { ok: false, checked, firstBadId: e.id, reason: 'broken_link' }
      if (chainHash(e.prevHash, entryBody(e)) !== e.hash) return { ok: false, checked, firstBadId: e.id, reason: 'hash_mismatch' }
      prev = e.hash
      lastId = e.id
    }
  }
  const headId = head?.last_id === null || head?.last_id === undefined ? null : Number(head.last_id)
  if ((headId ?? 0) !== lastId || (head?.hash ?? GENESIS_HASH) !== prev) {
    const reason = (headId ?? 0) > lastId ? 'tail_truncated' : 'head_mismatch'
    return { ok: false, checked, firstBadId: headId ?? lastId, reason, headId }
  }
  return { ok: true, checked, headId }
}

/** Entries about some recordings, oldest first (bounded). */
export async function auditOfRecordings(db: Queryable, recordingIds: string[], limit = 10_000): Promise<AuditEntry[]> {
  if (recordingIds.length === 0) return []
  const r = await db.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE recording_id = ANY($1::uuid[]) ORDER BY id LIMIT $2`, [recordingIds, limit])
  return r.rows.map(toEntry)
}

/** Recompute one entry's own hash (offline checks of an exported excerpt). */
export function entryHashOk(e: AuditEntry): boolean {
  return !!e.prevHash && !!e.hash && chainHash(e.prevHash, entryBody(e)) === e.hash
}

export async function auditEntriesById(db: Queryable, ids: number[]): Promise<AuditEntry[]> {
  const r = await db.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids])
  return r.rows.map(toEntry)
}

/** Entries about one recording, newest first, keyset-paged by id. */
export async function auditOfRecording(db: Queryable, recordingId: string, opts: { limit: number; beforeId?: number }): Promise<AuditEntry[]> {
  const r = await db.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_log WHERE recording_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
    [recordingId, opts.beforeId ?? null, opts.limit])
  return r.rows.map(toEntry)
}
