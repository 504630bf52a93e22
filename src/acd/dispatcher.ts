import { randomUUID } from 'node:crypto'
import type { Pool, PoolClient } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile, QueueConfig } from '../config/switchboard-file.ts'
import type { DirectorySnapshot, Employee } from '../crm/directory.ts'
import type { EventBus } from '../events/bus.ts'
import { PRESENCE_CHANNEL, type PresenceChange, type PresenceStore } from './presence.ts'
import { assign, type QueueRules, type ReadyAgent, type WaitingCall } from './strategy.ts'

/** Postgres channel for offers made by any node (payload: owning node + call). */
export const ACD_CHANNEL = 'sb_acd'
/** pg_advisory_xact_lock key of the dispatcher: one matching transaction at a time, cluster-wide. */
const DISPATCH_LOCK = 0x5b_acd_01
/** Per-queue advisory lock namespace (enqueue: the max-length check and insert are one step). */
const QUEUE_LOCK_NS = 0x5b_acd
const MAX_BATCH = 2000

export interface EnqueueRequest {
  callUuid: string
  queueId: string
  priority: number
  /** first time this caller entered any queue (order); max wait counts from now */
  enteredAt: Date
  clientId: string | null
  caller: string | null
  stickyAgentId: string | null
}

export interface Offer { callUuid: string; offerId: number; employeeIds: string[]; queueId: string }

export interface QueueLive {
  id: string; name: string; strategy: string; waiting: number; ringing: number; longestWaitSec: number
  agentsReady: number; agentsStaffed: number; members: number
}

export interface AcdDeps {
  pool: Pool
  log: Logger
  presence: PresenceStore
  config: () => SwitchboardFile
  directory: () => DirectorySnapshot
  /** can this employee be rung (has a desk phone / mobile endpoint)? */
  ringable?: (e: Employee) => boolean
  events?: EventBus
  /** node name (NODE_NAME); an instance id is appended so restarts are told apart */
  node: string
  /** false: no LISTEN connection, the poll alone (tests, tools) */
  listen?: boolean
}

/**
 * The ACD shared by every Switchboard node: the waiting list lives in Postgres
 * (queue_calls), and any node may match waiting callers with ready agents.
 *
 * Why this is safe with many nodes: matching runs in one transaction under a
 * cluster-wide advisory lock (pg_advisory_xact_lock), so two nodes never decide at the
 * same time and the head of the list (priority, then wait) is well defined. Inside it,
 * the agent is taken with `UPDATE agent_presence … WHERE state = 'ready'` (a direct
 * route outside the ACD that claims the same agent loses or wins on that row lock; the
 * loser sees 0 rows) and the caller with `UPDATE queue_calls … WHERE state = 'waiting'`:
 * an agent cannot be offered two calls, a caller cannot be offered twice. Matching may
 * assign a caller who waits on another node: the owner is told by NOTIFY (and finds it
 * by its poll if the notification was lost) and takes the offer with
 * `UPDATE … WHERE state = 'offered'`; an offer nobody takes within offerLeaseSec is
 * taken back and its agents released, and a node that stops heartbeating loses its
 * callers and its agents are released (nodeStaleSec).
 * Waking: presence changes NOTIFY every node (presence.ts), the local EventBus
 * `agent.state` wakes this node at once, and a short poll covers lost notifications.
 */
export class Acd {
  readonly nodeId: string
  private readonly waiters = new Map<string, () => void>()
  private listener: PoolClient | null = null
  private timers: NodeJS.Timeout[] = []
  private matching: Promise<void> | null = null
  private again = false
  private stopped = false
  private offEvents: (() => void) | null = null
  private readonly wrapTimers = new Set<NodeJS.Timeout>()

  constructor(private readonly deps: AcdDeps) {
    this.nodeId = deps.presence.node !== 'local' ? deps.presence.node : `${deps.node}:${randomUUID().slice(0, 8)}`
  }

  /** Create a presence store whose node id is also the ACD node id (claims are traced to a node). */
  static nodeIdFor(node: string): string { return `${node}:${randomUUID().slice(0, 8)}` }

  async start(): Promise<void> {
    await this.heartbeat()
    if (this.deps.listen !== false) await this.connectListener()
    this.offEvents = this.deps.events?.on('agent.state', (e) => { if (e.state === 'ready') this.kick() }) ?? null
    const cfg = this.deps.config().acd
    this.every(cfg.pollIntervalMs, () => this.poll())
    this.every(cfg.heartbeatSec * 1000, () => this.heartbeat().then(() => this.reap()))
    this.deps.log.info({ node: this.nodeId }, 'ACD started')
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    for (const t of this.wrapTimers) clearTimeout(t)
    this.timers = []
    this.offEvents?.()
    for (const wake of this.waiters.values()) wake()
    await this.matching?.catch(() => undefined)
    if (this.listener) {
      const l = this.listener
      this.listener = null
      l.removeAllListeners('notification')
      await l.query(`UNLISTEN *`).catch(() => undefined)
      l.release()
    }
    // Our callers are gone with our calls (CallService stopped first).
    await this.deps.pool.query('DELETE FROM queue_calls WHERE node = $1', [this.nodeId]).catch(() => undefined)
    await this.deps.pool.query('DELETE FROM acd_nodes WHERE node_id = $1', [this.nodeId]).catch(() => undefined)
  }

  // ------------------------------------------------------------------ the waiting list

  /** Put a caller on the list; 'full' when the queue already has maxLength callers (counted on every node). */
  async enqueue(r: EnqueueRequest, maxLength: number): Promise<'queued' | 'full'> {
    const out = await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [QUEUE_LOCK_NS, r.queueId])
      const n = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM queue_calls q JOIN acd_nodes n ON n.node_id = q.node WHERE q.queue_id = $1', [r.queueId])
      if (n.rows[0].n >= maxLength) return 'full' as const
      await c.query(
        `INSERT INTO queue_calls (call_uuid, queue_id, priority, entered_at, queue_entered_at, node, client_id, caller, sticky_agent_id, state)
         VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8, 'waiting')
         ON CONFLICT (call_uuid) DO UPDATE SET queue_id = EXCLUDED.queue_id, priority = EXCLUDED.priority, queue_entered_at = now(),
           node = EXCLUDED.node, state = 'waiting', tried = '{}', offer_id = NULL, offered_agents = '{}', offered_at = NULL`,
        [r.callUuid, r.queueId, r.priority, r.enteredAt, this.nodeId, r.clientId, r.caller, r.stickyAgentId])
      return 'queued' as const
    })
    if (out === 'queued') this.kick()
    return out
  }

  /** Off the list (answered, hung up, overflowed). Offers still open are closed with `outcome`. */
  async leave(callUuid: string, outcome = 'caller_left'): Promise<void> {
    this.waiters.delete(callUuid)
    await this.deps.pool.query('DELETE FROM queue_calls WHERE call_uuid = $1', [callUuid])
    await this.deps.pool.query(`UPDATE acd_offers SET ended_at = coalesce(ended_at, clock_timestamp()), outcome = $2 WHERE call_uuid = $1 AND outcome IS NULL`, [callUuid, outcome])
  }

  /** The offer did not end in a conversation: back to waiting (place kept), those agents tried. */
  async requeue(callUuid: string, tried: readonly string[]): Promise<void> {
    await this.deps.pool.query(
      `UPDATE queue_calls SET state = 'waiting', offer_id = NULL, offered_agents = '{}', offered_at = NULL,
         tried = ARRAY(SELECT DISTINCT unnest(tried || $2::text[])) WHERE call_uuid = $1`, [callUuid, tried])
    this.kick()
  }

  async offerEnded(offerId: number, employeeId: string, outcome: string): Promise<void> {
    await this.deps.pool.query('UPDATE acd_offers SET ended_at = coalesce(ended_at, clock_timestamp()), outcome = $3 WHERE offer_id = $1 AND employee_id = $2 AND outcome IS NULL', [offerId, employeeId, outcome])
  }

  /**
   * Resolves with an offer for this caller, or null when `until` passes (or ACD stops).
   * `signal` (an announcement due, the caller gone) ends the wait early with null.
   */
  async waitForOffer(callUuid: string, untilMs: number, signal?: Promise<unknown>): Promise<Offer | null> {
    for (;;) {
      // Listen before looking, so a wake-up between the two is not lost.
      const woken = new Promise<'wake'>((resolve) => this.waiters.set(callUuid, () => resolve('wake')))
      const offer = await this.take(callUuid)
      if (offer) { this.waiters.delete(callUuid); return offer }
      if (this.stopped || Date.now() >= untilMs) { this.waiters.delete(callUuid); return null }
      let timer: NodeJS.Timeout | undefined
      const woke = await Promise.race([
        woken,
        new Promise<'time'>((resolve) => { timer = setTimeout(() => resolve('time'), Math.max(0, untilMs - Date.now())) }),
        ...(signal ? [signal.then(() => 'signal' as const)] : []),
      ])
      clearTimeout(timer)
      this.waiters.delete(callUuid)
      if (woke === 'signal') return this.take(callUuid)
    }
  }

  /** Take an offer made for this caller (by any node): offered → ringing. */
  private async take(callUuid: string): Promise<Offer | null> {
    const r = await this.deps.pool.query<{ offer_id: number; offered_agents: string[]; queue_id: string }>(
      `UPDATE queue_calls SET state = 'ringing' WHERE call_uuid = $1 AND state = 'offered' RETURNING offer_id, offered_agents, queue_id`, [callUuid])
    const row = r.rows[0]
    return row ? { callUuid, offerId: Number(row.offer_id), employeeIds: row.offered_agents, queueId: row.queue_id } : null
  }

  /** 1-based place of this caller in its queue (callers ahead: higher priority, or equal and earlier). */
  async position(callUuid: string): Promise<number | null> {
    const r = await this.deps.pool.query<{ pos: number }>(
      `SELECT 1 + (SELECT count(*) FROM queue_calls o WHERE o.queue_id = q.queue_id AND o.call_uuid <> q.call_uuid
                   AND (o.priority > q.priority OR (o.priority = q.priority AND o.entered_at < q.entered_at)))::int AS pos
       FROM queue_calls q WHERE q.call_uuid = $1`, [callUuid])
    return r.rows[0]?.pos ?? null
  }

  /**
   * Expected wait in seconds for someone at `position`: position × average handling time
   * (talk in this queue over the last hour + wrap-up; 120 s when there is no history)
   * divided by the agents serving the queue who are not offline.
   */
  async expectedWaitSec(queue: QueueConfig, position: number): Promise<number> {
    const r = await this.deps.pool.query<{ aht: number | null }>(
      `SELECT avg(billsec)::float AS aht FROM calls WHERE queue_id = $1 AND agent_id IS NOT NULL AND ended_at > now() - interval '1 hour'`, [queue.id])
    const aht = (r.rows[0]?.aht ?? 120) + queue.wrapUpSec
    const staffed = this.members(queue).filter((id) => { const s = this.deps.presence.get(id); return s !== undefined && s !== 'offline' }).length
    return Math.ceil((position * aht) / Math.max(1, staffed))
  }

  /** Last agent who handled this client (or number) in the look-back window: sticky strategy. */
  async lastAgentOf(clientId: string | null, caller: string | null): Promise<string | null> {
    if (!clientId && !caller) return null
    const r = await this.deps.pool.query<{ agent_id: string }>(
      `SELECT agent_id FROM calls WHERE agent_id IS NOT NULL AND started_at > now() - make_interval(days => $3::int)
         AND (($1::text IS NOT NULL AND client_id = $1) OR ($1::text IS NULL AND caller = $2))
       ORDER BY started_at DESC LIMIT 1`, [clientId, caller, this.deps.config().acd.stickyLookbackDays])
    return r.rows[0]?.agent_id ?? null
  }

  /** Does this caller have an open callback task (they were failed once already)? */
  async hasOpenCallback(caller: string | null): Promise<boolean> {
    if (!caller) return false
    const r = await this.deps.pool.query(`SELECT 1 FROM callbacks WHERE phone = $1 AND state IN ('open', 'in_progress') LIMIT 1`, [caller])
    return (r.rowCount ?? 0) > 0
  }

  /** Agents serving a queue who can be rung, in the queue's fixed order (round-robin walks it). */
  members(queue: QueueConfig): string[] {
    const dir = this.deps.directory()
    const ringable = this.deps.ringable ?? ((e: Employee) => Boolean(e.extension || e.mobile))
    const seen = new Set<string>()
    const out: string[] = []
    for (const g of queue.groupIds) {
      for (const e of dir.groupMembers(g)) if (!seen.has(e.id) && ringable(e)) { seen.add(e.id); out.push(e.id) }
    }
    return out
  }

  /** Live view of every queue (all nodes): waiting, longest wait, agents ready and staffed. */
  async live(): Promise<QueueLive[]> {
    const cfg = this.deps.config()
    const r = await this.deps.pool.query<{ queue_id: string; waiting: number; ringing: number; oldest: Date | null }>(
      `SELECT queue_id, count(*) FILTER (WHERE state = 'waiting')::int AS waiting, count(*) FILTER (WHERE state <> 'waiting')::int AS ringing,
              min(queue_entered_at) AS oldest FROM queue_calls q WHERE EXISTS (SELECT 1 FROM acd_nodes n WHERE n.node_id = q.node) GROUP BY queue_id`)
    const byQueue = new Map(r.rows.map((x) => [x.queue_id, x]))
    const states = new Map((await this.deps.presence.list()).map((p) => [p.employeeId, p.state]))
    const now = Date.now()
    return cfg.queues.map((q) => {
      const row = byQueue.get(q.id)
      const members = this.members(q)
      return {
        id: q.id, name: q.name, strategy: q.strategy, waiting: row?.waiting ?? 0, ringing: row?.ringing ?? 0,
        longestWaitSec: row?.oldest ? Math.max(0, Math.round((now - row.oldest.getTime()) / 1000)) : 0,
        agentsReady: members.filter((id) => states.get(id) === 'ready').length,
        agentsStaffed: members.filter((id) => { const s = states.get(id); return s !== undefined && s !== 'offline' }).length,
        members: members.length,
      }
    })
  }

  /** This node will end the agent's wrap-up on time; any node's sweep does it if this one dies. */
  scheduleWrapUpEnd(employeeId: string, sec: number): void {
    const t = setTimeout(() => {
      this.wrapTimers.delete(t)
      this.deps.presence.endDueWrapUps(employeeId).catch((err) => this.deps.log.warn({ err, employee_id: employeeId }, 'could not end wrap-up'))
    }, sec * 1000 + 20)
    t.unref()
    this.wrapTimers.add(t)
  }

  // ------------------------------------------------------------------ matching

  /** Run a match soon; coalesced (one in flight per node, one more queued at most). */
  kick(): void {
    if (this.stopped) return
    if (this.matching) { this.again = true; return }
    this.matching = (async () => {
      try {
        do {
          this.again = false
          const more = await this.match()
          if (more) this.again = true
        } while (this.again && !this.stopped)
      } catch (err) {
        this.deps.log.warn({ err }, 'ACD match failed; the poll retries')
      } finally {
        this.matching = null
      }
    })()
  }

  /** Wait for the matching in flight (tests, benchmarks). */
  async settle(): Promise<void> { while (this.matching) await this.matching }

  /**
   * One matching transaction: head-ordered waiting callers of live nodes × ready agents
   * → assignments (strategy.ts) → claims. Returns true when a claim lost a race (run again).
   */
  async match(): Promise<boolean> {
    const cfg = this.deps.config()
    const queues = new Map<string, QueueRules>()
    for (const q of cfg.queues) {
      queues.set(q.id, { strategy: q.strategy, stickyFallback: q.stickyFallback, members: this.members(q) })
    }
    let lostRace = false
    const made: Array<Offer & { node: string }> = []
    const claimedAll: Array<{ ids: string[]; callUuid: string }> = []
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [DISPATCH_LOCK])
      const w = await c.query<{ call_uuid: string; queue_id: string; priority: number; entered_at: Date; sticky_agent_id: string | null; tried: string[]; node: string }>(
        `SELECT q.call_uuid, q.queue_id, q.priority, q.entered_at, q.sticky_agent_id, q.tried, q.node FROM queue_calls q
         JOIN acd_nodes n ON n.node_id = q.node AND n.heartbeat_at > now() - make_interval(secs => $1::int)
         WHERE q.state = 'waiting' ORDER BY q.priority DESC, q.entered_at LIMIT ${MAX_BATCH}`, [cfg.acd.nodeStaleSec])
      if (w.rows.length === 0) return
      const a = await c.query<{ employee_id: string; since: Date; last_call_ended_at: Date | null }>(
        `SELECT employee_id, since, last_call_ended_at FROM agent_presence WHERE state = 'ready'`)
      if (a.rows.length === 0) return
      const cur = await c.query<{ queue_id: string; last_agent_id: string }>('SELECT queue_id, last_agent_id FROM acd_queue_cursor')
      const cursors = new Map(cur.rows.map((x) => [x.queue_id, x.last_agent_id]))
      const before = new Map(cursors)
      const waiting: WaitingCall[] = w.rows.map((x) => ({ callUuid: x.call_uuid, queueId: x.queue_id, priority: x.priority, enteredAt: x.entered_at, stickyAgentId: x.sticky_agent_id, tried: x.tried }))
      const ready: ReadyAgent[] = a.rows.map((x) => ({ employeeId: x.employee_id, since: x.since, lastCallEndedAt: x.last_call_ended_at }))
      const nodeOf = new Map(w.rows.map((x) => [x.call_uuid, x.node]))
      // All claims in one statement, all offers in another: the lock is held for a fixed
      // number of round trips however many agents become free at once.
      const assignments = assign(waiting, ready, queues, cursors)
      if (assignments.length === 0) return
      const claimed = await this.deps.presence.claimManyWithin(c, assignments.flatMap((as) => as.employeeIds.map((employeeId) => ({ employeeId, callUuid: as.callUuid, ownerNode: nodeOf.get(as.callUuid)! }))))
      const got = new Map<string, string[]>()
      for (const x of claimed) got.set(x.callUuid, [...(got.get(x.callUuid) ?? []), x.employeeId])
      const offered = assignments.filter((as) => got.has(as.callUuid))
      if (claimed.length < assignments.reduce((n, as) => n + as.employeeIds.length, 0)) lostRace = true
      if (offered.length === 0) return
      const seq = await c.query<{ id: string }>(`SELECT nextval('acd_offer_seq')::text AS id FROM generate_series(1, $1::int)`, [offered.length])
      const rows: Array<{ offerId: number; as: (typeof offered)[number]; ids: string[] }> = offered.map((as, i) => ({ offerId: Number(seq.rows[i].id), as, ids: got.get(as.callUuid)! }))
      const flat = rows.flatMap((r) => r.ids.map((id) => ({ r, id })))
      const up = await c.query<{ n: number }>(
        // clock_timestamp(), not now(): this transaction may have started before it waited for the lock.
        `WITH o AS (SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[]) AS o(offer_id, call_uuid, queue_id, employee_id, node, strategy)),
         upd AS (
           UPDATE queue_calls q SET state = 'offered', offer_id = x.offer_id, offered_agents = x.agents, offered_at = now()
           FROM (SELECT call_uuid, min(offer_id) AS offer_id, array_agg(employee_id) AS agents FROM o GROUP BY call_uuid) x
           WHERE q.call_uuid = x.call_uuid AND q.state = 'waiting' RETURNING q.call_uuid),
         ins AS (
           INSERT INTO acd_offers (offer_id, call_uuid, queue_id, employee_id, node, strategy, offered_at)
           SELECT offer_id, call_uuid, queue_id, employee_id, node, strategy, clock_timestamp() FROM o RETURNING 1),
         told AS (
           SELECT pg_notify($7, json_build_object('node', node, 'callUuid', call_uuid)::text) FROM (SELECT DISTINCT node, call_uuid FROM o) d)
         SELECT (SELECT count(*) FROM upd)::int AS n, (SELECT count(*) FROM ins) AS i, (SELECT count(*) FROM told) AS t`,
        [flat.map((f) => f.r.offerId), flat.map((f) => f.r.as.callUuid), flat.map((f) => f.r.as.queueId), flat.map((f) => f.id),
          flat.map((f) => nodeOf.get(f.r.as.callUuid)!), flat.map((f) => f.r.as.strategy), ACD_CHANNEL])
      if (up.rows[0].n !== rows.length) throw new Error(`waiting calls changed under the dispatch lock (${up.rows[0].n} of ${rows.length} offered)`)
      for (const r of rows) {
        const node = nodeOf.get(r.as.callUuid)!
        made.push({ callUuid: r.as.callUuid, offerId: r.offerId, employeeIds: r.ids, queueId: r.as.queueId, node })
        claimedAll.push({ ids: r.ids, callUuid: r.as.callUuid })
      }
      for (const [queueId, last] of cursors) {
        if (before.get(queueId) === last) continue
        await c.query(`INSERT INTO acd_queue_cursor (queue_id, last_agent_id) VALUES ($1, $2)
                       ON CONFLICT (queue_id) DO UPDATE SET last_agent_id = EXCLUDED.last_agent_id, updated_at = now()`, [queueId, last])
      }
    })
    for (const cl of claimedAll) this.deps.presence.noteClaimed(cl.ids, cl.callUuid)
    // Our own callers do not wait for the notification to come back.
    for (const m of made) if (m.node === this.nodeId) this.wake(m.callUuid)
    if (made.length > 0) this.deps.log.debug({ offers: made.length }, 'ACD offers made')
    return lostRace
  }

  private wake(callUuid: string): void {
    const w = this.waiters.get(callUuid)
    if (w) { this.waiters.delete(callUuid); w() }
  }

  // ------------------------------------------------------------------ background

  private async poll(): Promise<void> {
    if (this.stopped) return
    try {
      await this.deps.presence.endDueWrapUps()
      if (this.waiters.size === 0) return
      this.kick()
      // Offers for our callers whose NOTIFY we missed.
      const r = await this.deps.pool.query<{ call_uuid: string }>(`SELECT call_uuid FROM queue_calls WHERE node = $1 AND state = 'offered'`, [this.nodeId])
      for (const row of r.rows) this.wake(row.call_uuid)
    } catch (err) {
      this.deps.log.warn({ err }, 'ACD poll failed')
    }
  }

  private async heartbeat(): Promise<void> {
    await this.deps.pool.query(
      `INSERT INTO acd_nodes (node_id) VALUES ($1) ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()`, [this.nodeId])
      .catch((err) => this.deps.log.warn({ err }, 'ACD heartbeat failed'))
  }

  /**
   * Clean up after others: offers nobody took within the lease go back (agents ready
   * again), and nodes that stopped heartbeating lose their callers (the sockets died
   * with them) and release the agents they had claimed.
   */
  async reap(): Promise<void> {
    if (this.stopped) return
    const cfg = this.deps.config().acd
    try {
      const expired = await this.deps.pool.query<{ call_uuid: string; offer_id: number; offered_agents: string[] }>(
        `UPDATE queue_calls SET state = 'waiting', offer_id = NULL, offered_agents = '{}', offered_at = NULL
         WHERE state = 'offered' AND offered_at < now() - make_interval(secs => $1::int)
         RETURNING call_uuid, (SELECT offer_id FROM acd_offers o WHERE o.call_uuid = queue_calls.call_uuid AND o.ended_at IS NULL LIMIT 1) AS offer_id,
           ARRAY(SELECT employee_id FROM acd_offers o WHERE o.call_uuid = queue_calls.call_uuid AND o.ended_at IS NULL) AS offered_agents`,
        [cfg.offerLeaseSec])
      for (const row of expired.rows) {
        for (const id of row.offered_agents) {
          await this.releaseIfClaimedFor(id, row.call_uuid, 'ready', null)
          await this.offerEnded(row.offer_id, id, 'released')
        }
        this.deps.log.warn({ call_uuid: row.call_uuid }, 'offer not taken within the lease; taken back')
      }
      const stale = await this.deps.pool.query<{ node_id: string }>(
        `SELECT node_id FROM acd_nodes WHERE heartbeat_at < now() - make_interval(secs => $1::int) AND node_id <> $2`, [cfg.nodeStaleSec, this.nodeId])
      for (const { node_id: dead } of stale.rows) {
        const calls = await this.deps.pool.query<{ call_uuid: string }>('DELETE FROM queue_calls WHERE node = $1 RETURNING call_uuid', [dead])
        await this.deps.pool.query(`UPDATE acd_offers SET ended_at = now(), outcome = 'node_lost' WHERE node = $1 AND ended_at IS NULL`, [dead])
        const agents = await this.deps.pool.query<{ employee_id: string }>(`SELECT employee_id FROM agent_presence WHERE state = 'on_call' AND claimed_by = $1`, [dead])
        for (const { employee_id: id } of agents.rows) await this.deps.presence.set(id, 'not_ready', `node ${dead} lost during a call`)
        await this.deps.pool.query('DELETE FROM acd_nodes WHERE node_id = $1', [dead])
        this.deps.log.warn({ node: dead, callers: calls.rowCount, agents: agents.rowCount }, 'ACD node stopped heartbeating; its callers and agents released')
      }
      // Rows of nodes that no longer exist at all (a node deleted its own row but not its callers' rows).
      await this.deps.pool.query(
        `DELETE FROM queue_calls q WHERE NOT EXISTS (SELECT 1 FROM acd_nodes n WHERE n.node_id = q.node) AND q.queue_entered_at < now() - make_interval(secs => $1::int)`,
        [cfg.nodeStaleSec])
      if (expired.rowCount || stale.rowCount) this.kick()
    } catch (err) {
      this.deps.log.warn({ err }, 'ACD reap failed')
    }
  }

  private async releaseIfClaimedFor(employeeId: string, callUuid: string, state: 'ready' | 'not_ready', reason: string | null): Promise<void> {
    const r = await this.deps.pool.query('SELECT 1 FROM agent_presence WHERE employee_id = $1 AND state = $2 AND call_uuid = $3', [employeeId, 'on_call', callUuid])
    if (r.rowCount) await this.deps.presence.set(employeeId, state, reason)
  }

  private async connectListener(): Promise<void> {
    try {
      const client = await this.deps.pool.connect()
      this.listener = client
      client.on('notification', (n) => this.onNotification(n.channel, n.payload))
      client.on('error', (err) => {
        this.deps.log.warn({ err }, 'ACD LISTEN connection lost; polling until it is back')
        if (this.listener === client) { this.listener = null; client.release(err) }
        if (!this.stopped) setTimeout(() => { if (!this.stopped) void this.connectListener() }, 1000).unref()
      })
      await client.query(`LISTEN ${PRESENCE_CHANNEL}`)
      await client.query(`LISTEN ${ACD_CHANNEL}`)
    } catch (err) {
      this.deps.log.warn({ err }, 'ACD LISTEN unavailable; polling')
      if (this.listener) { this.listener.release(err as Error); this.listener = null }
      if (!this.stopped) setTimeout(() => { if (!this.stopped) void this.connectListener() }, 1000).unref()
    }
  }

  private onNotification(channel: string, payload: string | undefined): void {
    let data: Record<string, unknown>
    try { data = JSON.parse(payload ?? '{}') } catch { return }
    if (channel === PRESENCE_CHANNEL) {
      this.deps.presence.applyRemote(data as unknown as PresenceChange)
      // Our own changes already kicked through the local EventBus.
      if (data.state === 'ready' && data.node !== this.nodeId && this.waiters.size > 0) this.kick()
    } else if (channel === ACD_CHANNEL && data.node === this.nodeId && typeof data.callUuid === 'string') {
      this.wake(data.callUuid)
    }
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let busy = false
    const t = setInterval(() => {
      if (busy) return
      busy = true
      fn().finally(() => { busy = false })
    }, ms)
    t.unref()
    this.timers.push(t)
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.deps.pool.connect()
    try {
      await c.query('BEGIN')
      const out = await fn(c)
      await c.query('COMMIT')
      return out
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      c.release()
    }
  }
}
