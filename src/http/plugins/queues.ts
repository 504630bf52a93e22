import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../../crm/directory.ts'
import type { Acd } from '../../acd/dispatcher.ts'

export interface QueuesRoutesDeps {
  acd: Acd
  directory: () => DirectorySnapshot
  config: () => SwitchboardFile
}

const QueueView = Type.Object({
  id: Type.String(), name: Type.String(), strategy: Type.String(), waiting: Type.Integer(), ringing: Type.Integer(),
  longestWaitSec: Type.Integer(), agentsReady: Type.Integer(), agentsStaffed: Type.Integer(), members: Type.Integer(),
})

/**
 * Live queues across every node (the waiting list is in Postgres): callers waiting and
 * being rung, the longest wait, agents ready and staffed. Supervisors and admins see
 * every queue, an agent the queues their group serves.
 */
export function queuesRoutes(deps: QueuesRoutesDeps) {
  return async function queuesPlugin(app: FastifyInstance): Promise<void> {
    app.get('/api/queues', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: { tags: ['queues'], summary: 'Live state of every queue (an agent: their own queues)', response: { 200: Type.Array(QueueView) } },
    }, async (req) => {
      const live = await deps.acd.live()
      const p = req.principal
      if (p?.role !== 'agent') return live
      const groupId = p.employeeId ? deps.directory().employees.get(p.employeeId)?.groupId : undefined
      const mine = new Set(deps.config().queues.filter((q) => groupId !== undefined && q.groupIds.includes(groupId)).map((q) => q.id))
      return live.filter((q) => mine.has(q.id))
    })
  }
}
