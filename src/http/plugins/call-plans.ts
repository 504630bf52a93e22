/**
 * Outbound call plans (issue 11) over HTTP:
 *   POST /api/call-plans?name=…[&agentId|queueId][&windowStart&windowEnd][&maxAttempts…][&start=true]
 *        (admin, supervisor) the list as the body — CSV (text/csv), a JSON array
 *        (application/json) or JSON Lines — streamed, size-limited; answers the plan and
 *        every rejected row with its line number and reason (201), or 400/413 for the file.
 *   GET  /api/call-plans, /api/call-plans/:id            plans with progress counts
 *   GET  /api/call-plans/:id/rows                         per-row outcomes (JSON, paged by line)
 *   GET  /api/call-plans/:id/report.csv                   the same for every row, as CSV
 *   POST /api/call-plans/:id/start | pause | cancel       (admin, supervisor)
 * Plan settings travel in the query string so the body stays a plain file streamed to the
 * reader (this plugin's content-type parsers hand the raw stream over, like the CRM import).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import type { Pool } from '../../db/pool.ts'
import type { Logger } from '../../log.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../../crm/directory.ts'
import { endpointOf } from '../../calls/context.ts'
import { NotFoundError, SwitchboardError, ValidationError } from '../../errors.ts'
import { parseWindowTime, type PlanDefaults } from '../../call-plans/rows.ts'
import { readPlanUpload } from '../../call-plans/upload.ts'
import {
  PLAN_STATUSES, ROW_STATUSES, allPlanRows, cancelPlan, createPlan, getPlan, listPlans, pausePlan, planRows, startPlan,
  type PlanStatus, type RowStatus,
} from '../../call-plans/store.ts'
import { reportCsv } from '../../call-plans/report-csv.ts'

export interface CallPlansRoutesDeps {
  pool: Pool
  log: Logger
  config: () => SwitchboardFile
  directory: () => DirectorySnapshot
  /** A plan was started or resumed: poll now rather than at the next interval. */
  onStart?: () => void
  now?: () => Date
}

const STREAM_TYPES = ['text/csv', 'application/csv', 'application/json', 'application/x-ndjson', 'application/jsonl', 'text/plain']
const WRITE_ROLES = ['supervisor', 'admin'] as const
const READ_ROLES = ['supervisor', 'admin'] as const
const IdParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } } as const
const nullable = (type: string) => ({ type: [type, 'null'] })

const Progress = {
  type: 'object',
  properties: Object.fromEntries([...ROW_STATUSES, 'attempts', 'done', 'remaining'].map((k) => [k, { type: 'integer' }])),
} as const
const PlanSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, createdBy: nullable('string'), status: { type: 'string', enum: PLAN_STATUSES },
    agentId: nullable('string'), queueId: nullable('string'), windowStart: nullable('string'), windowEnd: nullable('string'),
    maxAttempts: { type: 'integer' }, retryDelaySec: { type: 'integer' }, maxConcurrent: nullable('integer'), callerId: nullable('string'),
    rowsTotal: { type: 'integer' }, rowsRejected: { type: 'integer' }, createdAt: { type: 'string' }, startedAt: nullable('string'),
    completedAt: nullable('string'), progress: Progress,
  },
} as const
const Rejection = {
  type: 'object',
  properties: { line: { type: 'integer' }, code: { type: 'string' }, field: { type: 'string' }, value: { type: 'string' }, message: { type: 'string' } },
} as const
const RowSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, line: { type: 'integer' }, clientId: nullable('string'), phoneRaw: nullable('string'), phone: nullable('string'),
    agentId: nullable('string'), queueId: nullable('string'), windowStart: nullable('string'), windowEnd: nullable('string'), note: nullable('string'),
    status: { type: 'string' }, attempts: { type: 'integer' }, nextAttemptAt: nullable('string'), callId: nullable('string'),
    dialledAgentId: nullable('string'), outcome: nullable('string'), lastCause: nullable('string'), talkSec: nullable('integer'),
    lastAttemptAt: nullable('string'), doneAt: nullable('string'),
  },
} as const

interface CreateQuery {
  name: string; agentId?: string; queueId?: string; windowStart?: string; windowEnd?: string
  maxAttempts?: number; retryDelayMin?: number; maxConcurrent?: number; callerId?: string; start?: boolean
}

/** At most this many rejections in the upload answer (all of them are in the report). */
const MAX_REJECTIONS_LISTED = 1000

export function callPlansRoutes(deps: CallPlansRoutesDeps) {
  const now = deps.now ?? (() => new Date())
  return async (app: FastifyInstance): Promise<void> => {
    for (const type of ['application/json', 'text/plain']) if (app.hasContentTypeParser(type)) app.removeContentTypeParser(type)
    app.addContentTypeParser(STREAM_TYPES, (_req, payload, done) => done(null, payload))

    app.post('/api/call-plans', {
      config: { roles: WRITE_ROLES },
      bodyLimit: 512 * 1024 * 1024, // the real limit is callPlans.maxUploadBytes, enforced while reading
      schema: {
        tags: ['call-plans'], summary: 'Upload a call list (CSV, JSON array or JSON Lines) as a new plan; rows are validated one by one',
        description: 'Columns: phone, client_id, agent_id, queue_id, window_start, window_end, note. A row needs a phone or a client, and an agent or queue (its own or the plan\'s). Rejected rows are listed with their line and reason and kept in the report.',
        querystring: {
          type: 'object', additionalProperties: false, required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            agentId: { type: 'string', minLength: 1, maxLength: 100, description: 'who takes rows that name nobody' },
            queueId: { type: 'string', minLength: 1, maxLength: 64, description: 'whose agents take rows that name nobody' },
            windowStart: { type: 'string', maxLength: 40, description: 'ISO 8601; rows without their own window are dialled from then' },
            windowEnd: { type: 'string', maxLength: 40, description: 'ISO 8601; … until then' },
            maxAttempts: { type: 'integer', minimum: 1, maximum: 50 },
            retryDelayMin: { type: 'integer', minimum: 0, maximum: 10080 },
            maxConcurrent: { type: 'integer', minimum: 1, maximum: 1000 },
            callerId: { type: 'string', pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164 number shown to clients (default: the callerId rules)' },
            start: { type: 'boolean', default: false, description: 'start dialling at once (else the plan stays a draft)' },
          },
        },
        consumes: STREAM_TYPES,
        response: {
          201: { type: 'object', properties: { plan: PlanSchema, format: nullable('string'), accepted: { type: 'integer' }, rejected: { type: 'array', items: Rejection }, rejectedCount: { type: 'integer' } } },
        },
      },
    }, async (req: FastifyRequest<{ Querystring: CreateQuery }>, reply) => {
      const cfg = deps.config()
      const dir = deps.directory()
      const q = req.query
      const length = Number(req.headers['content-length'] ?? Number.NaN)
      if (Number.isFinite(length) && length > cfg.callPlans.maxUploadBytes) {
        throw new SwitchboardError('payload_too_large', `the upload is larger than callPlans.maxUploadBytes (${cfg.callPlans.maxUploadBytes} bytes)`, 413, { limit: cfg.callPlans.maxUploadBytes })
      }
      const body = req.body as Readable | undefined
      if (!body || typeof body.on !== 'function') throw new ValidationError('the request body is empty: send the list as text/csv, application/json (an array) or application/x-ndjson')
      const at = now()
      const defaults = planDefaults(q, cfg, dir, at)
      const upload = await readPlanUpload(body, { pool: deps.pool, config: cfg, directory: dir, defaults, now: at })
      const planId = await createPlan(deps.pool, {
        name: q.name, createdBy: req.principal?.userId ?? null, agentId: defaults.agentId, queueId: defaults.queueId,
        windowStart: defaults.windowStart, windowEnd: defaults.windowEnd,
        maxAttempts: q.maxAttempts ?? cfg.callPlans.defaultMaxAttempts, retryDelaySec: (q.retryDelayMin ?? cfg.callPlans.defaultRetryDelayMin) * 60,
        maxConcurrent: q.maxConcurrent ?? null, callerId: q.callerId ?? null,
      }, upload.accepted, upload.rejected, at)
      if (q.start && upload.accepted.length > 0) {
        await startPlan(deps.pool, planId)
        deps.onStart?.()
      }
      req.log.info({ plan_id: planId, accepted: upload.accepted.length, rejected: upload.rejected.length, by: req.principal?.userId }, 'call plan uploaded')
      return reply.code(201).send({
        plan: await getPlan(deps.pool, planId), format: upload.format, accepted: upload.accepted.length,
        rejected: upload.rejected.slice(0, MAX_REJECTIONS_LISTED).map((r) => r.rejection), rejectedCount: upload.rejected.length,
      })
    })

    app.get('/api/call-plans', {
      config: { roles: READ_ROLES },
      schema: {
        tags: ['call-plans'], summary: 'Call plans, newest first, with progress counts',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: { status: { type: 'string', enum: PLAN_STATUSES }, limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 }, beforeId: { type: 'integer', minimum: 1 } },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: PlanSchema }, nextBeforeId: nullable('integer') } } },
      },
    }, async (req: FastifyRequest<{ Querystring: { status?: PlanStatus; limit?: number; beforeId?: number } }>) =>
      listPlans(deps.pool, { status: req.query.status, limit: req.query.limit ?? 50, beforeId: req.query.beforeId }))

    app.get('/api/call-plans/:id', {
      config: { roles: READ_ROLES },
      schema: { tags: ['call-plans'], summary: 'A call plan with its progress counts', params: IdParams, response: { 200: PlanSchema } },
    }, async (req: FastifyRequest<{ Params: { id: string } }>) => getPlan(deps.pool, req.params.id))

    app.get('/api/call-plans/:id/rows', {
      config: { roles: READ_ROLES },
      schema: {
        tags: ['call-plans'], summary: 'Per-row outcomes of a plan in upload order (rejected rows with their reason)',
        params: IdParams,
        querystring: {
          type: 'object', additionalProperties: false,
          properties: { status: { type: 'string', enum: ROW_STATUSES }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 }, afterLine: { type: 'integer', minimum: 0 } },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: RowSchema }, nextAfterLine: nullable('integer') } } },
      },
    }, async (req: FastifyRequest<{ Params: { id: string }; Querystring: { status?: RowStatus; limit?: number; afterLine?: number } }>) => {
      await getPlan(deps.pool, req.params.id)
      return planRows(deps.pool, req.params.id, { status: req.query.status, limit: req.query.limit ?? 200, afterLine: req.query.afterLine })
    })

    app.get('/api/call-plans/:id/report.csv', {
      config: { roles: READ_ROLES },
      schema: { tags: ['call-plans'], summary: 'Per-row outcomes of a plan as CSV (every row, streamed)', params: IdParams },
    }, async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
      const plan = await getPlan(deps.pool, req.params.id)
      const filename = `call-plan-${plan.id}.csv`
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${filename}"`)
        .send(Readable.from(reportCsv(allPlanRows(deps.pool, plan.id))))
    })

    const transition = (action: 'start' | 'pause' | 'cancel', run: (pool: Pool, id: string) => Promise<void>, summary: string) =>
      app.post(`/api/call-plans/:id/${action}`, {
        config: { roles: WRITE_ROLES },
        schema: { tags: ['call-plans'], summary, params: IdParams, response: { 200: PlanSchema } },
      }, async (req: FastifyRequest<{ Params: { id: string } }>) => {
        await run(deps.pool, req.params.id)
        req.log.info({ plan_id: req.params.id, action, by: req.principal?.userId }, 'call plan state changed')
        if (action === 'start') deps.onStart?.()
        return getPlan(deps.pool, req.params.id)
      })
    transition('start', startPlan, 'Start (or resume) dialling a plan')
    transition('pause', pausePlan, 'Pause a plan: no new calls start; calls in progress finish')
    transition('cancel', cancelPlan, 'Cancel a plan: rows not yet reached are cancelled; calls in progress finish')
  }
}

/** The plan-level settings from the query string, checked against the directory and config (400 naming the field). */
function planDefaults(q: CreateQuery, cfg: SwitchboardFile, dir: DirectorySnapshot, now: Date): PlanDefaults {
  const office = cfg.offices.find((o) => o.id === cfg.routing.defaultOfficeId) ?? cfg.offices[0]
  const timeZone = cfg.callPlans.timeZone ?? office.tz
  if (q.agentId && q.queueId) throw new ValidationError('give agentId or queueId, not both', { field: 'agentId' })
  if (q.agentId) {
    const e = dir.employees.get(q.agentId)
    if (!e) throw new NotFoundError('employee', q.agentId)
    if (!endpointOf(e, { gateways: cfg.gateways, fmc: cfg.fmc })) throw new ValidationError(`employee ${q.agentId} has neither an extension nor a mobile to ring`, { field: 'agentId' })
  }
  if (q.queueId && !cfg.queues.some((x) => x.id === q.queueId)) throw new NotFoundError('queue', q.queueId)
  const time = (raw: string | undefined, fieldName: string) => {
    if (raw === undefined || raw === '') return null
    const d = parseWindowTime(raw, timeZone)
    if (!d) throw new ValidationError(`${fieldName} ${JSON.stringify(raw)} is not a date-time (ISO 8601, e.g. 2026-11-23T10:00+03:00)`, { field: fieldName })
    return d
  }
  const windowStart = time(q.windowStart, 'windowStart')
  const windowEnd = time(q.windowEnd, 'windowEnd')
  if (windowStart && windowEnd && windowEnd <= windowStart) throw new ValidationError('windowEnd is not after windowStart', { field: 'windowEnd' })
  if (windowEnd && windowEnd <= now) throw new ValidationError(`windowEnd ${windowEnd.toISOString()} is in the past`, { field: 'windowEnd' })
  return { agentId: q.agentId ?? null, queueId: q.queueId ?? null, windowStart, windowEnd, timeZone }
}
