/**
 * Who gets which waiting caller: a pure function of the waiting list (already in head
 * order), the ready agents and the queues' strategies. No I/O, so the rules are plain
 * table-driven tests and the dispatcher's transaction only reads, calls this and writes.
 */
import type { QueueStrategy } from '../config/switchboard-file.ts'

export interface WaitingCall {
  callUuid: string
  queueId: string
  priority: number
  enteredAt: Date
  stickyAgentId: string | null
  /** agents who already let this call ring out or were busy: others first */
  tried: readonly string[]
}

export interface ReadyAgent {
  employeeId: string
  /** end of the agent's last call (null = none yet): longest-idle ranks on this */
  lastCallEndedAt: Date | null
  /** when the agent became ready */
  since: Date
}

export interface QueueRules {
  strategy: QueueStrategy
  stickyFallback: Exclude<QueueStrategy, 'sticky'>
  /** agents serving the queue, in the queue's fixed round-robin order; only agents who can be rung (have an endpoint) */
  members: readonly string[]
}

export interface Assignment {
  callUuid: string
  queueId: string
  employeeIds: string[]
  /** the strategy that chose them (sticky reports 'sticky' only when the sticky agent was taken) */
  strategy: QueueStrategy
}

/** Order of the waiting list: priority first, then who has waited longest. */
export function headOrder(a: WaitingCall, b: WaitingCall): number {
  return b.priority - a.priority || a.enteredAt.getTime() - b.enteredAt.getTime() || (a.callUuid < b.callUuid ? -1 : 1)
}

/** When the agent was last busy: the end of the last call, else becoming ready. */
export function idleSince(a: ReadyAgent): number {
  return (a.lastCallEndedAt ?? a.since).getTime()
}

/**
 * Walk the waiting list head first; each call takes agents from the ready pool by its
 * queue's strategy; an agent is given to at most one call. A call whose queue has no
 * free agent does not block calls of other queues behind it.
 * `cursors` (queue → last agent of round-robin) is updated in place.
 */
export function assign(
  waiting: readonly WaitingCall[],
  ready: readonly ReadyAgent[],
  queues: ReadonlyMap<string, QueueRules>,
  cursors: Map<string, string>,
): Assignment[] {
  const free = new Map(ready.map((a) => [a.employeeId, a]))
  const out: Assignment[] = []
  for (const call of [...waiting].sort(headOrder)) {
    if (free.size === 0) break
    const rules = queues.get(call.queueId)
    if (!rules) continue
    const members = rules.members.filter((id) => free.has(id))
    if (members.length === 0) continue
    // Someone who already let this call ring is tried again only when nobody else is free.
    const fresh = members.filter((id) => !call.tried.includes(id))
    const pool = fresh.length > 0 ? fresh : members
    const picked = pick(call, rules, pool, free, cursors)
    if (picked.employeeIds.length === 0) continue
    for (const id of picked.employeeIds) free.delete(id)
    out.push({ callUuid: call.callUuid, queueId: call.queueId, employeeIds: picked.employeeIds, strategy: picked.strategy })
  }
  return out
}

function pick(call: WaitingCall, rules: QueueRules, pool: readonly string[], free: Map<string, ReadyAgent>, cursors: Map<string, string>): { employeeIds: string[]; strategy: QueueStrategy } {
  let strategy: QueueStrategy = rules.strategy
  if (strategy === 'sticky') {
    if (call.stickyAgentId && pool.includes(call.stickyAgentId)) return { employeeIds: [call.stickyAgentId], strategy: 'sticky' }
    strategy = rules.stickyFallback
  }
  switch (strategy) {
    case 'ring-all':
      return { employeeIds: [...pool], strategy }
    case 'round-robin': {
      const order = rules.members
      const last = cursors.get(call.queueId)
      const start = last === undefined ? 0 : order.indexOf(last) + 1 // indexOf -1 (agent left the queue) → 0
      for (let i = 0; i < order.length; i++) {
        const id = order[(start + i) % order.length]
        if (pool.includes(id)) {
          cursors.set(call.queueId, id)
          return { employeeIds: [id], strategy }
        }
      }
      return { employeeIds: [], strategy }
    }
    case 'longest-idle':
    default: {
      let best: ReadyAgent | undefined
      for (const id of pool) {
        const a = free.get(id)!
        if (!best || idleSince(a) < idleSince(best) || (idleSince(a) === idleSince(best) && a.employeeId < best.employeeId)) best = a
      }
      return { employeeIds: best ? [best.employeeId] : [], strategy: 'longest-idle' }
    }
  }
}
