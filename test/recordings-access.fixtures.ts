// Shared fixtures of the recordings-access tests (issue 9): rows + real objects in a real store.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { buildHttpApp } from '../src/http/app.ts'
import type { Pool } from '../src/db/pool.ts'
import { silentLogger } from '../src/log.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import type { ObjectStore } from '../src/recordings/store/object-store.ts'
import { createApiToken, type Role } from '../src/http/auth/tokens.ts'
import { recordingsRoutes } from '../src/http/plugins/recordings.ts'
import { clientsRoutes } from '../src/http/plugins/clients.ts'
import { auditRoutes } from '../src/http/plugins/audit.ts'
import { registerSecurity, type SecurityOptions } from '../src/http/security.ts'

export async function tempFsStore(): Promise<FsObjectStore> {
  const store = new FsObjectStore(await mkdtemp(path.join(tmpdir(), 'sb-access-objects-')))
  await store.init()
  return store
}

export async function seedDirectory(pool: Pool): Promise<void> {
  await pool.query(`INSERT INTO employees (id, name, group_id, role, extension, mobile) VALUES
    ('m1', 'Maria Manager', 'sales', 'manager', '7001', '+79161112233'),
    ('a1', 'Anton Agent', 'sales', 'agent', '7101', NULL),
    ('a2', 'Boris Agent', 'support', 'agent', '7102', NULL)`)
  await pool.query(`INSERT INTO clients (id, name, inn, segment, kind, region, assigned_manager_id) VALUES
    ('c1', 'Acme Trading', '7701234567', 'A', 'client', 'Moscow', 'm1'),
    ('c2', 'Beta%_ Co', '7807654321', 'B', 'supplier', 'SPb', NULL),
    ('c3', 'Acorn Foods', '5401112223', 'C', 'client', 'Novosibirsk', NULL)`)
  await pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74951234567', 'c1'), ('+74957654321', 'c1'), ('+78121112233', 'c2'), ('+73831112233', 'c3')`)
}

export interface RecFacts {
  id?: string
  callUuid?: string
  clientId?: string | null
  agentId?: string | null
  direction?: 'inbound' | 'outbound' | 'internal' | 'fmc'
  caller?: string
  callee?: string
  did?: string
  sourceTag?: string | null
  queueId?: string | null
  outcome?: string
  csat?: number | null
  createdAt?: Date
  durationMs?: number
  ext?: 'opus' | 'mp3' | 'wav'
  size?: number
  body?: Buffer
  state?: string
  retentionUntil?: Date
  metrics?: unknown
  withObject?: boolean
}

export interface Rec { id: string; callUuid: string; key: string; body: Buffer; sha256: string }

/** A call (if new) + a stored recording row + its real object in `store`. */
export async function addRecording(pool: Pool, store: ObjectStore, f: RecFacts = {}): Promise<Rec> {
  const id = f.id ?? randomUUID()
  const callUuid = f.callUuid ?? randomUUID()
  const createdAt = f.createdAt ?? new Date()
  const ext = f.ext ?? 'opus'
  const body = f.body ?? randomBytes(f.size ?? 4096)
  const sha256 = createHash('sha256').update(body).digest('hex')
  const key = `recordings/${createdAt.toISOString().slice(0, 10).replace(/-/g, '/')}/${callUuid}/${id}.${ext}`
  await pool.query(
    `INSERT INTO calls (uuid, direction, caller, callee, did, source_tag, client_id, agent_id, queue_id, started_at, outcome, csat)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (uuid) DO NOTHING`,
    [callUuid, f.direction ?? 'inbound', f.caller ?? '+74951234567', f.callee ?? '7101', f.did ?? '+74951112233', f.sourceTag ?? null,
      f.clientId === undefined ? 'c1' : f.clientId, f.agentId === undefined ? 'a1' : f.agentId, f.queueId === undefined ? 'sales' : f.queueId,
      createdAt, f.outcome ?? 'answered', f.csat === undefined ? 9 : f.csat])
  const durationMs = f.durationMs ?? 60_000
  const metrics = f.metrics ?? { durationMs, overtalkMs: 1000, channels: [{ talkMs: 20_000, silenceMs: durationMs - 20_000, talk: [] }, { talkMs: 25_000, silenceMs: durationMs - 25_000, talk: [] }], silences: [] }
  if (f.withObject !== false) await store.put(key, Readable.from([body]), body.length, { sha256, 'recording-id': id }, ext === 'opus' ? 'audio/ogg' : ext === 'mp3' ? 'audio/mpeg' : 'audio/wav')
  await pool.query(
    `INSERT INTO recordings (id, call_uuid, leg_uuid, client_id, agent_id, spool_path, object_key, codec, channels, duration_ms, bytes, sha256, state, metrics, retention_until, created_at, stored_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 2, $9, $10, $11, $12, $13, $14, $15, $15)`,
    [id, callUuid, randomUUID(), f.clientId === undefined ? 'c1' : f.clientId, f.agentId === undefined ? 'a1' : f.agentId, `/spool/${id}.wav`, key,
      ext === 'wav' ? 'pcm_s16le' : ext, durationMs, body.length, sha256, f.state ?? 'stored', JSON.stringify(metrics),
      f.retentionUntil ?? new Date(createdAt.getTime() + 365 * 86_400_000), createdAt])
  return { id, callUuid, key, body, sha256 }
}

export type Tokens = Record<Role, string>

export async function makeTokens(pool: Pool): Promise<Tokens> {
  const roles: Role[] = ['agent', 'qa', 'supervisor', 'legal', 'admin']
  const out = {} as Tokens
  for (const role of roles) out[role] = await createApiToken(pool, { id: `u-${role}`, name: `User ${role}`, role })
  return out
}

export async function accessApp(pool: Pool, store: ObjectStore, security: SecurityOptions | null = null): Promise<FastifyInstance> {
  const log = silentLogger()
  const routes = [recordingsRoutes({ pool, store, log }), clientsRoutes({ pool }), auditRoutes({ pool })]
  const plugins = security
    // the integrator calls registerSecurity in buildHttpApp; here it wraps our routes in one context
    ? [async (app: FastifyInstance) => { await registerSecurity(app, security); for (const r of routes) await r(app) }]
    : routes
  const app = await buildHttpApp({ log, pool, registry: new Registry(), readiness: [], plugins })
  await app.ready()
  return app
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
