import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { TimeoutError, ValidationError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { ChannelData } from './channel-data.ts'
import type { EslConnection } from './connection.ts'
import { ChannelHungupError, EslClosedError, EslCommandError } from './errors.ts'
import type { EslEvent } from './event.ts'

/** What CHANNEL_EXECUTE_COMPLETE said about one application run. */
export interface ExecuteResult {
  application: string
  data: string
  /** Application-Response: `FILE PLAYED`, `_none_`, ... */
  response: string
  /** The Application-UUID FreeSWITCH reported (ours when it honoured Event-UUID). */
  applicationUuid: string
  /** All headers of the completion event (variable_* included). */
  headers: Record<string, string>
}

export interface PlayAndGetDigitsOptions {
  min?: number
  max?: number
  tries?: number
  timeoutMs?: number
  terminators?: string
  file: string
  invalidFile?: string
  regex?: string
  varName?: string
  digitTimeoutMs?: number
}

export interface BridgeOptions {
  timeoutSec?: number
  callerIdNumber?: string
  callerIdName?: string
  /** Extra variables for the originated legs (`{k=v}` in the dial string). */
  vars?: Record<string, string>
}

export type BridgeResult =
  | { answered: true; bLegUuid: string; hangupCause?: string }
  | { answered: false; cause: string }

export interface HangupCompleteInfo {
  cause: string
  billsec: number
  duration: number
  /** Channel variables (without `variable_`) at the end: record_ms, record_file_size, ... (all ~150, built on first read) */
  vars: Record<string, string>
  /** One of them, without building `vars`. */
  variable(name: string): string | undefined
}

export interface CallChannelEvents {
  answer: []
  /** duration in samples, as FreeSWITCH reports it (DTMF-Duration). */
  dtmf: [{ digit: string; duration: number }]
  bridge: [{ otherUuid: string }]
  unbridge: [{ otherUuid: string }]
  hangup: [{ cause: string }]
  hangupComplete: [HangupCompleteInfo]
  executeComplete: [ExecuteResult]
  /** Every event as received, for consumers that need more than the typed ones. */
  event: [EslEvent]
  /** The socket is gone (after the disconnect notices, or on a wire failure). */
  end: [{ reason: string }]
}

interface PendingExec {
  eventUuid: string
  app: string
  arg: string
  resolve: (r: ExecuteResult) => void
  reject: (e: Error) => void
  bridgedTo?: string
}

export type ChannelState = 'ringing' | 'answered' | 'hungup' | 'ended'

export interface ApiOptions {
  /** Stop waiting after this long (TimeoutError); the socket stays usable. Default: the ESL command timeout. */
  timeoutMs?: number
}

export interface RecordLegOptions extends ApiOptions {
  /** Caller left, other party right (sets RECORD_STEREO on the channel first). Default true. */
  stereo?: boolean
  /** Stop by itself after this many seconds (uuid_record's <limit>). */
  limitSec?: number
  /** Sets RECORD_MIN_SEC on the channel first: FreeSWITCH deletes shorter files (its default is 3). */
  minSec?: number
  /** Record another channel (a consultation or conference leg) through this socket. Default: this channel. */
  uuid?: string
}

/** A recording this channel started and FreeSWITCH has not closed yet. */
export interface ActiveRecording {
  path: string
  uuid: string
  via: 'record_session' | 'uuid_record'
  masked: boolean
}

/**
 * One call as FreeSWITCH's outbound socket shows it, with the wire hidden. Every
 * application runs with `event-lock: true` and an `Event-UUID` we choose, so FreeSWITCH
 * runs them in order and reports each one's CHANNEL_EXECUTE_COMPLETE with our id as
 * Application-UUID; the returned promise settles on that completion. No business logic.
 */
export class CallChannel extends EventEmitter<CallChannelEvents> {
  readonly uuid: string
  state: ChannelState = 'ringing'
  hangupCause: string | undefined
  hangupInfo: HangupCompleteInfo | undefined
  /** Resolves when the socket has closed; never rejects. */
  readonly ended: Promise<{ reason: string }>
  private readonly pending: PendingExec[] = []
  private hangupWaiters: Array<() => void> = []
  private readonly activeRecordings = new Map<string, ActiveRecording>()

  private logger: Logger | undefined

  /** `log` may be a function: the call's pino child is then made when first needed (see outbound-server.ts). */
  constructor(
    private readonly conn: EslConnection,
    readonly channelData: ChannelData,
    private readonly makeLog: Logger | (() => Logger),
    /** With a lazy `log`: the logger it is made from, asked whether debug is on without making it. */
    private readonly parentLog?: Logger,
  ) {
    super()
    this.uuid = channelData.uuid
    if (channelData.header('Answer-State') === 'answered') this.state = 'answered'
    this.ended = new Promise((resolve) => {
      conn.once('close', ({ reason, error }) => {
        this.onClose(reason, error)
        resolve({ reason })
      })
    })
    conn.on('event', (e) => this.onEvent(e))
  }

  /** This call's logger (call_uuid bound). */
  get log(): Logger {
    return (this.logger ??= typeof this.makeLog === 'function' ? this.makeLog() : this.makeLog)
  }

  get isUp(): boolean {
    return this.state === 'ringing' || this.state === 'answered'
  }

  /** Run any dialplan application; resolves on its CHANNEL_EXECUTE_COMPLETE. */
  execute(app: string, arg = ''): Promise<ExecuteResult> {
    try {
      checkWireValue('application', app)
      checkWireValue('argument', arg)
    } catch (err) {
      return Promise.reject(err)
    }
    if (!this.isUp) return Promise.reject(new ChannelHungupError(this.uuid, app, this.hangupCause))
    const eventUuid = randomUUID()
    // sendmsg with call-command: execute, event-lock and our Event-UUID (formatted here: this runs for every application).
    const text =
      `sendmsg\ncall-command: execute\nexecute-app-name: ${app}\n` +
      (arg !== '' ? `execute-app-arg: ${arg}\n` : '') +
      `event-lock: true\nEvent-UUID: ${eventUuid}\n\n`
    return new Promise<ExecuteResult>((resolve, reject) => {
      const p: PendingExec = { eventUuid, app, arg, resolve, reject }
      this.pending.push(p)
      // The reply only says queued (+OK) or refused; the result is the completion event.
      this.conn.sendThen(
        text,
        'sendmsg',
        (reply) => {
          if (!reply.ok) this.settle(p, new EslCommandError(`sendmsg ${app}`, reply.text))
        },
        // A tick later, as a promise would: when the socket closes, the channel's own close
        // handler settles first with the real cause (a protocol error, a timeout).
        (err: Error) => queueMicrotask(() => this.settle(p, err instanceof EslClosedError && !this.isUp ? new ChannelHungupError(this.uuid, app, this.hangupCause) : err)),
      )
    })
  }

  answer(): Promise<ExecuteResult> {
    return this.execute('answer')
  }

  /** Play a file or stream; resolves with Application-Response (`FILE PLAYED`). */
  async playback(file: string): Promise<string> {
    return (await this.execute('playback', file)).response
  }

  /** Play a tone_stream spec, e.g. `%(200,100,440);loops=3`. */
  tone(spec: string): Promise<string> {
    return this.playback(`tone_stream://${spec}`)
  }

  /** mod_say: `say('123', { type: 'number' })`. */
  async say(text: string, opts: { lang?: string; type?: string; method?: string } = {}): Promise<string> {
    const arg = `${opts.lang ?? 'en'} ${opts.type ?? 'number'} ${opts.method ?? 'pronounced'} ${text}`
    return (await this.execute('say', arg)).response
  }

  /** Digits the caller entered that matched `regex`, or '' (timeout, no match, tries used up). */
  async playAndGetDigits(o: PlayAndGetDigitsOptions): Promise<string> {
    const varName = o.varName ?? 'switchboard_digits'
    for (const [k, v] of Object.entries({ file: o.file, invalidFile: o.invalidFile ?? '', varName, regex: o.regex ?? '' })) {
      if (/\s/.test(v)) throw new ValidationError(`playAndGetDigits ${k} must not contain spaces`, { [k]: v })
    }
    const parts = [
      o.min ?? 1,
      o.max ?? 1,
      o.tries ?? 1,
      o.timeoutMs ?? 5000,
      o.terminators ?? '#',
      o.file,
      o.invalidFile ?? 'silence_stream://250',
      varName,
      o.regex ?? '\\d+',
    ]
    if (o.digitTimeoutMs !== undefined) parts.push(o.digitTimeoutMs)
    const r = await this.execute('play_and_get_digits', parts.join(' '))
    const result = r.headers['variable_read_result']
    if (result !== undefined && result !== 'success') return ''
    return r.headers[`variable_${varName}`] ?? ''
  }

  /**
   * Bridge to one endpoint or ring several at once. Resolves when the bridge is over
   * (the other party hung up, A-leg stays up) or failed (NO_ANSWER, USER_BUSY, ...).
   */
  async bridge(endpoints: string[] | string, opts: BridgeOptions = {}): Promise<BridgeResult> {
    const list = Array.isArray(endpoints) ? endpoints : [endpoints]
    if (list.length === 0) throw new ValidationError('bridge needs at least one endpoint')
    const vars: Record<string, string> = { ...opts.vars }
    if (opts.timeoutSec !== undefined) vars.originate_timeout = String(opts.timeoutSec)
    if (opts.callerIdNumber !== undefined) vars.origination_caller_id_number = opts.callerIdNumber
    if (opts.callerIdName !== undefined) vars.origination_caller_id_name = opts.callerIdName
    const globals = Object.entries(vars)
      .map(([k, v]) => `${k}=${v.replace(/,/g, '\\,')}`)
      .join(',')
    const dial = (globals ? `{${globals}}` : '') + list.join(',')
    let bridgedTo: string | undefined
    const onBridge = ({ otherUuid }: { otherUuid: string }) => (bridgedTo ??= otherUuid)
    this.on('bridge', onBridge)
    let r: ExecuteResult
    try {
      r = await this.execute('bridge', dial)
    } finally {
      this.off('bridge', onBridge)
    }
    // Single values (see EslEvent.header): the completion of a bridge carries ~150 headers.
    const disposition = headerOf(r, 'variable_originate_disposition')
    if (bridgedTo || disposition === 'SUCCESS') {
      const bLegUuid = bridgedTo ?? headerOf(r, 'Other-Leg-Unique-ID') ?? headerOf(r, 'variable_bridge_uuid') ?? ''
      return { answered: true, bLegUuid, hangupCause: headerOf(r, 'variable_bridge_hangup_cause') }
    }
    return { answered: false, cause: disposition ?? dialstatusToCause(headerOf(r, 'variable_DIALSTATUS')) }
  }

  /** record_session into `path` (stereo: caller left, other party right); stops at hangup. */
  async startRecording(path: string, opts: { stereo?: boolean; vars?: Record<string, string> } = {}): Promise<void> {
    const vars: Record<string, string> = { RECORD_STEREO: String(opts.stereo ?? true), RECORD_MIN_SEC: '0', ...opts.vars }
    for (const [k, v] of Object.entries(vars)) {
      if (/\s/.test(k + v)) throw new ValidationError('recording variables must not contain spaces', { [k]: v })
    }
    // Both queued at once (one packet): event-lock makes FreeSWITCH run them in this order.
    await Promise.all([this.execute('multiset', Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')), this.execute('record_session', path)])
    this.activeRecordings.set(path, { path, uuid: this.uuid, via: 'record_session', masked: false })
  }

  async stopRecording(path: string): Promise<void> {
    await this.execute('stop_record_session', path)
    this.forgetRecordings(path)
  }

  /**
   * `api <command>` on this call's own socket. FreeSWITCH runs it at once and answers
   * `api/response`, even while an application (bridge, playback) holds the event-lock
   * queue: the way to act on a call in the middle of a bridge. Resolves with the response
   * body (one trailing newline removed); rejects with EslCommandError on `-ERR`/`-USAGE`,
   * TimeoutError after `timeoutMs`, EslClosedError once the socket is gone.
   */
  async api(command: string, opts: ApiOptions = {}): Promise<string> {
    checkWireValue('api command', command)
    if (command.trim() === '') throw new ValidationError('api command must not be empty')
    const reply = await this.conn.command(`api ${command}`, {}, { giveUpAfterMs: opts.timeoutMs })
    if (!reply.ok) throw new EslCommandError(`api ${command}`, reply.text.trim())
    return reply.body.endsWith('\n') ? reply.body.slice(0, -1) : reply.body
  }

  /**
   * `bgapi <command>` on this call's socket: FreeSWITCH answers `+OK Job-UUID` at once and
   * runs the command in the background (an `originate` that rings for 20 s does not hold
   * up this socket); the result comes as BACKGROUND_JOB, which a `myevents` socket still
   * receives because its Job-Owner-UUID is this channel. Resolves with that event's body
   * (`+OK <uuid>`, `-ERR NO_ANSWER`…), whatever it says; rejects with TimeoutError after
   * `timeoutMs`, EslClosedError when the socket goes away first.
   */
  async bgapi(command: string, opts: { timeoutMs: number }): Promise<string> {
    checkWireValue('bgapi command', command)
    if (command.trim() === '') throw new ValidationError('bgapi command must not be empty')
    const jobUuid = randomUUID()
    let onEvent!: (e: EslEvent) => void
    let onEnd!: () => void
    let timer: NodeJS.Timeout | undefined
    const result = new Promise<string>((resolve, reject) => {
      onEvent = (e) => { if (e.name === 'BACKGROUND_JOB' && e.headers['Job-UUID'] === jobUuid) resolve(e.body) }
      onEnd = () => reject(new EslClosedError(`socket closed before the result of bgapi ${command.split(' ')[0]}`))
      timer = setTimeout(() => reject(new TimeoutError(`bgapi ${command.split(' ')[0]}`, opts.timeoutMs)), opts.timeoutMs)
    })
    this.on('event', onEvent)
    this.once('end', onEnd)
    try {
      const reply = await this.conn.command(`bgapi ${command}`, { 'Job-UUID': jobUuid })
      if (!reply.ok) throw new EslCommandError(`bgapi ${command}`, reply.text.trim())
      return await result
    } finally {
      clearTimeout(timer)
      this.off('event', onEvent)
      this.off('end', onEnd)
    }
  }

  /**
   * Ask for more event types on this socket (`event NAME…`, added to what the server asked
   * for): e.g. CHANNEL_EXECUTE, which the server's defaults drop (defaults.ts).
   */
  async subscribe(names: string[], opts: ApiOptions = {}): Promise<void> {
    for (const n of names) checkToken('event name', n)
    if (names.length === 0) return
    const reply = await this.conn.command(`event ${names.join(' ')}`, {}, { giveUpAfterMs: opts.timeoutMs })
    if (!reply.ok) throw new EslCommandError(`event ${names.join(' ')}`, reply.text)
  }

  /** `uuid_setvar`: set a channel variable now, not queued behind the running application. */
  async setVar(name: string, value: string, opts: ApiOptions & { uuid?: string } = {}): Promise<void> {
    checkToken('variable name', name)
    if (/[\r\n]/.test(value)) throw new ValidationError('variable value must not contain line breaks', { name })
    await this.api(`uuid_setvar ${opts.uuid ?? this.uuid} ${name} ${value}`, opts)
  }

  /** `uuid_getvar`: a channel variable now; undefined when unset (FreeSWITCH answers `_undef_`). */
  async getVar(name: string, opts: ApiOptions & { uuid?: string } = {}): Promise<string | undefined> {
    checkToken('variable name', name)
    const v = await this.api(`uuid_getvar ${opts.uuid ?? this.uuid} ${name}`, opts)
    return v === '_undef_' ? undefined : v
  }

  /**
   * Start a recording now, in the middle of a bridge if need be (`uuid_record … start`,
   * not queued behind the bridge). Each bridged conversation gets its own file: stereo,
   * this channel's caller left, the other party right. FreeSWITCH needs media on the
   * channel (answered or early media); it closes the file at stop, at the limit, or at
   * hangup, and deletes it if shorter than RECORD_MIN_SEC.
   */
  async recordLeg(path: string, opts: RecordLegOptions = {}): Promise<void> {
    checkToken('recording path', path)
    const uuid = opts.uuid ?? this.uuid
    if (opts.limitSec !== undefined && !(Number.isInteger(opts.limitSec) && opts.limitSec > 0)) {
      throw new ValidationError('recording limit must be a positive whole number of seconds', { limitSec: opts.limitSec })
    }
    if (opts.minSec !== undefined && !(Number.isInteger(opts.minSec) && opts.minSec >= 0)) {
      throw new ValidationError('RECORD_MIN_SEC must be a whole number of seconds', { minSec: opts.minSec })
    }
    await this.setVar('RECORD_STEREO', String(opts.stereo ?? true), { ...opts, uuid })
    if (opts.minSec !== undefined) await this.setVar('RECORD_MIN_SEC', String(opts.minSec), { ...opts, uuid })
    await this.api(`uuid_record ${uuid} start ${path}${opts.limitSec !== undefined ? ` ${opts.limitSec}` : ''}`, opts)
    this.activeRecordings.set(path, { path, uuid, via: 'uuid_record', masked: false })
  }

  /** `uuid_record … stop <path>` (or `all`): FreeSWITCH closes the file and finalises its header. */
  async stopLegRecording(path: string, opts: ApiOptions = {}): Promise<void> {
    checkToken('recording path', path)
    const uuid = this.activeRecordings.get(path)?.uuid ?? this.uuid
    await this.api(`uuid_record ${uuid} stop ${path}`, opts)
    this.forgetRecordings(path)
  }

  /**
   * Mask a running recording (`uuid_record … mask <path>`, FreeSWITCH ≥ 1.10): from now on
   * the file gets silence instead of audio, both directions together, the call itself is
   * not affected — for card numbers and the like. Works for record_session files too, at
   * once (the apps record_session_mask/unmask would wait behind a running bridge). A mask
   * applies to one file: use maskRecordings() to mask everything this channel records.
   */
  async maskRecording(path: string, opts: ApiOptions = {}): Promise<void> {
    await this.setMask(path, true, opts)
  }

  /** `uuid_record … unmask <path>`: live audio again from now on. */
  async unmaskRecording(path: string, opts: ApiOptions = {}): Promise<void> {
    await this.setMask(path, false, opts)
  }

  /** Mask every recording this channel started and FreeSWITCH still writes; resolves with their paths. */
  async maskRecordings(opts: ApiOptions = {}): Promise<string[]> {
    const paths = [...this.activeRecordings.keys()]
    await Promise.all(paths.map((p) => this.setMask(p, true, opts)))
    return paths
  }

  async unmaskRecordings(opts: ApiOptions = {}): Promise<string[]> {
    const paths = [...this.activeRecordings.keys()]
    await Promise.all(paths.map((p) => this.setMask(p, false, opts)))
    return paths
  }

  /**
   * The dialplan apps record_session_mask / record_session_unmask (mod_dptools). They are
   * queued like every application: during a bridge they run only after it, so prefer
   * maskRecording() there. Resolves when the app has run.
   */
  async recordSessionMask(path: string): Promise<void> {
    checkToken('recording path', path)
    await this.execute('record_session_mask', path)
    const r = this.activeRecordings.get(path)
    if (r) r.masked = true
  }

  async recordSessionUnmask(path: string): Promise<void> {
    checkToken('recording path', path)
    await this.execute('record_session_unmask', path)
    const r = this.activeRecordings.get(path)
    if (r) r.masked = false
  }

  /** Recordings this channel started that are still open (as far as this side knows). */
  get recordings(): ActiveRecording[] {
    return [...this.activeRecordings.values()].map((r) => ({ ...r }))
  }

  async set(name: string, value: string): Promise<void> {
    await this.execute('set', `${name}=${value}`)
  }

  async export(name: string, value: string): Promise<void> {
    await this.execute('export', `${name}=${value}`)
  }

  /** Transfer to a dialplan extension; the socket session ends afterwards. */
  async transfer(dest: string, opts: { dialplan?: string; context?: string } = {}): Promise<void> {
    await this.execute('transfer', `${dest} ${opts.dialplan ?? 'XML'} ${opts.context ?? 'default'}`)
  }

  /**
   * Hang up now, even while an application (playback, bridge) runs: `call-command: hangup`
   * is not queued behind the running application. Idempotent; resolves on CHANNEL_HANGUP.
   */
  async hangup(cause = 'NORMAL_CLEARING'): Promise<void> {
    checkWireValue('hangup cause', cause)
    if (!this.isUp) return
    const hungUp = new Promise<void>((resolve) => this.hangupWaiters.push(resolve))
    try {
      const reply = await this.conn.command('sendmsg', { 'call-command': 'hangup', 'hangup-cause': cause })
      if (!reply.ok) throw new EslCommandError('sendmsg hangup', reply.text)
    } catch (err) {
      if (!this.isUp) return
      throw err
    }
    await hungUp
  }

  private async setMask(path: string, on: boolean, opts: ApiOptions): Promise<void> {
    checkToken('recording path', path)
    const r = this.activeRecordings.get(path)
    await this.api(`uuid_record ${r?.uuid ?? this.uuid} ${on ? 'mask' : 'unmask'} ${path}`, opts)
    if (r) r.masked = on
  }

  private forgetRecordings(path: string): void {
    if (path === 'all') this.activeRecordings.clear()
    else this.activeRecordings.delete(path)
  }

  /** Close the socket (FreeSWITCH hangs up a call whose socket application goes away). */
  close(): void {
    this.conn.close('closed by application')
  }

  private onEvent(e: EslEvent): void {
    this.emit('event', e)
    // e.header() reads single values without building the whole header object (see EslEvent).
    switch (e.name) {
      case 'CHANNEL_ANSWER':
        if (this.state === 'ringing') this.state = 'answered'
        this.emit('answer')
        break
      case 'DTMF':
        this.emit('dtmf', { digit: e.header('DTMF-Digit') ?? '', duration: Number(e.header('DTMF-Duration') ?? 0) })
        break
      case 'CHANNEL_BRIDGE':
        this.emit('bridge', { otherUuid: e.header('Other-Leg-Unique-ID') ?? e.header('Bridge-B-Unique-ID') ?? '' })
        break
      case 'CHANNEL_UNBRIDGE': {
        const otherUuid = e.header('Other-Leg-Unique-ID') ?? e.header('Bridge-B-Unique-ID') ?? ''
        // Recordings on the other leg end with it.
        for (const [path, r] of this.activeRecordings) if (r.uuid === otherUuid) this.activeRecordings.delete(path)
        this.emit('unbridge', { otherUuid })
        break
      }
      case 'CHANNEL_HANGUP':
        this.markHungUp(e.header('Hangup-Cause') ?? e.header('variable_hangup_cause') ?? 'UNKNOWN')
        break
      case 'CHANNEL_EXECUTE_COMPLETE':
        this.onExecuteComplete(e)
        break
      case 'CHANNEL_HANGUP_COMPLETE': {
        const cause = e.header('Hangup-Cause') ?? e.header('variable_hangup_cause') ?? 'UNKNOWN'
        this.markHungUp(cause)
        this.hangupInfo = hangupCompleteInfo(e, cause)
        this.emit('hangupComplete', this.hangupInfo)
        // Nothing queued will run any more: FreeSWITCH reports no completion for it.
        this.failPending()
        break
      }
    }
  }

  private onExecuteComplete(e: EslEvent): void {
    const a = e.headersStartingWith('Application')
    const appUuid = a['Application-UUID'] ?? ''
    const app = a['Application'] ?? ''
    // Ours by id; otherwise (a FreeSWITCH that ignored Event-UUID, or a replayed capture)
    // the oldest pending run of the same application — event-lock keeps them in order.
    let p = this.pending.find((x) => x.eventUuid === appUuid)
    p ??= this.pending.find((x) => x.app === app)
    const result = executeResult(e, app, appUuid, a['Application-Data'] ?? '', a['Application-Response'] ?? '')
    if (this.listenerCount('executeComplete') > 0) this.emit('executeComplete', result)
    if (!p) return
    if (!this.isUp && p.app !== 'hangup') this.settle(p, new ChannelHungupError(this.uuid, p.app, this.hangupCause))
    else this.settle(p, null, result)
  }

  private settle(p: PendingExec, err: Error | null, result?: ExecuteResult): void {
    const i = this.pending.indexOf(p)
    if (i < 0) return
    this.pending.splice(i, 1)
    if (err) p.reject(err)
    else p.resolve(result!)
  }

  private markHungUp(cause: string): void {
    if (!this.isUp) return
    // FreeSWITCH closes every recording of the channel at hangup.
    this.activeRecordings.clear()
    this.state = 'hungup'
    this.hangupCause = cause
    if ((this.logger ?? this.parentLog ?? this.log).isLevelEnabled('debug')) this.log.debug({ cause }, 'channel hung up')
    this.emit('hangup', { cause })
    for (const w of this.hangupWaiters.splice(0)) w()
  }

  private failPending(error?: Error): void {
    for (const p of [...this.pending]) this.settle(p, error ?? new ChannelHungupError(this.uuid, p.app, this.hangupCause))
  }

  private onClose(reason: string, error?: Error): void {
    const wasUp = this.isUp
    if (wasUp) this.markHungUp(this.hangupCause ?? 'SOCKET_CLOSED')
    this.state = 'ended'
    // A wire failure (timeout, protocol error) is reported as such, not as a normal hangup.
    this.failPending(wasUp ? error : undefined)
    this.emit('end', { reason })
  }
}

/** The event behind each ExecuteResult we made, for single-header reads without building `headers`. */
const resultEvents = new WeakMap<ExecuteResult, EslEvent>()

/** The completion as callers see it; all headers are built only if someone reads `headers`. */
function executeResult(e: EslEvent, application: string, applicationUuid: string, data: string, response: string): ExecuteResult {
  const r: ExecuteResult = {
    application,
    data,
    response,
    applicationUuid,
    get headers() {
      return e.headers
    },
  }
  resultEvents.set(r, e)
  return r
}

/** One header of a completion: from its event when we made it, else from `headers`. */
function headerOf(r: ExecuteResult, name: string): string | undefined {
  const e = resultEvents.get(r)
  return e ? e.header(name) : r.headers[name]
}

/**
 * billsec/duration read at once; `vars` (every variable_* header, ~150 on a real call)
 * built when first read — most calls end without anyone asking.
 */
function hangupCompleteInfo(e: EslEvent, cause: string): HangupCompleteInfo {
  let vars: Record<string, string> | undefined
  return {
    cause,
    billsec: Number(e.header('variable_billsec') ?? 0),
    duration: Number(e.header('variable_duration') ?? 0),
    get vars() {
      if (!vars) {
        const h = e.headers
        vars = {}
        for (const k in h) if (k.startsWith('variable_')) vars[k.slice(9)] = h[k]
      }
      return vars
    },
    variable: (name: string) => (vars ? vars[name] : e.header(`variable_${name}`)),
  }
}

/** api arguments are split on spaces by FreeSWITCH: a token must be one word. */
function checkToken(what: string, value: string): void {
  if (value === '' || /\s/.test(value)) throw new ValidationError(`${what} must be one word without spaces`, { value })
}

/** Values go into `key: value` header lines: a newline would inject headers. */
function checkWireValue(what: string, value: string): void {
  if (/[\r\n]/.test(value)) throw new ValidationError(`${what} must not contain line breaks`, { value })
}

function dialstatusToCause(dialstatus: string | undefined): string {
  switch (dialstatus) {
    case 'NOANSWER':
      return 'NO_ANSWER'
    case 'BUSY':
      return 'USER_BUSY'
    case 'CANCEL':
      return 'ORIGINATOR_CANCEL'
    case 'CHANUNAVAIL':
      return 'CHANNEL_UNAVAILABLE'
    default:
      return dialstatus ?? 'UNKNOWN'
  }
}
