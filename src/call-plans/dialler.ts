/**
 * The call-plan dialler (issue 11, seeds 000 and 004): progressive outbound — a row is
 * dialled only when an agent who may take it is ready, one call per agent, the agent's
 * phone first and then the client (OutboundCalls: recorded, CDR, client card), inside the
 * row's window and the office hours of whoever takes it.
 *
 * Every node runs one. A row is claimed in one transaction: due rows of running plans are
 * locked with FOR UPDATE SKIP LOCKED (another node skips them), the plan row is locked too
 * (SKIP LOCKED: its concurrency is counted exactly, and a pause waits for the claim and is
 * seen by the next one), and the agent is taken ready → on_call by the same statement the
 * ACD uses (PresenceStore.claimWithin) — committed together with the row becoming
 * 'dialling', so an agent is never offered an inbound call and a plan call at once.
 *
 * Outcomes: answered is final; busy / no answer / temporary failures are retried after the
 * plan's delay until its max attempts; a number that does not exist fails at once. An
 * attempt the agent did not pick up, or that failed on our side, does not count against
 * the client. A node that dies mid-call leaves its rows 'dialling'; once its ACD heartbeat
 * is stale any node takes them back (answered if the CDR says so, else due again).
 */
import { withTransaction, type PoolClient } from '../db/pool.ts'
import type { SwitchboardFile, QueueConfig } from '../config/switchboard-file.ts'
import type { DirectorySnapshot, Employee } from '../crm/directory.ts'
import type { PresenceStore } from '../acd/presence.ts'
import type { EventBus } from '../events/bus.ts'
import type { OutboundCalls, OutboundCallOutcome } from '../calls/click-to-call.ts'
import { classifyAttempt } from '../calls/attempt-outcome.ts'
import { endpointOf } from '../calls/context.ts'
import { mergeCalendars, officeOpenAt } from '../routing/office-hours.ts'
import { SwitchboardError } from '../errors.ts'
import { completeFinishedPlans } from './store.ts'
import { PollingDialler, type DiallingWorkerDeps } from '../calls/polling-dialler.ts'

export interface CallPlanDiallerDeps extends DiallingWorkerDeps {
  /** An agent becoming ready on this node wakes the dialler at once. */
  events?: EventBus
}

interface DueRow { id: string; plan_id: string; phone: string; client_id: string | null; agent_id: string | null; queue_id: string | null; attempts: number }
interface PlanFacts { max_attempts: number; retry_delay_sec: number; caller_id: string | null }

export interface PlanAttemptResult { rowId: string; planId: string; callUuid: string | null; employeeId: string; status: string; outcome: string }

const MAX_STARTS_PER_TICK = 20
const CANDIDATES = 50
const MAX_PAGES = 20

export class CallPlanDialler extends PollingDialler {
  private offReady: (() => void) | null = null
  /** Finished attempts, for tests and operations (bounded). */
  readonly finished: PlanAttemptResult[] = []

  constructor(private readonly deps: CallPlanDiallerDeps) {
    super({ log: deps.log, what: 'call plan', intervalMs: () => deps.config().callPlans.pollIntervalSec * 1000 })
  }

  override start(): void {
    this.offReady = this.deps.events?.on('agent.state', (e) => { if (e.state === 'ready') this.wake() }) ?? null
    super.start()
  }

  override async stop(graceMs = 5_000): Promise<void> {
    this.offReady?.()
    await super.stop(graceMs)
  }

  /** One poll: take back rows of dead nodes, close what is over, then start a call per ready agent. Returns the row ids started. */
  override async tick(): Promise<string[]> {
    const cfg = this.deps.config()
    if (!cfg.callPlans.enabled || this.closing) return []
    await this.housekeeping(cfg)
    if (!this.deps.canOriginate()) return []
    const started: string[] = []
    while (started.length < MAX_STARTS_PER_TICK && !this.closing) {
      const claim = await this.claimOne(cfg)
      if (!claim) break
      started.push(claim.row.id)
      this.track(this.dial(claim.row, claim.plan, claim.employeeId))
    }
    return started
  }

  private async housekeeping(cfg: SwitchboardFile): Promise<void> {
    const { pool, log, clock, node } = this.deps
    const now = clock.now()
    // Rows a dead node was dialling: the CDR (closed by that node's recovery, or written before it died) decides.
    const orphans = await pool.query<{ id: string; status: string }>(
      `WITH o AS (
         SELECT r.id, r.attempts, p.max_attempts, p.status AS plan_status, c.outcome AS cdr_outcome
         FROM call_plan_rows r JOIN call_plans p ON p.id = r.plan_id LEFT JOIN calls c ON c.uuid = r.call_id
         WHERE r.status = 'dialling' AND r.claimed_by IS DISTINCT FROM $1
           AND NOT EXISTS (SELECT 1 FROM acd_nodes n WHERE n.node_id = r.claimed_by AND n.heartbeat_at > now() - make_interval(secs => $2::int))
         FOR UPDATE OF r SKIP LOCKED),
       v AS (SELECT id, CASE WHEN cdr_outcome = 'answered' THEN 'answered' WHEN plan_status = 'cancelled' THEN 'cancelled'
                             WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END AS status FROM o)
       UPDATE call_plan_rows r SET status = v.status, outcome = CASE WHEN v.status = 'answered' THEN 'answered' ELSE 'interrupted' END,
         claimed_by = NULL, next_attempt_at = $3, done_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END
       FROM v WHERE r.id = v.id RETURNING r.id::text AS id, r.status`, [node, cfg.acd.nodeStaleSec, now])
    for (const o of orphans.rows) log.warn({ row_id: o.id, status: o.status }, 'call plan row left dialling by a node that stopped: taken back')
    // Windows that closed before the row was reached.
    await pool.query(
      `UPDATE call_plan_rows SET status = 'expired', done_at = now() WHERE status = 'pending' AND window_end <= $1`, [now])
    const completed = await completeFinishedPlans(pool)
    for (const id of completed) log.info({ plan_id: id }, 'call plan completed')
  }

  /**
   * Lock due rows of running plans page by page and claim an agent for the first row that
   * has one ready (in its office's hours, not needed by waiting inbound callers).
   */
  private async claimOne(cfg: SwitchboardFile): Promise<{ row: DueRow; plan: PlanFacts; employeeId: string } | null> {
    const { pool, directory, presence, clock, node, log } = this.deps
    const dir = directory()
    const now = clock.now()
    if (![...presence.snapshot().values()].includes('ready')) return null
    const claim = await withTransaction(pool, async (client) => {
      const busyQueues = cfg.callPlans.yieldToInbound ? await waitingQueues(client, cfg.acd.nodeStaleSec) : new Set<string>()
      // Only rows someone ready could take: rows waiting for busy agents must not hide the others behind them.
      const ready = [...presence.snapshot()].filter(([, s]) => s === 'ready').map(([id]) => id)
      const readySet = new Set(ready)
      const queuesWithReady = cfg.queues.filter((q) => rowTarget({ agent_id: null, queue_id: q.id }, cfg, dir)?.employees.some((e) => readySet.has(e.id))).map((q) => q.id)
      const skipPlans = new Set<string>()
      const plans = new Map<string, PlanFacts & { dialling: number; limit: number }>()
      const seen: string[] = []
      for (let page = 0; page < MAX_PAGES; page++) {
        const { rows } = await client.query<DueRow>(
          `SELECT r.id::text AS id, r.plan_id::text AS plan_id, r.phone, r.client_id, r.agent_id, r.queue_id, r.attempts
           FROM call_plan_rows r JOIN call_plans p ON p.id = r.plan_id AND p.status = 'running'
           WHERE r.status = 'pending' AND r.next_attempt_at <= $1 AND (r.window_start IS NULL OR r.window_start <= $1)
             AND (r.window_end IS NULL OR r.window_end > $1) AND NOT (r.id = ANY($2::bigint[])) AND NOT (r.plan_id = ANY($3::bigint[]))
             AND (r.agent_id = ANY($4::text[]) OR r.queue_id = ANY($5::text[]))
           ORDER BY r.next_attempt_at, r.id LIMIT ${CANDIDATES}
           FOR UPDATE OF r SKIP LOCKED`, [now, seen, [...skipPlans], ready, queuesWithReady])
        if (rows.length === 0) break
        for (const r of rows) seen.push(r.id)
        for (const row of rows) {
          if (skipPlans.has(row.plan_id)) continue
          const target = rowTarget(row, cfg, dir)
          if (!target) continue
          const office = cfg.offices.find((o) => o.id === target.officeId)
          if (!office || !officeOpenAt(office, mergeCalendars(cfg.calendar, office.calendar), now)) continue
          const free = target.employees.filter((e) => presence.get(e.id) === 'ready' && !servesWaitingQueue(e, cfg.queues, busyQueues))
          if (free.length === 0) continue
          let plan = plans.get(row.plan_id)
          if (!plan) {
            // The plan's lock: its concurrency is exact across nodes, and pause/cancel wait for this claim.
            const p = await client.query<PlanFacts & { status: string; max_concurrent: number | null; dialling: number }>(
              `SELECT status, max_attempts, retry_delay_sec, caller_id, max_concurrent,
                      (SELECT count(*)::int FROM call_plan_rows WHERE plan_id = $1 AND status = 'dialling') AS dialling
               FROM call_plans WHERE id = $1 FOR UPDATE SKIP LOCKED`, [row.plan_id])
            const got = p.rows[0]
            if (!got || got.status !== 'running') { skipPlans.add(row.plan_id); continue }
            plan = { ...got, limit: Math.min(got.max_concurrent ?? Number.POSITIVE_INFINITY, cfg.callPlans.maxConcurrentPerPlan) }
            plans.set(row.plan_id, plan)
          }
          if (plan.dialling >= plan.limit) { skipPlans.add(row.plan_id); continue }
          // Longest ready first (fair among the agents of a queue).
          const order = await client.query<{ employee_id: string }>(
            `SELECT employee_id FROM agent_presence WHERE employee_id = ANY($1::text[]) AND state = 'ready' ORDER BY since, employee_id`, [free.map((e) => e.id)])
          for (const { employee_id: employeeId } of order.rows) {
            const reason = `call plan ${row.plan_id} row ${row.id}`
            const taken = await presence.claimWithin(client, [employeeId], reason)
            if (taken.length === 0) continue
            await client.query(
              `UPDATE call_plan_rows SET status = 'dialling', attempts = attempts + 1, dialled_agent_id = $2, claimed_by = $3, claimed_at = now(),
                 last_attempt_at = $4, call_id = NULL WHERE id = $1`, [row.id, employeeId, node, now])
            return { row, plan, employeeId, reason, target: target.reason }
          }
        }
        if (rows.length < CANDIDATES) break
      }
      return null
    })
    if (!claim) return null
    // Only once committed: this node's memory of its agents follows Postgres.
    presence.noteClaimed([claim.employeeId], claim.reason)
    log.info({ plan_id: claim.row.plan_id, row_id: claim.row.id, employee_id: claim.employeeId, attempt: claim.row.attempts + 1, target: claim.target }, 'call plan row claimed')
    return { row: claim.row, plan: claim.plan, employeeId: claim.employeeId }
  }

  /** Place the call and write down how it went. Never rejects. */
  private async dial(row: DueRow, plan: PlanFacts, employeeId: string): Promise<void> {
    const { pool, outbound, log, presence, node, config, clock } = this.deps
    let callUuid: string | null = null
    try {
      const call = await outbound.start({
        employeeId, to: row.phone, clientId: row.client_id, origin: 'call-plan', planRowId: row.id, claimed: true, callerId: plan.caller_id,
      })
      callUuid = call.callUuid
      await pool.query('UPDATE call_plan_rows SET call_id = $2 WHERE id = $1', [row.id, callUuid])
      await pool.query('INSERT INTO call_plan_attempts (row_id, call_uuid, agent_id, node) VALUES ($1, $2, $3, $4)', [row.id, callUuid, employeeId, node])
      const result = await call.done
      await this.finish(row, plan, employeeId, result)
    } catch (err) {
      // Refused before anything rang: a number that can never be dialled fails the row; anything else gives it back.
      const invalid = err instanceof SwitchboardError && err.code === 'validation_failed'
      log[invalid ? 'warn' : 'error']({ err, row_id: row.id, plan_id: row.plan_id }, 'call plan attempt could not start')
      const retryAt = new Date(clock.now().getTime() + config().callPlans.pollIntervalSec * 1000)
      await pool.query(
        invalid
          ? `UPDATE call_plan_rows SET status = 'failed', outcome = 'invalid_number', claimed_by = NULL, done_at = now() WHERE id = $1`
          : `UPDATE call_plan_rows SET status = 'pending', attempts = greatest(attempts - 1, 0), outcome = 'not_started', claimed_by = NULL, next_attempt_at = $2 WHERE id = $1`,
        invalid ? [row.id] : [row.id, retryAt]).catch((e) => log.error({ err: e, row_id: row.id }, 'could not give the call plan row back'))
      if (!callUuid && presence.get(employeeId) === 'on_call') await presence.set(employeeId, 'ready').catch(() => undefined)
      this.record({ rowId: row.id, planId: row.plan_id, callUuid, employeeId, status: invalid ? 'failed' : 'pending', outcome: invalid ? 'invalid_number' : 'not_started' })
    }
  }

  private async finish(row: DueRow, plan: PlanFacts, employeeId: string, r: OutboundCallOutcome): Promise<void> {
    const { pool, log, presence, config, clock } = this.deps
    const v = classifyAttempt(r)
    const attempts = row.attempts + 1
    let retryInSec = plan.retry_delay_sec
    let status: string
    if (v.kind === 'answered') status = 'answered'
    else if (!v.counts) {
      // Not the client's attempt: due again at the next poll, with whoever is ready.
      status = 'pending'
      retryInSec = config().callPlans.pollIntervalSec
      // Like the ACD: busy elsewhere → stays ready; rang out unanswered → not_ready (no more calls to an empty desk).
      if (v.kind === 'agent_no_answer' && r.cause !== 'USER_BUSY') {
        await presence.set(employeeId, 'not_ready', `call plan ${row.plan_id} call not answered`).catch((err) => log.warn({ err }, 'could not set the agent not_ready'))
      }
    } else status = v.permanent || attempts >= plan.max_attempts ? v.kind : 'pending'
    const next = new Date(clock.now().getTime() + retryInSec * 1000)
    // A plan cancelled meanwhile does not retry; a paused one keeps the row due for when it resumes.
    const u = await pool.query<{ status: string }>(
      `UPDATE call_plan_rows r SET
         status = CASE WHEN $2 = 'pending' AND p.status = 'cancelled' THEN 'cancelled' ELSE $2 END,
         outcome = $3, last_cause = $4, talk_sec = $5, claimed_by = NULL,
         attempts = CASE WHEN $6 THEN r.attempts ELSE greatest(r.attempts - 1, 0) END,
         next_attempt_at = CASE WHEN $2 = 'pending' THEN $7 ELSE r.next_attempt_at END,
         done_at = CASE WHEN $2 = 'pending' AND p.status <> 'cancelled' THEN NULL ELSE now() END
       FROM call_plans p WHERE p.id = r.plan_id AND r.id = $1 AND r.status = 'dialling' RETURNING r.status`,
      [row.id, status, v.kind, r.cause, r.talkSec, v.counts, next])
    await pool.query('UPDATE call_plan_attempts SET ended_at = now(), outcome = $2, cause = $3, talk_sec = $4 WHERE call_uuid = $1', [r.callUuid, v.kind, r.cause, r.talkSec])
    const final = u.rows[0]?.status ?? status
    log.info({ plan_id: row.plan_id, row_id: row.id, call_uuid: r.callUuid, outcome: v.kind, status: final, attempts: v.counts ? attempts : attempts - 1, talk_sec: r.talkSec, cause: r.cause }, 'call plan attempt finished')
    this.record({ rowId: row.id, planId: row.plan_id, callUuid: r.callUuid, employeeId, status: final, outcome: v.kind })
    if (final !== 'pending') await completeFinishedPlans(pool).catch(() => undefined)
  }

  private record(r: PlanAttemptResult): void {
    this.finished.push(r)
    if (this.finished.length > 1000) this.finished.shift()
  }
}

/** Who may take a row (the named agent, or the ringable members of its queue) and whose office hours apply. */
export function rowTarget(row: Pick<DueRow, 'agent_id' | 'queue_id'>, cfg: SwitchboardFile, dir: DirectorySnapshot): { employees: Employee[]; officeId: string; reason: string } | null {
  const fallbackOffice = cfg.routing.defaultOfficeId ?? cfg.offices[0].id
  const groupOffice = (groupId: string | undefined) => (groupId ? cfg.groups.find((g) => g.id === groupId)?.officeId : undefined)
  if (row.agent_id) {
    const e = dir.employees.get(row.agent_id)
    if (!e) return null
    return { employees: [e], officeId: e.officeId ?? groupOffice(e.groupId) ?? fallbackOffice, reason: `agent ${e.id}` }
  }
  const q = row.queue_id ? cfg.queues.find((x) => x.id === row.queue_id) : undefined
  if (!q) return null
  const ringable = (e: Employee) => endpointOf(e, { gateways: cfg.gateways, fmc: cfg.fmc }) !== null
  const seen = new Set<string>()
  const employees = q.groupIds.flatMap((g) => dir.groupMembers(g)).filter((e) => !seen.has(e.id) && seen.add(e.id) && ringable(e))
  const officeId = q.groupIds.map(groupOffice).find((o) => o !== undefined) ?? fallbackOffice
  return { employees, officeId, reason: `queue ${q.id}` }
}

/** Queues with inbound callers waiting right now (on live nodes): their agents are left to the ACD. */
async function waitingQueues(c: PoolClient, nodeStaleSec: number): Promise<Set<string>> {
  const r = await c.query<{ queue_id: string }>(
    `SELECT DISTINCT q.queue_id FROM queue_calls q JOIN acd_nodes n ON n.node_id = q.node AND n.heartbeat_at > now() - make_interval(secs => $1::int)
     WHERE q.state = 'waiting'`, [nodeStaleSec])
  return new Set(r.rows.map((x) => x.queue_id))
}

function servesWaitingQueue(e: Employee, queues: readonly QueueConfig[], waiting: ReadonlySet<string>): boolean {
  if (waiting.size === 0 || !e.groupId) return false
  return queues.some((q) => waiting.has(q.id) && q.groupIds.includes(e.groupId!))
}
