/**
 * Mobile-terminated FMC (issue 7): a manager who works from the mobile is rung through
 * the operator's FMC gateway. The call stays anchored in FreeSWITCH (the caller's leg
 * never leaves the PBX), so it is recorded and the failover chain (manager 30 s →
 * colleague) still applies: this is only a different dial string for the same bridge.
 */
import type { Employee } from '../crm/directory.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'

export type FmcEndpointConfig = Pick<SwitchboardFile, 'gateways' | 'fmc'>

/** Default when no config is at hand: the `fmc` gateway, and only employees without a desk phone. */
const DEFAULTS: FmcEndpointConfig = {
  gateways: { outbound: 'trunk', fmc: 'fmc', numberFormat: 'e164', ringSec: 60 },
  fmc: { destinationFrom: 'request-uri', rejectCause: 'CALL_REJECTED', mobileFirst: [] },
}

/** Rung on the mobile: listed in `fmc.mobileFirst`, or has a mobile and no extension. */
export function isMobileFirst(e: Employee, cfg: FmcEndpointConfig = DEFAULTS): boolean {
  if (!e.mobile) return false
  return cfg.fmc.mobileFirst.includes(e.id) || !e.extension
}

/** `sofia/gateway/<gateway>/<number>` in the configured number format. */
export function gatewayDialString(gateway: string, e164: string, format: SwitchboardFile['gateways']['numberFormat']): string {
  return `sofia/gateway/${gateway}/${format === 'digits' ? e164.replace(/^\+/, '') : e164}`
}

/** The FMC dial string of a mobile-first employee, else null. */
export function mobileEndpoint(e: Employee, cfg: FmcEndpointConfig = DEFAULTS): string | null {
  if (!e.mobile || !isMobileFirst(e, cfg)) return null
  return gatewayDialString(cfg.gateways.fmc, e.mobile, cfg.gateways.numberFormat)
}
