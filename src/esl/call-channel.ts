import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { ValidationError } from '../errors.ts'
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
  /** Channel variables (without `variable_`) at the end: record_ms, record_file_size, ... */
  vars: Record<string, string>
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

  constructor(
    private readonly conn: EslConnection,
    readonly channelData: ChannelData,
    readonly log: Logger,
  ) {
    super()
    this.uuid = channelData.uuid
    if (channelData.headers['Answer-State'] === 'answered') this.state = 'answered'
    this.ended = new Promise((resolve) => {
      conn.once('close', ({ reason, error }) => {
        this.onClose(reason, error)
        resolve({ reason })
      })
    })
    conn.on('event', (e) => this.onEvent(e))
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
    const headers: Record<string, string> = { 'call-command': 'execute', 'execute-app-name': app }
    if (arg !== '') headers['execute-app-arg'] = arg
    headers['event-lock'] = 'true'
    headers['Event-UUID'] = eventUuid
    return new Promise<ExecuteResult>((resolve, reject) => {
      const p: PendingExec = { eventUuid, app, arg, resolve, reject }
      this.pending.push(p)
      this.conn.command('sendmsg', headers).then(
        (reply) => {
          if (!reply.ok) this.settle(p, new EslCommandError(`sendmsg ${app}`, reply.text))
        },
        (err: Error) => this.settle(p, err instanceof EslClosedError && !this.isUp ? new ChannelHungupError(this.uuid, app, this.hangupCause) : err),
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
    const disposition = r.headers['variable_originate_disposition']
    if (bridgedTo || disposition === 'SUCCESS') {
      const bLegUuid = bridgedTo ?? r.headers['Other-Leg-Unique-ID'] ?? r.headers['variable_bridge_uuid'] ?? ''
      return { answered: true, bLegUuid, hangupCause: r.headers['variable_bridge_hangup_cause'] }
    }
    return { answered: false, cause: disposition ?? dialstatusToCause(r.headers['variable_DIALSTATUS']) }
  }

  /** record_session into `path` (stereo: caller left, other party right); stops at hangup. */
  async startRecording(path: string, opts: { stereo?: boolean; vars?: Record<string, string> } = {}): Promise<void> {
    const vars: Record<string, string> = { RECORD_STEREO: String(opts.stereo ?? true), RECORD_MIN_SEC: '0', ...opts.vars }
    for (const [k, v] of Object.entries(vars)) {
      if (/\s/.test(k + v)) throw new ValidationError('recording variables must not contain spaces', { [k]: v })
    }
    await this.execute('multiset', Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' '))
    await this.execute('record_session', path)
  }

  async stopRecording(path: string): Promise<void> {
    await this.execute('stop_record_session', path)
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

  /** Close the socket (FreeSWITCH hangs up a call whose socket application goes away). */
  close(): void {
    this.conn.close('closed by application')
  }

  private onEvent(e: EslEvent): void {
    this.emit('event', e)
    const h = e.headers
    switch (e.name) {
      case 'CHANNEL_ANSWER':
        if (this.state === 'ringing') this.state = 'answered'
        this.emit('answer')
        break
      case 'DTMF':
        this.emit('dtmf', { digit: h['DTMF-Digit'] ?? '', duration: Number(h['DTMF-Duration'] ?? 0) })
        break
      case 'CHANNEL_BRIDGE':
        this.emit('bridge', { otherUuid: h['Other-Leg-Unique-ID'] ?? h['Bridge-B-Unique-ID'] ?? '' })
        break
      case 'CHANNEL_UNBRIDGE':
        this.emit('unbridge', { otherUuid: h['Other-Leg-Unique-ID'] ?? h['Bridge-B-Unique-ID'] ?? '' })
        break
      case 'CHANNEL_HANGUP':
        this.markHungUp(h['Hangup-Cause'] ?? h['variable_hangup_cause'] ?? 'UNKNOWN')
        break
      case 'CHANNEL_EXECUTE_COMPLETE':
        this.onExecuteComplete(h)
        break
      case 'CHANNEL_HANGUP_COMPLETE': {
        const cause = h['Hangup-Cause'] ?? h['variable_hangup_cause'] ?? 'UNKNOWN'
        this.markHungUp(cause)
        const vars: Record<string, string> = {}
        for (const [k, v] of Object.entries(h)) if (k.startsWith('variable_')) vars[k.slice(9)] = v
        this.hangupInfo = { cause, billsec: Number(vars.billsec ?? 0), duration: Number(vars.duration ?? 0), vars }
        this.emit('hangupComplete', this.hangupInfo)
        // Nothing queued will run any more: FreeSWITCH reports no completion for it.
        this.failPending()
        break
      }
    }
  }

  private onExecuteComplete(h: Record<string, string>): void {
    const appUuid = h['Application-UUID'] ?? ''
    const app = h['Application'] ?? ''
    // Ours by id; otherwise (a FreeSWITCH that ignored Event-UUID, or a replayed capture)
    // the oldest pending run of the same application — event-lock keeps them in order.
    let p = this.pending.find((x) => x.eventUuid === appUuid)
    p ??= this.pending.find((x) => x.app === app)
    const result: ExecuteResult = {
      application: app,
      data: h['Application-Data'] ?? '',
      response: h['Application-Response'] ?? '',
      applicationUuid: appUuid,
      headers: h,
    }
    this.emit('executeComplete', result)
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
    this.state = 'hungup'
    this.hangupCause = cause
    this.log.debug({ cause }, 'channel hung up')
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
