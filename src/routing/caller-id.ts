/**
 * Outbound caller id by the callee's region (seed 001: clients in Novosibirsk did not call
 * back a Yekaterinburg number). Pure. Order: an explicit legacy dialled prefix (stripped),
 * then the longest callee E.164 prefix, then the client's region, then the default.
 */
import type { SwitchboardFile, CallerIdRule } from '../config/switchboard-file.ts'

export interface CallerIdChoice {
  callerId: string
  /** What to dial: `dialled` without a matched legacy prefix. */
  dial: string
  rule: string | null
  reason: string
}

export function chooseCallerId(
  calleeE164: string | null,
  dialled: string,
  config: Pick<SwitchboardFile, 'callerId'>,
  opts: { clientRegion?: string } = {},
): CallerIdChoice | null {
  const cid = config.callerId
  if (!cid) return null
  const name = (r: CallerIdRule, i: number) => r.name ?? `callerId.rules[${i}]`

  let best: { rule: CallerIdRule; i: number; len: number } | null = null
  for (let i = 0; i < cid.rules.length; i++) {
    const rule = cid.rules[i]
    if (rule.dialledPrefix !== undefined && dialled.startsWith(rule.dialledPrefix) && dialled.length > rule.dialledPrefix.length + 4) {
      return {
        callerId: rule.callerId, dial: dialled.slice(rule.dialledPrefix.length), rule: name(rule, i),
        reason: `dialled prefix ${rule.dialledPrefix} → ${rule.callerId}`,
      }
    }
    if (rule.calleePrefix !== undefined && calleeE164 !== null && calleeE164.startsWith(rule.calleePrefix)) {
      if (!best || rule.calleePrefix.length > best.len) best = { rule, i, len: rule.calleePrefix.length }
    }
  }
  if (best) {
    return { callerId: best.rule.callerId, dial: dialled, rule: name(best.rule, best.i), reason: `callee ${calleeE164} matches ${best.rule.calleePrefix} → ${best.rule.callerId}` }
  }
  if (opts.clientRegion !== undefined) {
    const want = opts.clientRegion.trim().toLowerCase()
    const i = cid.rules.findIndex(r => r.clientRegion !== undefined && r.clientRegion.trim().toLowerCase() === want)
    if (i >= 0) {
      const rule = cid.rules[i]
      return { callerId: rule.callerId, dial: dialled, rule: name(rule, i), reason: `client region ${opts.clientRegion} → ${rule.callerId}` }
    }
  }
  return { callerId: cid.default, dial: dialled, rule: null, reason: `no rule matched → default ${cid.default}` }
}
