import type { CallContext } from '../context.ts'
import type { QueueConfig } from '../../config/switchboard-file.ts'
import type { DirectTarget } from '../../routing/types.ts'
import { bridgeChain } from './bridge-chain.ts'
import { createCallbackTask } from './after-hours.ts'

/**
 * A simple queue: offer the call to the ready agents of the queue's groups, each for
 * agentTimeoutSec, until someone answers or maxWaitSec is over; then the overflow
 * treatment. A caller who hangs up while waiting is an abandoned call and gets a
 * callback task. (Priorities across waiting callers, position announcements and the
 * other strategies belong to the ACD issue.)
 */
export async function runQueue(ctx: CallContext, queueId: string): Promise<void> {
  const { channel, deps, state, log } = ctx
  const queue = deps.config().queues.find((q) => q.id === queueId)
  state.queueId = queueId
  if (!queue) {
    log.error({ queue_id: queueId }, 'route names a queue that does not exist; hanging up')
    state.outcome = 'failed'
    await channel.hangup('UNALLOCATED_NUMBER')
    return
  }
  try {
    if (await waitForAgent(ctx, queue)) {
      state.outcome = 'answered'
      return
    }
  } catch (err) {
    // A caller hanging up makes the running prompt/bridge reject: an abandoned call, not a failure.
    if (channel.isUp) throw err
  }
  if (!channel.isUp) {
    state.outcome = 'abandoned'
    await createCallbackTask(ctx, 'abandoned')
    return
  }
  state.outcome = 'overflow'
  if (queue.overflow.action === 'queue' && queue.overflow.target && queue.overflow.target !== queueId) {
    return runQueue(ctx, queue.overflow.target)
  }
  await createCallbackTask(ctx, 'queue_overflow')
  await channel.hangup('NORMAL_CLEARING')
}

/** true when an agent answered; false when the caller left or the wait ran out. */
async function waitForAgent(ctx: CallContext, queue: QueueConfig): Promise<boolean> {
  const { channel, deps } = ctx
  const enteredAt = Date.now()
  while (channel.isUp && Date.now() - enteredAt < queue.maxWaitSec * 1000) {
    const members = queue.groupIds.flatMap((g) => deps.directory().groupMembers(g)).filter((e) => deps.presence.get(e.id) === 'ready')
    if (members.length === 0) {
      await channel.playback(queue.musicOnHold ?? 'local_stream://moh')
      continue
    }
    const targets: DirectTarget[] = members.map((e) => ({ employeeId: e.id, ringSec: queue.agentTimeoutSec, role: 'colleague' }))
    const { answeredBy } = await bridgeChain(ctx, targets, { wrapUpSec: queue.wrapUpSec })
    if (answeredBy) return true
  }
  return false
}
