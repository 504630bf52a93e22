import { pino, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

/**
 * One root logger per process. Pretty output when a person is watching a terminal,
 * JSON lines otherwise (compose, CI, log shippers). Children carry context such as
 * `call_uuid`; never use console.log.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options: LoggerOptions = { level, base: { service: 'switchboard' } }
  if (process.stdout.isTTY && !process.env.CI) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard' } } })
  }
  return pino(options)
}

/** A logger that drops everything: for tests that assert behaviour, not log output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
