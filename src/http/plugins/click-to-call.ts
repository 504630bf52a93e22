import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { OutboundCalls } from '../../calls/click-to-call.ts'
import { NotFoundError, SwitchboardError, ValidationError } from '../../errors.ts'
import { openSse } from '../sse.ts'

const ClickToCallBody = {
  type: 'object', additionalProperties: false, required: ['to'],
  properties: {
    employeeId: { type: 'string', minLength: 1, maxLength: 100, description: "who calls (default: the caller's own employee)" },
    to: { type: 'string', minLength: 1, maxLength: 64, description: 'the number to call, any common notation' },
    clientId: { type: 'string', minLength: 1, maxLength: 100, description: 'the client card the call belongs to' },
  },
} as const

interface ClickToCallRequest { employeeId?: string; to: string; clientId?: string }

/**
 * Click-to-call from the CRM card (issue 13): 202 at once with the call id; the employee's
 * phone rings first, then the client. Progress comes over `GET /api/calls/:uuid/events`
 * (SSE, replayed from the start for late subscribers). Agents call only as themselves.
 */
export function clickToCallRoutes(deps: { outbound: OutboundCalls }) {
  return async (app: FastifyInstance): Promise<void> => {
    app.post('/api/calls/click-to-call', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['calls'], summary: "Call a number: the employee's phone first, then the client (recorded, linked, counted)",
        body: ClickToCallBody,
        response: {
          202: {
            type: 'object',
            properties: {
              callUuid: { type: 'string' }, employeeId: { type: 'string' }, to: { type: 'string' },
              clientId: { type: ['string', 'null'] }, callerId: { type: ['string', 'null'] }, events: { type: 'string' },
            },
          },
        },
      },
    }, async (req: FastifyRequest<{ Body: ClickToCallRequest }>, reply) => {
      const p = req.principal
      const own = p?.employeeId ?? null
      const employeeId = req.body.employeeId ?? own
      if (p?.role === 'agent' && (!own || employeeId !== own)) {
        throw new SwitchboardError('forbidden', 'agents may only place calls as themselves', 403)
      }
      if (!employeeId) throw new ValidationError('employeeId is required: this user is not linked to an employee')
      const call = await deps.outbound.start({
        employeeId, to: req.body.to, clientId: req.body.clientId ?? null, origin: 'click-to-call', requestedBy: p?.userId ?? null,
      })
      return reply.code(202).send({
        callUuid: call.callUuid, employeeId: call.employeeId, to: call.callee, clientId: call.clientId, callerId: call.callerId,
        events: `/api/calls/${call.callUuid}/events`,
      })
    })

    app.get('/api/calls/:uuid/events', {
      config: { roles: ['agent', 'supervisor', 'admin'] },
      schema: {
        tags: ['calls'], summary: 'Progress of a call Switchboard originated, as server-sent events (call.progress)',
        params: { type: 'object', additionalProperties: false, required: ['uuid'], properties: { uuid: { type: 'string', format: 'uuid' } } },
      },
    }, async (req: FastifyRequest<{ Params: { uuid: string } }>, reply) => {
      const known = deps.outbound.progress(req.params.uuid)
      if (!known) throw new NotFoundError('originated call', req.params.uuid)
      const p = req.principal
      if (p?.role === 'agent' && p.employeeId !== known.employeeId) {
        throw new SwitchboardError('forbidden', "agents may only follow their own calls", 403)
      }
      const stream = openSse(req, reply)
      const sent = new Set<string>()
      const send = (e: { stage: string; at: string }) => {
        const id = `${e.stage}`
        if (sent.has(id)) return
        sent.add(id)
        stream.send('call.progress', e, id)
        if (e.stage === 'ended' || e.stage === 'failed') stream.close()
      }
      // Subscribe first, then replay: nothing falls between the two.
      const off = deps.outbound.onProgress(req.params.uuid, send)
      for (const e of known.events) send(e)
      await stream.closed
      off()
    })
  }
}
