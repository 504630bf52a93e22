/**
 * Where an FMC trunk puts the number a manager dialled on the mobile (issue 7). Operators
 * differ: most send it as the request URI, some keep the PBX's pilot number there and
 * carry the real destination in a Diversion or History-Info header, some in a header
 * FreeSWITCH's dialplan maps to a channel variable. Pure: channel facts in, raw number out;
 * normalising to E.164 is the caller's job (at the edge, with the config's default region).
 */
import type { FmcConfig } from '../config/switchboard-file.ts'

export interface FmcChannelFacts {
  /** Caller-Destination-Number (the request URI's user part). */
  destination: string
  /** Channel variables without `variable_`. */
  vars: Readonly<Record<string, string>>
}

export interface FmcDestination {
  /** The number as the trunk gave it (user part, no `sip:`/host), or null when absent. */
  raw: string | null
  /** Human-readable: which field it came from, for the CDR's reasons and the logs. */
  from: string
}

export function fmcDestination(facts: FmcChannelFacts, cfg: Pick<FmcConfig, 'destinationFrom' | 'variable'>): FmcDestination {
  switch (cfg.destinationFrom) {
    case 'request-uri':
      return { raw: nonEmpty(facts.destination) ?? userPart(facts.vars.sip_req_user ?? ''), from: 'request URI' }
    case 'diversion': {
      const header = facts.vars.sip_h_Diversion ?? facts.vars['sip_h_diversion'] ?? facts.vars.sip_i_diversion
      return { raw: header === undefined ? null : userPart(firstEntry(header)), from: 'Diversion header' }
    }
    case 'history-info': {
      const header = facts.vars.sip_history_info ?? facts.vars['sip_h_History-Info'] ?? facts.vars.sip_i_history_info
      return { raw: header === undefined ? null : userPart(firstEntry(header)), from: 'History-Info header' }
    }
    case 'variable': {
      const name = cfg.variable ?? ''
      const v = facts.vars[name]
      return { raw: v === undefined ? null : userPart(v), from: `variable ${name}` }
    }
  }
}

/**
 * First entry of a (possibly repeated) header. FreeSWITCH gives repeated headers as
 * `ARRAY::a|:b`; one header may also list entries separated by commas outside `<…>` and quotes.
 * History-Info's first entry (index=1) is the original target.
 */
export function firstEntry(header: string): string {
  const value = header.startsWith('ARRAY::') ? header.slice(7).split('|:')[0] : header
  let depth = 0
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c === '"') quoted = !quoted
    else if (quoted) continue
    else if (c === '<') depth++
    else if (c === '>') depth = Math.max(0, depth - 1)
    else if (c === ',' && depth === 0) return value.slice(0, i).trim()
  }
  return value.trim()
}

/** `"Name" <sip:+7495…@host;user=phone>;reason=…` / `tel:+7495…` / `+7495…` → `+7495…`. */
export function userPart(entry: string): string | null {
  let s = entry.trim()
  const angle = /<([^>]*)>/.exec(s)
  if (angle) s = angle[1]
  s = s.replace(/^(sips?|tel):/i, '')
  s = s.split(/[@;?]/)[0]
  try { s = decodeURIComponent(s) } catch { /* keep as is */ }
  return nonEmpty(s.trim())
}

function nonEmpty(s: string | undefined): string | null {
  return s === undefined || s === '' ? null : s
}
