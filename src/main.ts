import { startSwitchboard } from './server.ts'
import { createLogger } from './log.ts'
import { SwitchboardError } from './errors.ts'
import { takeOverSignalsFromEmbeddedPostgres } from './db/embedded.ts'

/**
 * `npm start`. Starts everything, reloads the switchboard config on SIGHUP (an invalid
 * one is refused and the running one stays) and stops cleanly on SIGINT/SIGTERM:
 * ESL listener closed, HTTP drained, running jobs finished, pool closed, embedded
 * Postgres stopped — no orphan process left behind.
 */
const log = createLogger(process.env.LOG_LEVEL ?? 'info')

// A call server must not die because a library lost its database connection in a way
// nobody awaited (seen with graphile-worker during a Postgres outage): log it loudly and
// keep serving calls; the parts recover through their own retries and the spool scanner.
process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled promise rejection (kept running)'))

try {
  const sb = await startSwitchboard(process.env, log)
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping')
    const force = setTimeout(() => { log.error('shutdown took too long; exiting'); process.exit(1) }, 30_000)
    force.unref()
    await sb.stop()
    log.info('stopped')
    process.exit(0)
  }
  takeOverSignalsFromEmbeddedPostgres()
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGHUP', () => void sb.config.reload())
} catch (err) {
  if (err instanceof SwitchboardError) {
    log.fatal({ code: err.code }, err.message)
  } else {
    log.fatal({ err }, 'start-up failed')
  }
  process.exit(1)
}
