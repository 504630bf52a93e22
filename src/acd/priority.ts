import type { QueueConfig, SwitchboardFile } from '../config/switchboard-file.ts'
import type { Client, Segment } from '../crm/directory.ts'
import { queuePriority } from '../routing/decide.ts'

export interface PriorityFacts {
  segment: Segment | null
  client: Client | undefined
  /** a callback call, or a caller who has an open callback task (they were failed once already) */
  callback: boolean
  /** priority the route decision set for this queue (the decision webhook may set one) */
  decided?: number
}

/**
 * A waiting caller's priority in one queue (higher goes first; equal priorities by wait):
 * the segment's priority (the queue's segment rule, else routing.segmentPriority), plus
 * the queue's VIP bonus, callback bonus and every matching attribute rule.
 */
export function callerPriority(config: SwitchboardFile, queue: QueueConfig, f: PriorityFacts): { priority: number; reasons: string[] } {
  const reasons: string[] = []
  let priority = f.decided ?? queuePriority(config, queue.id, f.segment ?? 'unidentified')
  reasons.push(`segment ${f.segment ?? 'unidentified'}: ${priority}`)
  const attrs = (f.client?.attributes ?? {}) as Record<string, unknown>
  if (truthy(attrs[config.acd.vipAttribute])) {
    priority += queue.vipPriority
    reasons.push(`VIP +${queue.vipPriority}`)
  }
  if (f.callback) {
    priority += queue.callbackPriority
    reasons.push(`callback +${queue.callbackPriority}`)
  }
  for (const rule of queue.priorityRules) {
    if (rule.attribute === undefined) continue
    const v = attrs[rule.attribute]
    if (rule.equals === undefined ? truthy(v) : v === rule.equals) {
      priority += rule.priority
      reasons.push(`${rule.attribute} ${rule.priority >= 0 ? '+' : ''}${rule.priority}`)
    }
  }
  return { priority, reasons }
}

function truthy(v: unknown): boolean {
  return v === true || v === 1 || v === 'true' || v === 'yes' || v === '1'
}
