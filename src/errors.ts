/**
 * Typed errors with a stable machine-readable `code`. HTTP maps them to RFC 9457
 * problem details (status from `httpStatus`); everything else logs `code` + message.
 */
export class SwitchboardError extends Error {
  readonly code: string
  readonly httpStatus: number
  readonly details?: Record<string, unknown>
  constructor(code: string, message: string, httpStatus = 500, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.httpStatus = httpStatus
    this.details = details
  }
}

export class ConfigError extends SwitchboardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('config_invalid', message, 400, details)
  }
}

export class NotFoundError extends SwitchboardError {
  constructor(what: string, id: string) {
    super('not_found', `${what} ${JSON.stringify(id)} not found`, 404, { what, id })
  }
}

export class ValidationError extends SwitchboardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('validation_failed', message, 400, details)
  }
}

export class TimeoutError extends SwitchboardError {
  constructor(what: string, ms: number) {
    super('timeout', `${what} timed out after ${ms} ms`, 504, { what, ms })
  }
}

export class UnavailableError extends SwitchboardError {
  constructor(what: string, message: string, options?: { cause?: unknown }) {
    super('unavailable', `${what} unavailable: ${message}`, 503, { what }, options)
  }
}
