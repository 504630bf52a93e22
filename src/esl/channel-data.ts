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
 * few values, through header() and variable().
 */
export function parseChannelData(source: HeaderSource): ChannelData {
  return new ConnectChannelData(source)
}

/** A class: getters on the prototype, one object per call. */
class ConnectChannelData implements ChannelData {
  readonly uuid: string
  readonly callerIdNumber: string
  readonly callerIdName: string
  readonly destination: string
  readonly ani: string
  readonly direction: string
  readonly channelName: string
  readonly context: string
  readonly source: string
  private split: { vars: Record<string, string>; sipVars: Record<string, string>; sipHeaders: Record<string, string> } | undefined

  constructor(private readonly src: HeaderSource) {
    this.uuid = pick(src, 'Unique-ID', 'Channel-Unique-ID', 'Caller-Unique-ID', 'variable_uuid')
    this.callerIdNumber = pick(src, 'Caller-Caller-ID-Number', 'Channel-Caller-ID-Number', 'variable_caller_id_number')
    this.callerIdName = pick(src, 'Caller-Caller-ID-Name', 'Channel-Caller-ID-Name', 'variable_caller_id_name')
    this.destination = pick(src, 'Caller-Destination-Number', 'Channel-Destination-Number', 'variable_destination_number')
    this.ani = pick(src, 'Caller-ANI', 'Channel-ANI')
    this.direction = pick(src, 'Call-Direction', 'Caller-Direction', 'variable_direction')
    this.channelName = pick(src, 'Channel-Name', 'Caller-Channel-Name', 'variable_channel_name')
    this.context = pick(src, 'Caller-Context', 'Channel-Context')
    this.source = pick(src, 'Caller-Source', 'Channel-Source')
  }

  get headers(): Record<string, string> {
    return this.src.headers
  }

  get vars(): Record<string, string> {
    return (this.split ??= splitVariables(this.src.headers)).vars
  }

  get sipVars(): Record<string, string> {
    return (this.split ??= splitVariables(this.src.headers)).sipVars
  }

  get sipHeaders(): Record<string, string> {
    return (this.split ??= splitVariables(this.src.headers)).sipHeaders
  }

  header(name: string): string | undefined {
    return this.src.header(name)
  }

  /** An arrow: callers pass it around as a lookup function. */
  readonly variable = (name: string): string | undefined => this.src.header(`variable_${name}`)

  /** What logs and JSON see: the plain fields and the variables. */
  toJSON() {
    const { uuid, callerIdNumber, callerIdName, destination, ani, direction, channelName, context, source } = this
    return { uuid, callerIdNumber, callerIdName, destination, ani, direction, channelName, context, source, sipHeaders: this.sipHeaders, vars: this.vars }
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
function pick(src: HeaderSource, ...keys: string[]): string {
  for (const k of keys) {
    const v = src.header(k)
    if (v !== undefined && v !== '') return v
  }
  return ''
}
