import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { Logger } from '../log.ts'
import type { CallerIdentity, DirectorySnapshot } from './directory.ts'
import { createLiveLookup } from './live-lookup.ts'

export type UnknownCallerLookup = (e164: string) => Promise<CallerIdentity>

/**
 * The call path's view of the live CRM lookup (seed 000): only numbers the directory does
 * not know are asked, within the configured timeout; a client found is learnt into the
 * in-memory directory so the next call is answered from memory. Undefined when no lookup
 * is configured.
 */
export function unknownCallerLookup(cfg: SwitchboardFile, directory: () => DirectorySnapshot, log: Logger): UnknownCallerLookup | undefined {
  const c = cfg.crm.liveLookup
  if (!c) return undefined
  const lookup = createLiveLookup({
    url: c.url, method: c.method, timeoutMs: c.timeoutMs, concurrency: c.concurrency, cacheTtlMs: c.cacheTtlSec * 1000,
    failureThreshold: c.failureThreshold, coolDownMs: c.coolDownSec * 1000, logger: log,
  })
  return async (e164) => {
    const r = await lookup.lookup(e164)
    if (r.kind !== 'client') return { kind: 'unidentified' }
    directory().learnPhone(e164, r.client)
    return { kind: 'client', client: r.client, source: 'live' }
  }
}
