import type { FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { Role } from '../auth/tokens.ts'
import { NotFoundError, SwitchboardError } from '../../errors.ts'
import { audit } from '../../recordings/access/audit.ts'
import { actorOf, LEGAL_ADMIN, limitUrlLength, QA_UP, UUID_PATTERN } from '../../recordings/access/http-common.ts'

export interface QaReviewRoutesDeps { pool: Pool }

/** Who may read and write QA reviews (legal reviews holds, not conversations). */
export const QA_REVIEWERS: readonly Role[] = ['qa', 'supervisor', 'admin']

const IdParams = Type.Object({ id: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false })
type IdParams = Static<typeof IdParams>

const RubricItem = Type.Object({
  criterion: Type.String({ minLength: 1, maxLength: 100 }),
  score: Type.Integer({ minimum: 0, maximum: 10 }),
}, { additionalProperties: false })

const ReviewBody = Type.Object({
  // a type list, not anyOf: fastify's ajv coerces types, and anyOf [integer, null] would turn null into 0
  score: Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 0, maximum: 100 }),
  rubric: Type.Optional(Type.Array(RubricItem, { maxItems: 30 })),
  notes: Type.Optional(Type.String({ maxLength: 10_000 })),
  /** the version the reviewer loaded (0 = there was no review): a stale write is 409, not a silent overwrite */
  expectedVersion: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
}, { additionalProperties: false })
type ReviewBody = Static<typeof ReviewBody>

export interface QaReview {
  recordingId: string
  score: number | null
  rubric: Array<{ criterion: string; score: number }>
  notes: string
  reviewer: string
  version: number
  createdAt: string
  updatedAt: string
}

export class QaReviewConflictError extends SwitchboardError {
  constructor(expected: number, current: number) {
    super('qa_review_conflict', `the review changed meanwhile (you loaded version ${expected}, it is now ${current}): reload it`, 409, { currentVersion: current })
  }
}

interface ReviewRow { recording_id: string; score: number | null; rubric: QaReview['rubric']; notes: string; reviewer: string; version: number; created_at: Date; updated_at: Date }
const toReview = (r: ReviewRow): QaReview => ({
  recordingId: r.recording_id, score: r.score, rubric: r.rubric, notes: r.notes, reviewer: r.reviewer, version: r.version,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
})

/**
 * QA review of one recording (score 0–100 and/or a rubric, notes; migration 0009) and the
 * call context a reviewer reads beside the player: the call (IVR path, CSAT, outcome), its
 * legs, the recording's masked (paused) spans and — for legal/admin — the active legal holds
 * covering the recording. Every review change is audited.
 */
export function qaReviewRoutes(deps: QaReviewRoutesDeps) {
  async function recordingFacts(id: string): Promise<{ call_uuid: string | null; client_id: string | null; paused_spans: unknown }> {
    const r = (await deps.pool.query<{ call_uuid: string | null; client_id: string | null; paused_spans: unknown }>(
      'SELECT call_uuid, client_id, paused_spans FROM recordings WHERE id = $1', [id])).rows[0]
    if (!r) throw new NotFoundError('recording', id)
    return r
  }

  return async function qaReviewPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)

    app.get<{ Params: IdParams }>('/api/recordings/:id/qa', {
      config: { roles: QA_REVIEWERS },
      schema: { tags: ['qa'], summary: 'The QA review of a recording (null when not reviewed yet)', params: IdParams },
    }, async (req) => {
      await recordingFacts(req.params.id)
      const r = (await deps.pool.query<ReviewRow>('SELECT * FROM qa_reviews WHERE recording_id = $1', [req.params.id])).rows[0]
      return { recordingId: req.params.id, review: r ? toReview(r) : null }
    })

    app.put<{ Params: IdParams; Body: ReviewBody }>('/api/recordings/:id/qa', {
      config: { roles: QA_REVIEWERS },
      schema: { tags: ['qa'], summary: 'Save the QA review of a recording (score 0–100 or null, rubric items 0–10, notes); audited', params: IdParams, body: ReviewBody },
    }, async (req) => {
      const id = req.params.id
      await recordingFacts(id)
      const b = req.body
      const actor = actorOf(req)
      const rubric = JSON.stringify(b.rubric ?? [])
      const notes = b.notes ?? ''
      // one statement: insert, or update only when the expected version still holds
      const r = (await deps.pool.query<ReviewRow>(
        `INSERT INTO qa_reviews AS q (recording_id, score, rubric, notes, reviewer) VALUES ($1, $2, $3::jsonb, $4, $5)
         ON CONFLICT (recording_id) DO UPDATE SET score = EXCLUDED.score, rubric = EXCLUDED.rubric, notes = EXCLUDED.notes,
           reviewer = EXCLUDED.reviewer, version = q.version + 1, updated_at = now()
         WHERE $6::int IS NULL OR q.version = $6::int
         RETURNING *`, [id, b.score, rubric, notes, actor, b.expectedVersion ?? null])).rows[0]
      if (!r) { // the expected version did not hold (0 expected = there must be no review yet)
        const current = (await deps.pool.query<{ version: number }>('SELECT version FROM qa_reviews WHERE recording_id = $1', [id])).rows[0]?.version ?? 0
        throw new QaReviewConflictError(b.expectedVersion ?? 0, current)
      }
      await audit(deps.pool, { actor, action: 'qa_review', recordingId: id, ip: req.ip, details: { score: b.score, rubricItems: b.rubric?.length ?? 0, notesChars: notes.length, version: r.version } })
      return toReview(r)
    })

    app.get<{ Params: IdParams }>('/api/recordings/:id/context', {
      config: { roles: QA_UP },
      schema: { tags: ['qa'], summary: 'The call around a recording: IVR path, CSAT, outcome, legs, masked spans (and active legal holds for legal/admin)', params: IdParams },
    }, async (req) => {
      const rec = await recordingFacts(req.params.id)
      const [call, legs, holds] = await Promise.all([
        rec.call_uuid
          ? deps.pool.query(`SELECT uuid, direction, caller, callee, did, source_tag, client_id, agent_id, queue_id, started_at, answered_at, ended_at,
                billsec, hangup_cause, outcome, counted, ivr_path, route_reasons, csat FROM calls WHERE uuid = $1`, [rec.call_uuid])
          : Promise.resolve({ rows: [] as Array<Record<string, unknown>> }),
        rec.call_uuid
          ? deps.pool.query(`SELECT l.uuid, l.party, l.endpoint, l.employee_id, e.name AS employee_name, l.started_at, l.answered_at, l.ended_at, l.hangup_cause
                FROM legs l LEFT JOIN employees e ON e.id = l.employee_id WHERE l.call_uuid = $1 ORDER BY l.started_at, l.uuid LIMIT 100`, [rec.call_uuid])
          : Promise.resolve({ rows: [] as Array<Record<string, unknown>> }),
        req.principal && LEGAL_ADMIN.includes(req.principal.role)
          ? deps.pool.query(`SELECT id, scope, target, reason, case_ref, created_by, created_at FROM legal_holds
                WHERE lifted_at IS NULL AND ((scope = 'recording' AND target = $1) OR (scope = 'call' AND target = $2) OR (scope = 'client' AND target = $3))
                ORDER BY id`, [req.params.id, rec.call_uuid ?? '', rec.client_id ?? ''])
          : null,
      ])
      const c = call.rows[0] as Record<string, unknown> | undefined
      const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : null)
      return {
        recordingId: req.params.id,
        pausedSpans: rec.paused_spans,
        call: c ? {
          uuid: c.uuid, direction: c.direction, caller: c.caller, callee: c.callee, did: c.did, sourceTag: c.source_tag, clientId: c.client_id,
          agentId: c.agent_id, queueId: c.queue_id, startedAt: iso(c.started_at), answeredAt: iso(c.answered_at), endedAt: iso(c.ended_at),
          billsec: c.billsec, hangupCause: c.hangup_cause, outcome: c.outcome, counted: c.counted, ivrPath: c.ivr_path, routeReasons: c.route_reasons, csat: c.csat,
        } : null,
        legs: legs.rows.map((l: Record<string, unknown>) => ({
          uuid: l.uuid, party: l.party, endpoint: l.endpoint, employeeId: l.employee_id, employeeName: l.employee_name,
          startedAt: iso(l.started_at), answeredAt: iso(l.answered_at), endedAt: iso(l.ended_at), hangupCause: l.hangup_cause,
        })),
        holds: holds ? holds.rows.map((h: Record<string, unknown>) => ({
          id: Number(h.id), scope: h.scope, target: h.target, reason: h.reason, caseRef: h.case_ref, createdBy: h.created_by, createdAt: iso(h.created_at),
        })) : null,
      }
    })
  }
}
