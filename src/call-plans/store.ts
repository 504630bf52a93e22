/**
 * Call plans in Postgres: create a plan with its validated rows (rejected ones kept with
 * their reason, so the report covers every line of the upload), move it through its
 * states, and read its progress and per-row report. The dialler (dialler.ts) works the rows.
 *
 *   draft ──start──▶ running ──pause──▶ paused ──start──▶ running ──(no rows left)──▶ completed
 *     └──────────────────┴────cancel─────┴──▶ cancelled (pending rows cancelled; calls in progress finish)
 */
import type { Pool, PoolClient } from '../db/pool.ts'
import { withTransaction } from '../db/pool.ts'
import { NotFoundError, SwitchboardError } from '../errors.ts'
import type { PlanRow, RowRejection } from './rows.ts'

export const PLAN_STATUSES = ['draft', 'running', 'paused', 'completed', 'cancelled'] as const
export type PlanStatus = (typeof PLAN_STATUSES)[number]
export const ROW_STATUSES = ['pending', 'dialling', 'answered', 'no_answer', 'busy', 'failed', 'rejected', 'cancelled', 'expired'] as const
export type RowStatus = (typeof ROW_STATUSES)[number]

export interface PlanSettings {
  name: string
  createdBy: string | null
  agentId: string | null
  queueId: string | null
  windowStart: Date | null
  windowEnd: Date | null
  maxAttempts: number
  retryDelaySec: number
  maxConcurrent: number | null
  callerId: string | null
}

export interface PlanView {
  id: string; name: string; createdBy: string | null; status: PlanStatus
  agentId: string | null; queueId: string | null; windowStart: string | null; windowEnd: string | null
  maxAttempts: number; retryDelaySec: number; maxConcurrent: number | null; callerId: string | null
  rowsTotal: number; rowsRejected: number
  createdAt: string; startedAt: string | null; completedAt: string | null
  progress: Record<RowStatus, number> & { attempts: number; done: number; remaining: number }
}

export interface RowView {
  id: string; line: number; clientId: string | null; phoneRaw: string | null; phone: string | null
  agentId: string | null; queueId: string | null; windowStart: string | null; windowEnd: string | null; note: string | null
  status: RowStatus; attempts: number; nextAttemptAt: string | null; callId: string | null; dialledAgentId: string | null
  outcome: string | null; lastCause: string | null; talkSec: number | null; lastAttemptAt: string | null; doneAt: string | null
}

export class InvalidPlanTransitionError extends SwitchboardError {
  constructor(id: string, from: PlanStatus, action: string) {
    super('invalid_transition', `call plan ${id} is ${from}: it cannot be ${action}`, 409, { id, from, action })
  }
}

const BATCH = 2000
const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null)

/** Write the plan, its accepted rows (pending) and its rejected rows in one transaction. */
export async function createPlan(pool: Pool, s: PlanSettings, rows: readonly PlanRow[], rejected: ReadonlyArray<{ rejection: RowRejection; phoneRaw: string | null; clientId: string | null }>, now: Date = new Date()): Promise<string> {
  return withTransaction(pool, async (c) => {
    const r = await c.query<{ id: string }>(
      `INSERT INTO call_plans (name, created_by, agent_id, queue_id, window_start, window_end, max_attempts, retry_delay_sec, max_concurrent, caller_id, rows_total, rows_rejected)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id::text`,
      [s.name, s.createdBy, s.agentId, s.queueId, s.windowStart, s.windowEnd, s.maxAttempts, s.retryDelaySec, s.maxConcurrent, s.callerId, rows.length + rejected.length, rejected.length])
    const planId = r.rows[0].id
    for (let i = 0; i < rows.length; i += BATCH) {
      const b = rows.slice(i, i + BATCH)
      await c.query(
        `INSERT INTO call_plan_rows (plan_id, line, phone_raw, phone, client_id, agent_id, queue_id, window_start, window_end, note, next_attempt_at)
         SELECT $1, x.line, x.phone_raw, x.phone, x.client_id, x.agent_id, x.queue_id, x.ws, x.we, x.note, coalesce(x.ws, $11)
         FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[])
           AS x(line, phone_raw, phone, client_id, agent_id, queue_id, ws, we, note)`,
        // Due from the window's start, else from the upload (the dialler's clock, which tests set).
        [planId, b.map((x) => x.line), b.map((x) => x.phoneRaw), b.map((x) => x.phone), b.map((x) => x.clientId), b.map((x) => x.agentId),
          b.map((x) => x.queueId), b.map((x) => x.windowStart), b.map((x) => x.windowEnd), b.map((x) => x.note), now])
    }
    for (let i = 0; i < rejected.length; i += BATCH) {
      const b = rejected.slice(i, i + BATCH)
      await c.query(
        `INSERT INTO call_plan_rows (plan_id, line, phone_raw, client_id, status, outcome, last_cause, done_at)
         SELECT $1, x.line, x.phone_raw, x.client_id, 'rejected', x.code, x.message, now()
         FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(line, phone_raw, client_id, code, message)`,
        [planId, b.map((x) => x.rejection.line), b.map((x) => x.phoneRaw), b.map((x) => x.clientId), b.map((x) => x.rejection.code), b.map((x) => x.rejection.message)])
    }
    return planId
  })
}

async function lockPlan(c: PoolClient, id: string): Promise<PlanStatus> {
  const r = await c.query<{ status: PlanStatus }>('SELECT status FROM call_plans WHERE id = $1 FOR UPDATE', [id])
  if (!r.rows[0]) throw new NotFoundError('call plan', id)
  return r.rows[0].status
}

/** draft / paused → running. */
export async function startPlan(pool: Pool, id: string): Promise<void> {
  await withTransaction(pool, async (c) => {
    const from = await lockPlan(c, id)
    if (from === 'running') return
    if (from !== 'draft' && from !== 'paused') throw new InvalidPlanTransitionError(id, from, 'started')
    await c.query(`UPDATE call_plans SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now() WHERE id = $1`, [id])
  })
}

/**
 * running → paused. Takes the plan row's lock, which the dialler holds while it claims a
 * row of this plan: once this returns, no new call of the plan starts (calls in progress finish).
 */
export async function pausePlan(pool: Pool, id: string): Promise<void> {
  await withTransaction(pool, async (c) => {
    const from = await lockPlan(c, id)
    if (from === 'paused') return
    if (from !== 'running' && from !== 'draft') throw new InvalidPlanTransitionError(id, from, 'paused')
    await c.query(`UPDATE call_plans SET status = 'paused', updated_at = now() WHERE id = $1`, [id])
  })
}

/** Any open plan → cancelled; its pending rows are cancelled, rows being dialled finish with their outcome. */
export async function cancelPlan(pool: Pool, id: string): Promise<void> {
  await withTransaction(pool, async (c) => {
    const from = await lockPlan(c, id)
    if (from === 'cancelled') return
    if (from === 'completed') throw new InvalidPlanTransitionError(id, from, 'cancelled')
    await c.query(`UPDATE call_plans SET status = 'cancelled', completed_at = now(), updated_at = now() WHERE id = $1`, [id])
    await c.query(`UPDATE call_plan_rows SET status = 'cancelled', done_at = now() WHERE plan_id = $1 AND status = 'pending'`, [id])
  })
}

/** Running plans with no row left to dial or being dialled → completed. Returns their ids. */
export async function completeFinishedPlans(pool: Pool): Promise<string[]> {
  const r = await pool.query<{ id: string }>(
    `UPDATE call_plans p SET status = 'completed', completed_at = now(), updated_at = now()
     WHERE p.status = 'running' AND NOT EXISTS (SELECT 1 FROM call_plan_rows r WHERE r.plan_id = p.id AND r.status IN ('pending', 'dialling'))
     RETURNING id::text`)
  return r.rows.map((x) => x.id)
}

type PlanDbRow = {
  id: string; name: string; created_by: string | null; status: PlanStatus; agent_id: string | null; queue_id: string | null
  window_start: Date | null; window_end: Date | null; max_attempts: number; retry_delay_sec: number; max_concurrent: number | null
  caller_id: string | null; rows_total: number; rows_rejected: number; created_at: Date; started_at: Date | null; completed_at: Date | null
  counts: Record<string, number> | null; attempts: number
}

const PLAN_SELECT = `
  SELECT p.id::text AS id, p.name, p.created_by, p.status, p.agent_id, p.queue_id, p.window_start, p.window_end, p.max_attempts,
         p.retry_delay_sec, p.max_concurrent, p.caller_id, p.rows_total, p.rows_rejected, p.created_at, p.started_at, p.completed_at,
         (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n FROM call_plan_rows WHERE plan_id = p.id GROUP BY status) s) AS counts,
         (SELECT coalesce(sum(attempts), 0)::int FROM call_plan_rows WHERE plan_id = p.id) AS attempts
  FROM call_plans p`

function planView(r: PlanDbRow): PlanView {
  const counts = Object.fromEntries(ROW_STATUSES.map((s) => [s, r.counts?.[s] ?? 0])) as Record<RowStatus, number>
  const remaining = counts.pending + counts.dialling
  return {
    id: r.id, name: r.name, createdBy: r.created_by, status: r.status, agentId: r.agent_id, queueId: r.queue_id,
    windowStart: iso(r.window_start), windowEnd: iso(r.window_end), maxAttempts: r.max_attempts, retryDelaySec: r.retry_delay_sec,
    maxConcurrent: r.max_concurrent, callerId: r.caller_id, rowsTotal: r.rows_total, rowsRejected: r.rows_rejected,
    createdAt: r.created_at.toISOString(), startedAt: iso(r.started_at), completedAt: iso(r.completed_at),
    progress: { ...counts, attempts: r.attempts, done: r.rows_total - counts.rejected - remaining, remaining },
  }
}

export async function getPlan(pool: Pool, id: string): Promise<PlanView> {
  const r = await pool.query<PlanDbRow>(`${PLAN_SELECT} WHERE p.id = $1`, [id])
  if (!r.rows[0]) throw new NotFoundError('call plan', id)
  return planView(r.rows[0])
}

export async function listPlans(pool: Pool, q: { status?: PlanStatus; limit: number; beforeId?: number }): Promise<{ items: PlanView[]; nextBeforeId: number | null }> {
  const r = await pool.query<PlanDbRow>(
    `${PLAN_SELECT} WHERE ($1::text IS NULL OR p.status = $1) AND ($2::bigint IS NULL OR p.id < $2) ORDER BY p.id DESC LIMIT $3`,
    [q.status ?? null, q.beforeId ?? null, q.limit + 1])
  const page = r.rows.slice(0, q.limit)
  return { items: page.map(planView), nextBeforeId: r.rows.length > q.limit ? Number(page[page.length - 1].id) : null }
}

type RowDbRow = {
  id: string; line: number; client_id: string | null; phone_raw: string | null; phone: string | null; agent_id: string | null; queue_id: string | null
  window_start: Date | null; window_end: Date | null; note: string | null; status: RowStatus; attempts: number; next_attempt_at: Date | null
  call_id: string | null; dialled_agent_id: string | null; outcome: string | null; last_cause: string | null; talk_sec: number | null
  last_attempt_at: Date | null; done_at: Date | null
}

function rowView(r: RowDbRow): RowView {
  const open = r.status === 'pending' || r.status === 'dialling'
  return {
    id: r.id, line: r.line, clientId: r.client_id, phoneRaw: r.phone_raw, phone: r.phone, agentId: r.agent_id, queueId: r.queue_id,
    windowStart: iso(r.window_start), windowEnd: iso(r.window_end), note: r.note, status: r.status, attempts: r.attempts,
    nextAttemptAt: open ? iso(r.next_attempt_at) : null, callId: r.call_id, dialledAgentId: r.dialled_agent_id,
    outcome: r.outcome, lastCause: r.last_cause, talkSec: r.talk_sec, lastAttemptAt: iso(r.last_attempt_at), doneAt: iso(r.done_at),
  }
}

/** Rows of a plan in upload order, paged by line. */
export async function planRows(pool: Pool, planId: string, q: { status?: RowStatus; limit: number; afterLine?: number }): Promise<{ items: RowView[]; nextAfterLine: number | null }> {
  const r = await pool.query<RowDbRow>(
    `SELECT id::text AS id, line, client_id, phone_raw, phone, agent_id, queue_id, window_start, window_end, note, status, attempts, next_attempt_at,
            call_id::text AS call_id, dialled_agent_id, outcome, last_cause, talk_sec, last_attempt_at, done_at
     FROM call_plan_rows WHERE plan_id = $1 AND ($2::text IS NULL OR status = $2) AND line > $3 ORDER BY line, id LIMIT $4`,
    [planId, q.status ?? null, q.afterLine ?? 0, q.limit + 1])
  const page = r.rows.slice(0, q.limit)
  return { items: page.map(rowView), nextAfterLine: r.rows.length > q.limit ? page[page.length - 1].line : null }
}

/** Every row of a plan, page by page (the CSV report streams this). */
export async function* allPlanRows(pool: Pool, planId: string, pageSize = 2000): AsyncGenerator<RowView> {
  let after = 0
  for (;;) {
    const page = await planRows(pool, planId, { limit: pageSize, afterLine: after })
    yield* page.items
    if (page.nextAfterLine === null) return
    after = page.nextAfterLine
  }
}
