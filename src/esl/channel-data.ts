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
  /** One header, decoded, without building `headers` (the connect reply has ~150). */
  header(name: string): string | undefined
  /** One channel variable (`variable_<name>`), decoded, without building `vars`. */
  variable(name: string): string | undefined
}

/** Where the channel data comes from: the connect reply (see EslReply). */
export interface HeaderSource {
  readonly headers: Record<string, string>
  header(name: string): string | undefined
}

/**
 * The call's facts from the connect reply. `headers`, `vars`, `sipVars` and `sipHeaders`
 * (~100 keys each on a real SIP call) are built on first read and kept: a call reads a
 * few values, through header() and variable(). A plain object works as a source too.
 */
export function parseChannelData(source: HeaderSource | Record<string, string>): ChannelData {
  const src: HeaderSource = typeof source.header === 'function' ? (source as HeaderSource) : plainSource(source as Record<string, string>)
  const h = (name: string) => src.header(name)
  let split: { vars: Record<string, string>; sipVars: Record<string, string>; sipHeaders: Record<string, string> } | undefined
  const variables = () => (split ??= splitVariables(src.headers))
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
    get headers() {
      return src.headers
    },
    header: h,
    variable: (name: string) => src.header(`variable_${name}`),
  }
}

function plainSource(headers: Record<string, string>): HeaderSource {
  return { headers, header: (name) => headers[name] }
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
function pick(h: (name: string) => string | undefined, ...keys: string[]): string {
  for (const k of keys) {
    const v = h(k)
    if (v !== undefined && v !== '') return v
  }
  return ''
}
