/**
 * The facts of one call, taken from the CHANNEL_DATA that FreeSWITCH sends in reply to
 * `connect` (values URL-decoded). Plain data: no behaviour, no business meaning.
 */
export interface ChannelData {
  uuid: string
  callerIdNumber: string
  callerIdName: string
  /** The dialled number (DID for inbound trunk calls, extension for internal ones). */
  destination: string
  ani: string
  direction: string
  channelName: string
  context: string
  /** mod_sofia, mod_loopback, ... */
  source: string
  /** Custom SIP headers: `variable_sip_h_X-Foo` → `X-Foo`. */
  sipHeaders: Record<string, string>
  /** Every `variable_sip_*` without the `variable_` prefix (sip_from_user, sip_call_id, ...). */
  sipVars: Record<string, string>
  /** Every channel variable without the `variable_` prefix. */
  vars: Record<string, string>
  /** Every header as received (decoded). */
  headers: Record<string, string>
}

/**
 * The call's facts from the connect reply. `vars`, `sipVars` and `sipHeaders` (~100 keys
 * each on a real SIP call) are built on first read and kept: most calls read a few.
 */
export function parseChannelData(h: Record<string, string>): ChannelData {
  let split: { vars: Record<string, string>; sipVars: Record<string, string>; sipHeaders: Record<string, string> } | undefined
  const variables = () => (split ??= splitVariables(h))
  return {
    uuid: pick(h, 'Unique-ID', 'Channel-Unique-ID', 'Caller-Unique-ID', 'variable_uuid'),
    callerIdNumber: pick(h, 'Caller-Caller-ID-Number', 'Channel-Caller-ID-Number', 'variable_caller_id_number'),
    callerIdName: pick(h, 'Caller-Caller-ID-Name', 'Channel-Caller-ID-Name', 'variable_caller_id_name'),
    destination: pick(h, 'Caller-Destination-Number', 'Channel-Destination-Number', 'variable_destination_number'),
    ani: pick(h, 'Caller-ANI', 'Channel-ANI'),
    direction: pick(h, 'Call-Direction', 'Caller-Direction', 'variable_direction'),
    channelName: pick(h, 'Channel-Name', 'Caller-Channel-Name', 'variable_channel_name'),
    context: pick(h, 'Caller-Context', 'Channel-Context'),
    source: pick(h, 'Caller-Source', 'Channel-Source'),
    get sipHeaders() {
      return variables().sipHeaders
    },
    get sipVars() {
      return variables().sipVars
    },
    get vars() {
      return variables().vars
    },
    headers: h,
  }
}

function splitVariables(h: Record<string, string>) {
  const vars: Record<string, string> = {}
  const sipVars: Record<string, string> = {}
  const sipHeaders: Record<string, string> = {}
  for (const k in h) {
    if (!k.startsWith('variable_')) continue
    const v = h[k]
    const name = k.slice('variable_'.length)
    vars[name] = v
    if (name.startsWith('sip_')) sipVars[name] = v
    if (name.startsWith('sip_h_')) sipHeaders[name.slice('sip_h_'.length)] = v
  }
  return { vars, sipVars, sipHeaders }
}

/** The first non-empty value of `keys` (a module function: tsx names inner closures on every call). */
function pick(h: Record<string, string>, ...keys: string[]): string {
  for (const k of keys) if (h[k] !== undefined && h[k] !== '') return h[k]
  return ''
}
