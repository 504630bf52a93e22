/**
 * The callback worker (issue 6, seed 002): callback tasks written after hours (or for
 * abandoned calls) are dialled once their office is open and a suitable agent is ready —
 * the agent's phone first, then the client (click-to-call's mechanism, direction
 * outbound, linked to the task and the client card).
 *
 * Every node runs one. A task is claimed in one transaction: the row is locked with
 * FOR UPDATE SKIP LOCKED (another node skips it), an agent is claimed ready → on_call
 * (atomic in PresenceStore), and the row becomes in_progress with attempts + 1 — so two
 * nodes never dial one task twice, nor offer one agent two calls. The task is done only
 * when the client was reached (answered and talked ≥ reachedTalkSec); otherwise it
 * reopens after retryDelayMin until maxAttempts, then fails. An attempt the agent did not
 * answer does not count against the client (and the agent becomes not_ready, like the ACD
 * does). A node that dies mid-attempt leaves the row in_progress; after staleAfterMin any
 * node reopens it.
 */
import { withTransaction } from '../db/pool.ts'
import type { PresenceStore } from '../acd/presence.ts'
import type { OutboundCallOutcome } from '../calls/click-to-call.ts'
import { mergeCalendars, officeOpenAt } from '../routing/office-hours.ts'
import { callbackTarget } from './target.ts'
import { SwitchboardError } from '../errors.ts'
import { SWITCHBOARD_CAUSES, classifyAttempt } from '../calls/attempt-outcome.ts'
import { PollingDialler, type DiallingWorkerDeps } from '../calls/polling-dialler.ts'

export type CallbackWorkerDeps = DiallingWorkerDeps

interface CallbackRow { id: string; phone: string; client_id: string | null; queue_id: string | null; did: string | null; attempts: number }

export interface AttemptResult { callbackId: string; callUuid: string | null; state: string; outcome: string }

/** Most tasks started per poll on one node (each needs a ready agent anyway). */
const MAX_STARTS_PER_TICK = 20

/** Rows locked per page, and pages looked at per claim (tasks whose office is closed must not starve the rest). */
const CANDIDATES = 50
const MAX_PAGES = 20

export class CallbackWorker extends PollingDialler {
  private readonly unroutable = new Set<string>()
  /** Finished attempts, for tests and operations (bounded). */
  readonly finished: AttemptResult[] = []

  constructor(private readonly deps: CallbackWorkerDeps) {
    super({ log: deps.log, what: 'callback', intervalMs: () => deps.config().callbacks.pollIntervalSec * 1000 })
  }

  /** One poll: reopen stale attempts, then start as many due tasks as there are ready agents. Returns the ids started. */
  override async tick(): Promise<string[]> {
    const cfg = this.deps.config().callbacks
    if (!cfg.enabled || !this.deps.canOriginate()) return []
    await this.deps.pool.query(
      `UPDATE callbacks SET state = 'open', claimed_by = NULL, claimed_at = NULL, outcome = 'interrupted'
       WHERE state = 'in_progress' AND claimed_at < now() - make_interval(mins => $1)`, [cfg.staleAfterMin])
    const started: string[] = []
    while (started.length < MAX_STARTS_PER_TICK && !this.closing) {
      const claim = await this.claimOne()
      if (!claim) break
      started.push(claim.row.id)
      this.track(this.dial(claim.row, claim.employeeId))
    }
    return started
  }

  /**
   * Lock due rows page by page (skipping those another node holds) and claim a ready agent
   * for the first row that has one. Rows nobody can take now (office closed, nobody ready)
   * stay locked only until this transaction ends.
   */
  private async claimOne(): Promise<{ row: CallbackRow; employeeId: string } | null> {
    const { pool, config, directory, presence, clock, node, log } = this.deps
    const cfg = config()
    const dir = directory()
    const now = clock.now()
    // Nobody ready anywhere: no need to ask Postgres.
    if (![...presence.snapshot().values()].includes('ready')) return null
    const claim = await withTransaction(pool, async (client) => {
      // Rows this transaction already looked at (and holds): the next page starts after them.
      const seen: string[] = []
      for (let page = 0; page < MAX_PAGES; page++) {
        const { rows } = await client.query<CallbackRow>(
          `SELECT cb.id::text AS id, cb.phone, cb.client_id, cb.queue_id, c.did, cb.attempts
           FROM callbacks cb LEFT JOIN calls c ON c.uuid = cb.call_uuid
           WHERE cb.state = 'open' AND cb.next_attempt_at <= $1 AND NOT (cb.id = ANY($2::bigint[]))
           ORDER BY cb.next_attempt_at, cb.id LIMIT ${CANDIDATES}
           FOR UPDATE OF cb SKIP LOCKED`, [now, seen])
        if (rows.length === 0) break
        for (const r of rows) seen.push(r.id)
        for (const row of rows) {
          const target = callbackTarget({ queueId: row.queue_id, clientId: row.client_id, did: row.did }, cfg, dir)
          if (!target) {
            if (this.unroutable.size > 10_000) this.unroutable.clear()
            if (!this.unroutable.has(row.id)) log.warn({ callback_id: row.id }, 'callback has no queue, manager or DID to route by and no callbacks.defaultQueue: it waits')
            this.unroutable.add(row.id)
            continue
          }
          const office = cfg.offices.find((o) => o.id === target.officeId)
          if (!office || !officeOpenAt(office, mergeCalendars(cfg.calendar, office.calendar), now)) continue
          const candidates = [...target.preferred, ...target.groupIds.flatMap((g) => dir.groupMembers(g).filter((e) => e.role === 'agent' || e.role === 'manager').map((e) => e.id))]
          for (const employeeId of new Set(candidates)) {
            if (presence.get(employeeId) !== 'ready') continue
            if (!(await presence.claim(employeeId, `callback ${row.id}`))) continue
            await client.query(
              `UPDATE callbacks SET state = 'in_progress', attempts = attempts + 1, agent_id = $2, claimed_by = $3, claimed_at = now(), last_attempt_at = now()
               WHERE id = $1`, [row.id, employeeId, node])
            return { row, employeeId, target: target.reason }
          }
        }
        if (rows.length < CANDIDATES) break
      }
      return null
    })
    if (claim) log.info({ callback_id: claim.row.id, employee_id: claim.employeeId, attempt: claim.row.attempts + 1, target: claim.target }, 'callback claimed')
    return claim && { row: claim.row, employeeId: claim.employeeId }
  }

  /** Place the call and write down how it went. Never rejects. */
  private async dial(row: CallbackRow, employeeId: string): Promise<void> {
    const { pool, outbound, log, presence, config, node } = this.deps
    let callUuid: string | null = null
    try {
      const call = await outbound.start({ employeeId, to: row.phone, clientId: row.client_id, origin: 'callback', callbackId: row.id, claimed: true })
      callUuid = call.callUuid
      await pool.query('UPDATE callbacks SET last_call_uuid = $2 WHERE id = $1', [row.id, callUuid])
      await pool.query('INSERT INTO callback_attempts (callback_id, call_uuid, agent_id, node) VALUES ($1, $2, $3, $4)', [row.id, callUuid, employeeId, node])
      const result = await call.done
      await this.finish(row, employeeId, result)
    } catch (err) {
      // Refused before anything rang: a number that can never be dialled closes the task; anything else gives it back.
      const invalid = err instanceof SwitchboardError && err.code === 'validation_failed'
      log[invalid ? 'warn' : 'error']({ err, callback_id: row.id }, 'callback attempt could not start')
      await pool.query(
        invalid
          ? `UPDATE callbacks SET state = 'failed', outcome = 'invalid_number', done_at = now(), claimed_by = NULL WHERE id = $1`
          : `UPDATE callbacks SET state = 'open', attempts = greatest(attempts - 1, 0), outcome = 'not_started', claimed_by = NULL, next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1`,
        invalid ? [row.id] : [row.id, config().callbacks.pollIntervalSec]).catch((e) => log.error({ err: e, callback_id: row.id }, 'could not give the callback back'))
      if (!callUuid && presence.get(employeeId) === 'on_call') await presence.set(employeeId, 'ready').catch(() => undefined)
      this.record({ callbackId: row.id, callUuid, state: invalid ? 'failed' : 'open', outcome: invalid ? 'invalid_number' : 'not_started' })
    }
  }

  private async finish(row: CallbackRow, employeeId: string, r: OutboundCallOutcome): Promise<void> {
    const { pool, log, presence, config } = this.deps
    const cfg = config().callbacks
    const attempts = row.attempts + 1
    let state: 'done' | 'open' | 'failed'
    let outcome: string
    let retryInSec = cfg.retryDelayMin * 60
    if (r.connected && r.talkSec >= cfg.reachedTalkSec) {
      state = 'done'
      outcome = 'completed'
    } else if (r.cause !== null && SWITCHBOARD_CAUSES.has(r.cause)) {
      // Our side failed (FreeSWITCH unreachable, the leg never reached our socket): not the client's attempt.
      state = 'open'
      outcome = 'switchboard_error'
      retryInSec = cfg.pollIntervalSec
    } else if (!r.employeeAnswered) {
      // The agent did not pick up: not the client's attempt. Try again soon, with someone ready.
      state = 'open'
      outcome = 'agent_no_answer'
      retryInSec = cfg.pollIntervalSec
      // Like the ACD: busy elsewhere → stays ready; rang out unanswered → not_ready (no more calls to an empty desk).
      if (r.cause !== 'USER_BUSY') await presence.set(employeeId, 'not_ready', `callback ${row.id} not answered`).catch((err) => log.warn({ err }, 'could not set the agent not_ready'))
    } else {
      outcome = r.connected ? 'too_short' : classifyAttempt(r).kind
      state = attempts >= cfg.maxAttempts ? 'failed' : 'open'
    }
    const counts = outcome !== 'agent_no_answer' && outcome !== 'switchboard_error'
    await pool.query(
      `UPDATE callbacks SET state = $2, outcome = $3, last_cause = $4, claimed_by = NULL,
         attempts = CASE WHEN $5 THEN attempts ELSE greatest(attempts - 1, 0) END,
         next_attempt_at = CASE WHEN $2 = 'open' THEN now() + make_interval(secs => $6) ELSE next_attempt_at END,
         done_at = CASE WHEN $2 IN ('done', 'failed') THEN now() ELSE NULL END
       WHERE id = $1`, [row.id, state, outcome, r.cause, counts, retryInSec])
    await pool.query('UPDATE callback_attempts SET ended_at = now(), outcome = $2, cause = $3, talk_sec = $4 WHERE call_uuid = $1', [r.callUuid, outcome, r.cause, r.talkSec])
    log.info({ callback_id: row.id, call_uuid: r.callUuid, outcome, state, attempts: counts ? attempts : attempts - 1, talk_sec: r.talkSec, cause: r.cause }, 'callback attempt finished')
    this.record({ callbackId: row.id, callUuid: r.callUuid, state, outcome })
  }

  private record(r: AttemptResult): void {
    this.finished.push(r)
    if (this.finished.length > 1000) this.finished.shift()
  }
}
