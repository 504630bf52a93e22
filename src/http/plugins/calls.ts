import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CallService } from '../../calls/call-service.ts'
import type { CallSession } from '../../calls/call-session.ts'
import { NotFoundError, SwitchboardError } from '../../errors.ts'

const CallParams = {
  type: 'object', additionalProperties: false, required: ['uuid'],
  properties: { uuid: { type: 'string', format: 'uuid' } },
} as const

const CallSummary = {
  type: 'object',
  properties: {
    uuid: { type: 'string' }, direction: { type: 'string' }, caller: { type: ['string', 'null'] }, did: { type: 'string' },
    clientId: { type: ['string', 'null'] }, agentId: { type: ['string', 'null'] }, queueId: { type: ['string', 'null'] },
    answeredAt: { type: ['string', 'null'] }, connectedAt: { type: ['string', 'null'] }, recordingPaused: { type: 'boolean' },
    recordings: { type: 'integer' }, ivrPath: { type: 'array', items: { type: 'object', additionalProperties: true } },
    consult: { type: ['object', 'null'], properties: { colleagueId: { type: 'string' }, phase: { type: 'string' } } },
    conference: { type: ['object', 'null'], properties: { room: { type: 'string' }, colleagueId: { type: 'string' }, phase: { type: 'string' } } },
  },
} as const

const EmployeeBody = { type: 'object', additionalProperties: false, required: ['employeeId'], properties: { employeeId: { type: 'string', minLength: 1, maxLength: 100 } } } as const
const Accepted = { 202: { type: 'object', properties: { accepted: { type: 'boolean' }, call: CallSummary } } } as const

/**
 * Live call control on this node: the calls in progress, and pause/resume of a call's
 * recordings while the caller reads out card data (PCI). An agent may only pause their
 * own call; supervisors and admins any.
 */
export function callsRoutes(deps: { calls: CallService }) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/api/calls/active', {
      config: { roles: ['supervisor', 'admin'] },
      schema: { tags: ['calls'], summary: 'Calls in progress on this node', response: { 200: { type: 'array', items: CallSummary } } },
    }, async () => deps.calls.list().map((s) => s.summary()))

    app.post('/api/calls/:uuid/transfer', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['calls'], summary: 'Blind transfer of the caller to a colleague (a new leg, recorded on its own)',
        params: CallParams,
        body: { type: 'object', additionalProperties: false, required: ['employeeId'], properties: { employeeId: { type: 'string', minLength: 1, maxLength: 100 } } },
        response: { 202: { type: 'object', properties: { accepted: { type: 'boolean' }, call: CallSummary } } },
      },
    }, async (req: FastifyRequest<{ Params: { uuid: string }; Body: { employeeId: string } }>, reply) => {
      const session = ownCall(req, deps.calls.session(req.params.uuid), req.params.uuid)
      await session.requestTransfer(req.body.employeeId, req.principal?.userId ?? null)
      req.log.info({ call_uuid: req.params.uuid, to: req.body.employeeId, by: req.principal?.userId }, 'transfer requested')
      return reply.code(202).send({ accepted: true, call: session.summary() })
    })

    // Attended transfer (seed 004): consult a colleague with the caller on hold, then hand over or go back.
    app.post('/api/calls/:uuid/consult', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['calls'], summary: 'Attended transfer: hold the caller and ring a ready colleague for the agent (consultation recorded on its own)',
        params: CallParams, body: EmployeeBody, response: Accepted,
      },
    }, async (req: FastifyRequest<{ Params: { uuid: string }; Body: { employeeId: string } }>, reply) => {
      const session = ownCall(req, deps.calls.session(req.params.uuid), req.params.uuid)
      await session.requestConsult(req.body.employeeId, req.principal?.userId ?? null)
      req.log.info({ call_uuid: req.params.uuid, to: req.body.employeeId, by: req.principal?.userId }, 'consultation requested')
      return reply.code(202).send({ accepted: true, call: session.summary() })
    })

    for (const decision of ['complete', 'cancel'] as const) {
      app.post(`/api/calls/:uuid/consult/${decision}`, {
        config: { roles: ['agent', 'supervisor', 'admin'] },
        schema: {
          tags: ['calls'],
          summary: decision === 'complete' ? 'Attended transfer: connect the caller to the consulted colleague (the agent leaves)' : 'Attended transfer: end the consultation, the caller back to the agent',
          params: CallParams, response: Accepted,
        },
      }, async (req: FastifyRequest<{ Params: { uuid: string } }>, reply) => {
        const session = ownCall(req, deps.calls.session(req.params.uuid), req.params.uuid)
        session.decideConsult(decision)
        req.log.info({ call_uuid: req.params.uuid, decision, by: req.principal?.userId }, 'consultation decided')
        return reply.code(202).send({ accepted: true, call: session.summary() })
      })
    }

    app.post('/api/calls/:uuid/conference', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['calls'], summary: 'Three-way conference: caller, agent and a ready colleague in one room, recorded as one file',
        params: CallParams, body: EmployeeBody, response: Accepted,
      },
    }, async (req: FastifyRequest<{ Params: { uuid: string }; Body: { employeeId: string } }>, reply) => {
      const session = ownCall(req, deps.calls.session(req.params.uuid), req.params.uuid)
      await session.requestConference(req.body.employeeId, req.principal?.userId ?? null)
      req.log.info({ call_uuid: req.params.uuid, with: req.body.employeeId, by: req.principal?.userId }, 'conference requested')
      return reply.code(202).send({ accepted: true, call: session.summary() })
    })

    for (const action of ['pause', 'resume'] as const) {
      app.post(`/api/calls/:uuid/recording/${action}`, {
        config: { roles: ['agent', 'supervisor', 'admin'] },
        schema: {
          tags: ['calls'], summary: `${action === 'pause' ? 'Pause' : 'Resume'} every recording of a call in progress (card data)`,
          params: CallParams, response: { 200: { type: 'object', properties: { changed: { type: 'boolean' }, call: CallSummary } } },
        },
      }, async (req: FastifyRequest<{ Params: { uuid: string } }>) => {
        const session = ownCall(req, deps.calls.session(req.params.uuid), req.params.uuid)
        const changed = action === 'pause' ? await session.pauseRecording() : await session.resumeRecording()
        req.log.info({ call_uuid: req.params.uuid, action, changed, by: req.principal?.userId }, 'recording pause state changed')
        return { changed, call: session.summary() }
      })
    }
  }
}

function ownCall(req: FastifyRequest, session: CallSession | undefined, uuid: string): CallSession {
  if (!session) throw new NotFoundError('call in progress', uuid)
  const p = req.principal
  if (p?.role === 'agent' && (!p.employeeId || session.summary().agentId !== p.employeeId)) {
    throw new SwitchboardError('forbidden', 'agents may only control their own calls', 403)
  }
  return session
}
