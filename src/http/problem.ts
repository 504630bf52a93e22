import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { SwitchboardError } from '../errors.ts'

/**
 * RFC 9457 problem details for every error. Internal errors never leak their message
 * or stack: the client gets a stable `code` and the request id to quote to support.
 */
export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  code: string
  [extra: string]: unknown
}

export function problemOf(err: unknown, requestId: string): Problem {
  if (err instanceof SwitchboardError) {
    return { type: `urn:switchboard:error:${err.code}`, title: titleOf(err.httpStatus), status: err.httpStatus, detail: err.message, code: err.code, requestId, ...(err.details ?? {}) }
  }
  const fe = err as FastifyError
  if (fe.validation) {
    return { type: 'urn:switchboard:error:validation_failed', title: 'Bad Request', status: 400, detail: fe.message, code: 'validation_failed', requestId }
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = (fe.code ?? 'bad_request').toLowerCase()
    return { type: `urn:switchboard:error:${code}`, title: titleOf(fe.statusCode), status: fe.statusCode, detail: fe.message, code, requestId }
  }
  return { type: 'urn:switchboard:error:internal', title: 'Internal Server Error', status: 500, detail: 'An internal error occurred; quote the requestId when reporting it.', code: 'internal', requestId }
}

export function sendProblem(reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply {
  const problem = problemOf(err, req.id)
  if (problem.status >= 500) req.log.error({ err }, 'request failed')
  else req.log.info({ code: problem.code, detail: problem.detail }, 'request rejected')
  return reply.code(problem.status).type('application/problem+json').send({ ...problem, instance: req.url.split('?')[0] })
}

function titleOf(status: number): string {
  const titles: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 429: 'Too Many Requests', 503: 'Service Unavailable', 504: 'Gateway Timeout' }
  return titles[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request')
}
