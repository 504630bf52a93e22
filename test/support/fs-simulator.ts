/**
 * FreeSWITCH outbound-socket simulator: a TCP *client* that connects to our outbound ESL
 * server the way FreeSWITCH's `socket` application does, and then behaves like the real
 * captures in /work/shared/esl-traces (framing, URL-encoded values, reply/event order,
 * linger and disconnect notices). Each call follows a script (caller, DID, DTMF, caller
 * hangup, bridge targets) in fast virtual time. A socket gets the events it subscribed to
 * by mod_event_socket's rules (esl-subscriptions.ts): `myevents` brings CHANNEL_* and DTMF
 * but not CHANNEL_HOLD/UNHOLD or CUSTOM; `event` adds, `nixevent` removes; commands may
 * arrive several in one packet (FreeSWITCH reads them byte by byte).
 *
 * Recordings: `record_session` and `api uuid_record <uuid> start|stop|mask|unmask <path>`
 * (answered at once, even during a bridge) write real WAVs (8 kHz s16le, stereo when
 * RECORD_STEREO=true: caller left, the other side right), growing while the call lasts,
 * header final only when closed (stop, limit, hangup), deleted under RECORD_MIN_SEC
 * (default 3 s); masked spans are digital silence. `api uuid_setvar|uuid_getvar|uuid_kill|
 * uuid_transfer` work on any live leg of the simulator, with FreeSWITCH's answers
 * (`+OK`, `-ERR No such channel!`, `-USAGE: …`). `call.recordings` lists the closed files
 * with their start/end, masked and bridged spans; `sim.apiLog` every api command.
 *
 * Attended transfer and conference: `bgapi` (BACKGROUND_JOB with Job-Owner-UUID, so a
 * myevents socket gets it), `originate {…}<endpoint> &park()|&conference(<room>)` timed by
 * the owner call's bridgeTargets, channels outside any socket (`sim.legs`: parked, bridged
 * by `uuid_bridge`, in a room, recorded with `uuid_record`; park_after_bridge honoured),
 * `uuid_transfer <B-leg> park|conference:<room> inline` (the B-leg lives on), `intercept`,
 * `uuid_hold [off]` (CHANNEL_HOLD/UNHOLD), `uuid_break`, `uuid_exists`, `hupall <cause>
 * <var> <value>`, `api_hangup_hook`, and mod_conference (`sim.conferences`: the
 * `conference` app with conference::maintenance add-member/del-member to the member's
 * socket, `conference <room> list|record|norecord|kick|hup`, one mono file per record).
 *
 *   const sim = new FsSimulator({ port })
 *   const call = sim.call({ destination: '7001', dtmf: [{ atMs: 50, digits: '2' }] })
 *   const result = await call.done   // commands received, events sent, recordings
 */
import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { EventSubscription } from './esl-subscriptions.ts'
import { performance } from 'node:perf_hooks'
import {
  CommandReader,
  commandReply,
  connectReply,
  disconnectNotice,
  event as encodeEvent,
  lingerNotice,
  apiResponse,
  type Headers,
  type ReceivedCommand,
} from './esl-wire.ts'
import { WavStreamWriter, type Span, type Voice } from './esl-wav.ts'

export type { ReceivedCommand } from './esl-wire.ts'

export interface BridgeTarget {
  /** Answer after this many ms of ringing (script time). */
  answerAfterMs?: number
  /** Once answered, the other party hangs up after this many ms; undefined = stays until A hangs up. */
  hangupAfterMs?: number
  /** Ring until the originate timeout (leg_timeout / originate_timeout / call_timeout, default 60 s). */
  noAnswer?: boolean
  /** Reject with USER_BUSY after `ringMs` (default 0). */
  busy?: boolean
  /** Fail with any other cause (e.g. CALL_REJECTED, UNALLOCATED_NUMBER) after `ringMs`. */
  failCause?: string
  ringMs?: number
}

export interface CallScript {
  uuid?: string
  callerIdNumber?: string
  callerIdName?: string
  /** Dialled number / DID (Caller-Destination-Number). */
  destination?: string
  /** `sofia` gives a SIP-like channel (sofia/external/...), `loopback` one like the traces. */
  source?: 'sofia' | 'loopback'
  context?: string
  /** Extra channel variables (without `variable_`). */
  vars?: Record<string, string>
  /** Custom SIP headers, sent as `variable_sip_h_<name>` (sofia calls). */
  sipHeaders?: Record<string, string>
  /** Digits the caller presses, at times since the socket connected. */
  dtmf?: Array<{ atMs: number; digits: string }>
  /** The caller hangs up at this time since connect (any app, playback and bridge included). */
  hangupAtMs?: number
  /** The caller is put on hold at `atMs` for `forMs` (CHANNEL_HOLD / CHANNEL_UNHOLD on this channel, as uuid_hold does; counted in hold_accum_*). */
  holds?: Array<{ atMs: number; forMs: number }>
  hangupCause?: string
  /** Bridge targets keyed by endpoint (`user/1001`, `sofia/gateway/trunk/7495...`). */
  bridgeTargets?: Record<string, BridgeTarget>
  /** Playback duration for files of unknown length, [min, max] ms (default from the simulator). */
  playbackMs?: [number, number]
  /** When the caller talks (recorded on the left channel); default: the whole call. */
  callerTalks?: Span[]
  /**
   * A leg FreeSWITCH created itself (`originate … &socket(host:port async full)`): direction
   * outbound, already answered when it reaches the socket, dialling the address in the
   * socket app instead of the simulator's port. Set by the inbound simulator's originate.
   */
  direction?: 'inbound' | 'outbound'
  answered?: boolean
  connectTo?: { host: string; port: number }
  channelName?: string
}

export interface SimulatorOptions {
  port: number
  host?: string
  /** Multiplies every script time (0.1 = ten times faster). Default 1. */
  timeScale?: number
  /** Split every write into random chunks of this size range, to exercise reassembly. */
  chunk?: { min: number; max: number }
  /** Default playback duration range (script ms). Default [10, 50]. */
  playbackMs?: [number, number]
  /** Delay between the linger and the disconnect notice (script ms). Default 5. */
  lingerMs?: number
  /** Target for endpoints a script does not list. Default: answers after 10 ms, hangs up after 200 ms. */
  defaultTarget?: BridgeTarget
  /** Commands (first word) the simulator swallows without ever answering: a hung FreeSWITCH. */
  neverAnswer?: string[]
}

export interface RecordingResult {
  path: string
  stereo: boolean
  ms: number
  samples: number
  fileSize: number
  /** false: shorter than RECORD_MIN_SEC, FreeSWITCH deleted the file. */
  written: boolean
  /** How it was started: the record_session app, or `api uuid_record … start`. */
  via: 'record_session' | 'uuid_record'
  /** Whose channel the media bug sat on: `a` = the call (caller left), `b` = the bridged leg (agent left). */
  leg: 'a' | 'b'
  uuid: string
  /** Script ms since the socket connected. */
  startMs: number
  endMs: number
  /** Spans (ms since the recording's start) written as digital silence (uuid_record mask / record_session_mask). */
  masked: Span[]
  /** Spans (ms since the recording's start) while the call was bridged. */
  bridged: Span[]
  stoppedBy: 'stop' | 'hangup' | 'limit' | 'unbridge' | 'transfer'
}

/** What `api` did: `+OK …`, `-ERR …` or `-USAGE: …` as FreeSWITCH words it, and the command. */
export interface ApiLogEntry {
  command: string
  response: string
}

export interface SimCallResult {
  uuid: string
  commands: ReceivedCommand[]
  /** Names of the events sent (plus `reply:<text>`/`notice:<disposition>`), in order. */
  sent: string[]
  hangupCause: string | undefined
  recordings: RecordingResult[]
  /** `fs`: the simulator closed after the notices; `app`: the application closed first. */
  closedBy: 'fs' | 'app'
}

const INTERRUPTED = Symbol('interrupted')
const Q850: Record<string, number> = {
  NORMAL_CLEARING: 16,
  USER_BUSY: 17,
  NO_ANSWER: 19,
  NO_USER_RESPONSE: 18,
  CALL_REJECTED: 21,
  UNALLOCATED_NUMBER: 1,
  ORIGINATOR_CANCEL: 487,
  NORMAL_TEMPORARY_FAILURE: 41,
}
const DIALSTATUS: Record<string, string> = {
  SUCCESS: 'SUCCESS',
  NO_ANSWER: 'NOANSWER',
  USER_BUSY: 'BUSY',
  ORIGINATOR_CANCEL: 'CANCEL',
  CALL_REJECTED: 'CONGESTION',
}
const CORE_UUID = randomUUID()
let sequence = 1000

export class FsSimulator {
  readonly opts: Required<Omit<SimulatorOptions, 'chunk' | 'neverAnswer'>> & Pick<SimulatorOptions, 'chunk'> & { neverAnswer: string[] }
  readonly calls = new Set<SimCall>()
  /** Every api command run (through any call's socket, or api() directly), in order. */
  readonly apiLog: ApiLogEntry[] = []
  /** Channels outside any socket: originated legs (`bgapi originate … &park()`), B-legs moved out of their bridge (uuid_transfer, uuid_bridge). */
  readonly legs = new Map<string, SimLeg>()
  /** mod_conference rooms by name. */
  readonly conferences = new Map<string, SimConference>()
  /** Files closed by `conference <name> record|norecord` or the end of the room, in order (mono mix). */
  readonly conferenceRecordings: RecordingResult[] = []

  constructor(options: SimulatorOptions) {
    this.opts = {
      host: '127.0.0.1',
      timeScale: 1,
      playbackMs: [10, 50],
      lingerMs: 5,
      defaultTarget: { answerAfterMs: 10, hangupAfterMs: 200 },
      ...options,
      neverAnswer: options.neverAnswer ?? [],
    }
  }

  /** Connect one call to the server; `call.done` settles when the socket is closed. */
  call(script: CallScript = {}): SimCall {
    const c = new SimCall(this, script)
    this.calls.add(c)
    c.done.finally(() => this.calls.delete(c)).catch(() => {})
    return c
  }

  /** Destroy every open call socket (and forget the channels and rooms outside them). */
  closeAll(): void {
    for (const c of this.calls) c.destroy()
    for (const l of [...this.legs.values()]) l.dispose()
    for (const c of [...this.conferences.values()]) c.destroy()
  }

  /** A live channel outside any socket (parked, bridged by uuid_bridge, in a conference, ringing). */
  liveLeg(uuid: string): SimLeg | undefined {
    const l = this.legs.get(uuid)
    return l?.alive ? l : undefined
  }

  conferenceNamed(name: string, profile = 'default'): SimConference {
    let c = this.conferences.get(name)
    if (!c) this.conferences.set(name, (c = new SimConference(this, name, profile)))
    return c
  }

  /**
   * What `bgapi <line>` runs: `originate <url> &park()|&conference(<room>)` rings the
   * endpoint the way the owner call's script says (bridgeTargets, originate_timeout) and
   * reports `+OK <uuid>` or `-ERR <cause>`; anything else is run as an api command.
   */
  background(line: string, owner: SimCall, done: (body: string) => void): void {
    const sp = line.indexOf(' ')
    const cmd = sp < 0 ? line : line.slice(0, sp)
    if (cmd !== 'originate') {
      const r = this.runApi(line)
      done(r.body)
      r.after?.()
      return
    }
    this.apiLog.push({ command: line.trim(), response: '(background)' })
    this.originate(sp < 0 ? '' : line.slice(sp + 1), owner, done)
  }

  private originate(args: string, owner: SimCall, done: (body: string) => void): void {
    const a = separate(args, 3)
    if (a.length < 2) return done('-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n')
    let url = a[0]
    const vars: Record<string, string> = {}
    const g = /^\{([^}]*)\}/.exec(url)
    if (g) {
      for (const kv of g[1].split(/(?<!\\),/)) {
        const i = kv.indexOf('=')
        if (i > 0) vars[kv.slice(0, i)] = kv.slice(i + 1).replace(/\\,/g, ',')
      }
      url = url.slice(g[0].length)
    }
    const app = /^&([a-z_]+)\((.*)\)$/.exec(a[1])
    const target = owner.script.bridgeTargets?.[url] ?? this.opts.defaultTarget
    const timeoutMs = Number(vars.originate_timeout ?? 60) * 1000
    const uuid = vars.origination_uuid ?? randomUUID()
    if (this.legs.has(uuid) || this.locate(uuid)) return done('-ERR DESTINATION_OUT_OF_ORDER\n')
    const leg = new SimLeg(this, owner, uuid, url, new Map(Object.entries(vars)))
    this.legs.set(uuid, leg)
    let cause = 'NO_ANSWER'
    let delay = timeoutMs
    let answers = false
    if (target.busy || target.failCause) {
      cause = target.busy ? 'USER_BUSY' : target.failCause!
      delay = target.ringMs ?? 0
    } else if (!target.noAnswer && (target.answerAfterMs ?? 0) < timeoutMs) {
      answers = true
      delay = target.answerAfterMs ?? 0
    }
    leg.ring(delay, (killedBy) => {
      if (killedBy || !answers) {
        leg.gone(killedBy ?? cause)
        return done(`-ERR ${killedBy ? 'ORIGINATOR_CANCEL' : cause}\n`)
      }
      leg.answer()
      if (app?.[1] === 'conference') leg.joinConference(app[2])
      else leg.park()
      done(`+OK ${uuid}\n`)
      if (target.hangupAfterMs !== undefined) leg.after(target.hangupAfterMs, () => leg.hangup('NORMAL_CLEARING'))
    })
  }

  /** The api commands of attended transfer and conference, and uuid_* commands naming a channel outside any socket. */
  private dispatchLegApi(cmd: string, args: string): { body: string; after?: () => void } | undefined {
    const noChannel = { body: '-ERR No such channel!\n' }
    switch (cmd) {
      case 'uuid_exists': {
        const uuid = args.trim()
        return { body: this.locate(uuid) || this.liveLeg(uuid) ? 'true' : 'false' }
      }
      case 'uuid_bridge': {
        // Both channels leave whatever they do (a B-leg leaves its bridge, its A-leg goes on) and are bridged together.
        const a = separate(args, 3)
        if (a.length < 2) return { body: '-USAGE: <uuid> <other_uuid>\n' }
        const movable = (u: string) => (this.locate(u)?.leg === 'b' ? true : !!this.liveLeg(u) && this.liveLeg(u)!.state !== 'ringing')
        if (a[0] === a[1] || !movable(a[0]) || !movable(a[1])) return { body: '-ERR Invalid uuid\n' }
        const take = (u: string): SimLeg => {
          const found = this.locate(u)
          if (found?.leg === 'b') found.call.transferLeg('b', 'park')
          return this.legs.get(u)!
        }
        return { body: `+OK ${a[1]}\n`, after: () => take(a[0]).bridgeWith(take(a[1])) }
      }
      case 'uuid_hold': {
        // uuid_hold [off|toggle] <uuid> [<display>]: marks the channel held (CHANNEL_HOLD / CHANNEL_UNHOLD on it).
        const a = separate(args, 3)
        const mode = a[0] === 'off' || a[0] === 'toggle' ? a[0] : 'on'
        const uuid = mode === 'on' ? a[0] : a[1]
        if (!uuid) return { body: '-USAGE: [off|toggle] <uuid> [<display>]\n' }
        const found = this.locate(uuid)
        if (found?.leg === 'a') return { body: '+OK Success\n', after: () => found.call.hold(mode) }
        const leg = this.liveLeg(uuid)
        if (leg) {
          leg.held = mode === 'toggle' ? !leg.held : mode === 'on'
          return { body: '+OK Success\n' }
        }
        return { body: '-ERR Operation failed\n' }
      }
      case 'uuid_break': {
        const uuid = separate(args, 2)[0]
        if (!uuid) return { body: '-USAGE: <uuid> [all]\n' }
        const found = this.locate(uuid)
        if (found?.leg === 'a') return { body: '+OK\n', after: () => found.call.breakMedia() }
        return found || this.liveLeg(uuid) ? { body: '+OK\n' } : noChannel
      }
      case 'conference':
        return this.conferenceApi(args)
      case 'hupall': {
        // hupall [<cause>] [<var> <value>]: every channel (A-legs, B-legs, legs outside sockets) whose variable matches.
        const [cause = 'NORMAL_CLEARING', name, value] = separate(args, 3)
        const match = (get: (k: string) => string | undefined) => !name || get(name) === value
        return {
          body: `+OK hangup all channels with cause ${cause}\n`,
          after: () => {
            for (const l of [...this.legs.values()]) if (l.alive && match((k) => l.vars.get(k))) l.hangup(cause)
            for (const c of [...this.calls]) {
              if (c.bLegUuid && match((k) => c.getVar('b', k))) c.kill('b', cause)
              if (c.legOf(c.uuid) && match((k) => c.getVar('a', k))) c.kill('a', cause)
            }
          },
        }
      }
      case 'uuid_record':
      case 'uuid_setvar':
      case 'uuid_getvar':
      case 'uuid_kill':
      case 'uuid_transfer': {
        const uuid = separate(args, 2)[0]
        const leg = uuid && !this.locate(uuid) ? this.liveLeg(uuid) : undefined
        return leg?.api(cmd, args)
      }
      default:
        return undefined
    }
  }

  /** mod_conference's api: `conference <name> list|record <path>|norecord <path|all>|kick <id|all>|hup <id|all>`. */
  private conferenceApi(args: string): { body: string; after?: () => void } {
    const a = separate(args, 3)
    if (a.length < 2) return { body: '-USAGE: conference <confname> <command> [<args>]\n' }
    const [name, command, rest = ''] = a
    const conf = this.conferences.get(name)
    if (!conf) return { body: `-ERR Conference ${name} not found\n` }
    switch (command) {
      case 'list':
        return { body: conf.list() }
      case 'record':
        if (!rest) return { body: '-USAGE: conference <confname> record <filename>\n' }
        return conf.record(rest) ? { body: `+OK Record file ${rest}\n` } : { body: `-ERR Cannot record ${rest}\n` }
      case 'norecord':
        return { body: `+OK Stopped recording ${conf.norecord(rest || 'all')} file(s)\n` }
      case 'kick':
      case 'hup': {
        const ids = conf.memberIds(rest || 'all')
        if (ids.length === 0) return { body: `-ERR Non-Existant ID ${rest}\n` }
        return { body: ids.map((id) => `+OK ${command === 'kick' ? 'kicked' : 'hup'} ${id}\n`).join(''), after: () => { for (const id of ids) conf.end(id, command) } }
      }
      default:
        return { body: `-ERR Unknown conference command ${command}\n` }
    }
  }

  /** The live channel with this uuid: a call's own (A) leg, or the leg it is bridged to (B). */
  locate(uuid: string): { call: SimCall; leg: 'a' | 'b' } | undefined {
    for (const call of this.calls) {
      const leg = call.legOf(uuid)
      if (leg) return { call, leg }
    }
    return undefined
  }

  /**
   * Run an api command as FreeSWITCH's mod_commands would (one switch for all calls): the
   * response body, and an action to run after the response is written (a kill's hangup
   * events come after the `+OK`). Supported: uuid_record, uuid_setvar, uuid_getvar,
   * uuid_kill, uuid_transfer; other uuid_* commands answer +OK for a live uuid.
   */
  runApi(line: string): { body: string; after?: () => void } {
    const r = this.dispatchApi(line.trim())
    this.apiLog.push({ command: line.trim(), response: r.body })
    return r
  }

  /** Like `fs_cli -x`: the response body, effects applied. */
  api(line: string): string {
    const r = this.runApi(line)
    r.after?.()
    return r.body
  }

  private dispatchApi(line: string): { body: string; after?: () => void } {
    const sp = line.indexOf(' ')
    const cmd = sp < 0 ? line : line.slice(0, sp)
    const args = sp < 0 ? '' : line.slice(sp + 1)
    const usage = (syntax: string) => ({ body: `-USAGE: ${syntax}\n` })
    const noChannel = { body: '-ERR No such channel!\n' }
    const handled = this.dispatchLegApi(cmd, args)
    if (handled) return handled
    switch (cmd) {
      case 'uuid_record': {
        const SYNTAX = '<uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]'
        const a = separate(args, 5)
        if (a.length < 3) return usage(SYNTAX)
        const [uuid, action, path, limit, vars] = a
        const found = this.locate(uuid)
        if (!found) return { body: '-ERR Cannot locate session!\n' }
        const { call, leg } = found
        switch (action.toLowerCase()) {
          case 'start':
            return { body: call.startRecording(leg, 'uuid_record', path, { limitSec: Number(limit) || 0, vars: parseVarBlock(vars) }) ? '+OK Success\n' : '-ERR Cannot record session!\n' }
          case 'stop':
            return { body: call.stopRecordingPath(leg, path) ? '+OK Success\n' : '-ERR Cannot stop record session!\n' }
          case 'mask':
          case 'unmask': {
            const on = action.toLowerCase() === 'mask'
            return { body: call.maskRecording(leg, path, on) ? '+OK Success\n' : `-ERR Cannot ${on ? 'mask' : 'unmask'} recording session!\n` }
          }
          default:
            return usage(SYNTAX)
        }
      }
      case 'uuid_setvar': {
        const a = separate(args, 3)
        if (a.length < 2) return usage('<uuid> <var> [value]')
        const found = this.locate(a[0])
        if (!found) return noChannel
        found.call.setVar(found.leg, a[1], a[2])
        return { body: '+OK\n' }
      }
      case 'uuid_getvar': {
        const a = separate(args, 2)
        if (a.length < 2) return usage('<uuid> <var>')
        const found = this.locate(a[0])
        if (!found) return noChannel
        return { body: found.call.getVar(found.leg, a[1]) ?? '_undef_' }
      }
      case 'uuid_kill': {
        const a = separate(args, 2)
        if (a.length < 1) return usage('<uuid> [cause]')
        const found = this.locate(a[0])
        if (!found) return noChannel
        return { body: '+OK\n', after: () => found.call.kill(found.leg, a[1] ?? 'NORMAL_CLEARING') }
      }
      case 'uuid_transfer': {
        const SYNTAX = '<uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]'
        const a = separate(args, 5)
        if (a.length < 2) return usage(SYNTAX)
        const found = this.locate(a[0])
        if (!found) return noChannel
        const flag = a[1] === '-bleg' || a[1] === '-both' ? a[1] : undefined
        const dest = flag ? a[2] : a[1]
        if (!dest) return usage(SYNTAX)
        let leg = found.leg
        if (flag === '-bleg') {
          if (!found.call.bLegUuid) return { body: '-ERR No B-leg to transfer\n' }
          leg = leg === 'a' ? 'b' : 'a'
        }
        return { body: '+OK\n', after: () => found.call.transferLeg(flag === '-both' ? 'both' : leg, dest) }
      }
      default:
        if (cmd.startsWith('uuid_')) {
          const uuid = separate(args, 2)[0]
          return uuid && this.locate(uuid) ? { body: '+OK\n' } : noChannel
        }
        return { body: `-ERR ${cmd} Command not found!\n` }
    }
  }
}

/** switch_separate_string on spaces with at most `max` parts: the last part keeps the rest. */
function separate(s: string, max: number): string[] {
  const out: string[] = []
  let rest = s.trim()
  while (rest && out.length < max - 1) {
    const i = rest.indexOf(' ')
    if (i < 0) break
    out.push(rest.slice(0, i))
    rest = rest.slice(i + 1).trimStart()
  }
  if (rest) out.push(rest)
  return out
}

/** `{RECORD_STEREO=true,RECORD_MIN_SEC=0}` (uuid_record's <recording_vars>). */
function parseVarBlock(block: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  const m = /^\{(.*)\}$/.exec(block ?? '')
  if (!m) return out
  for (const kv of m[1].split(',')) {
    const i = kv.indexOf('=')
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

interface RunningApp {
  name: string
  arg: string
  appUuid: string
}

interface Recording {
  path: string
  stereo: boolean
  minSec: number
  startMs: number
  via: 'record_session' | 'uuid_record'
  leg: 'a' | 'b'
  uuid: string
  writer: WavStreamWriter
  masked: boolean
  maskedSpans: Span[]
  maskFrom?: number
  limitTimer?: NodeJS.Timeout
}

/** How often (real ms) open recordings are flushed to disk, so files grow during the call. */
const FLUSH_EVERY_MS = 100

export class SimCall {
  readonly uuid: string
  readonly commands: ReceivedCommand[] = []
  readonly sent: string[] = []
  readonly recordings: RecordingResult[] = []
  readonly done: Promise<SimCallResult>
  readonly socket: Socket
  readonly vars = new Map<string, string>()

  private readonly reader = new CommandReader()
  private readonly t0 = performance.now()
  private readonly startEpochMs = Date.now()
  private answeredAtMs: number | undefined
  private bridgedTo: { uuid: string; dest: string } | undefined
  private format: 'plain' | 'json' = 'plain'
  /** What this socket asked to receive (myevents / event / nixevent), as mod_event_socket keeps it. */
  private readonly subscription = new EventSubscription()
  private linger = false
  private hungUp = false
  private hangupCause: string | undefined
  private tornDown = false
  private closedBy: 'fs' | 'app' = 'app'
  private channelState = 'CS_EXECUTE'
  private queue: Array<RunningApp & { eventLock: boolean }> = []
  private current: RunningApp | undefined
  private readonly waiters = new Set<{ reject: (e: unknown) => void; timer: NodeJS.Timeout }>()
  private readonly digitBuffer: string[] = []
  private digitListener: (() => void) | undefined
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly active: Recording[] = []
  private readonly bridgedSpans: Span[] = []
  private bridgeStartMs: number | undefined
  /** Prompts playing now (playback, say, the prompt of play_and_get_digits). */
  private prompting = 0
  private flushTimer: NodeJS.Timeout | undefined
  /** The bridged (B) leg's variables, and how to end it early (uuid_kill/uuid_transfer of the B-leg). */
  private bLegVars = new Map<string, string>()
  private endBLeg: ((cause: string) => void) | undefined
  /** uuid_transfer of this leg: the running app is interrupted, then the channel leaves the socket. */
  private leaving = false
  /** What happens to the B-leg when its bridge ends: it hangs up, or it lives on elsewhere (uuid_transfer, uuid_bridge). */
  private bLegFate: 'hangup' | 'detached' = 'hangup'
  /** The channel this call picked up with `intercept` (a parked leg), while bridged to it. */
  private interceptedLeg: SimLeg | undefined
  /** The conference this channel is in (the `conference` app), and how to take it out (kick/hup). */
  private inConference: SimConference | undefined
  private leaveConferenceNow: (() => void) | undefined
  /** uuid_break: ends a running endless_playback / park. */
  private breakCurrent: (() => void) | undefined
  /** uuid_hold spans of this channel (script ms since connect); the last may still be open. */
  readonly holds: Array<{ startMs: number; endMs: number | null }> = []
  private readonly writeQueue: Buffer[] = []
  private writing = false
  private readonly channelName: string
  private readonly direction: 'inbound' | 'outbound'
  /** `host:port async full` of the socket app this channel runs. */
  private readonly socketAppData: string
  private readonly profile: Headers

  constructor(
    private readonly sim: FsSimulator,
    readonly script: CallScript,
  ) {
    this.uuid = script.uuid ?? randomUUID()
    const dest = script.destination ?? '7001'
    const sofia = script.source === 'sofia'
    const caller = script.callerIdNumber ?? '74951234567'
    this.channelName = script.channelName ?? (sofia ? `sofia/external/${caller}@127.0.0.1:5060` : `loopback/${dest}-b`)
    this.direction = script.direction ?? 'inbound'
    this.profile = [
      ['Caller-Direction', this.direction],
      ['Caller-Logical-Direction', this.direction],
      ['Caller-Dialplan', 'XML'],
      ['Caller-Caller-ID-Name', script.callerIdName ?? 'Client'],
      ['Caller-Caller-ID-Number', caller],
      ['Caller-Orig-Caller-ID-Name', script.callerIdName ?? 'Client'],
      ['Caller-Orig-Caller-ID-Number', caller],
      ['Caller-Network-Addr', '127.0.0.1'],
      ['Caller-ANI', caller],
      ['Caller-Destination-Number', dest],
      ['Caller-Unique-ID', this.uuid],
      ['Caller-Source', sofia ? 'mod_sofia' : 'mod_loopback'],
      ['Caller-Context', script.context ?? (sofia ? 'public' : 'default')],
      ['Caller-Channel-Name', this.channelName],
      ['Caller-Profile-Index', '1'],
      ['Caller-Screen-Bit', 'true'],
      ['Caller-Privacy-Hide-Name', 'false'],
      ['Caller-Privacy-Hide-Number', 'false'],
    ]
    const v = this.vars
    v.set('direction', this.direction)
    v.set('uuid', this.uuid)
    v.set('session_id', String(sequence % 1000))
    v.set('channel_name', this.channelName)
    if (sofia) {
      v.set('sip_from_user', caller)
      v.set('sip_from_uri', `${caller}@127.0.0.1:5060`)
      v.set('sip_from_host', '127.0.0.1')
      v.set('sip_call_id', `${randomUUID()}@127.0.0.1`)
      v.set('sip_network_ip', '127.0.0.1')
      v.set('sip_req_user', dest)
      v.set('sip_req_uri', `${dest}@127.0.0.1:5080`)
      v.set('sip_to_user', dest)
      v.set('sip_to_uri', `${dest}@127.0.0.1:5080`)
      v.set('sofia_profile_name', 'external')
    }
    for (const [name, value] of Object.entries(script.sipHeaders ?? {})) v.set(`sip_h_${name}`, value)
    for (const [name, value] of Object.entries(script.vars ?? {})) v.set(name, value)
    v.set('call_uuid', this.uuid)
    const target = script.connectTo ?? { host: sim.opts.host, port: sim.opts.port }
    this.socketAppData = `${target.host}:${target.port} async full`
    v.set('current_application_data', this.socketAppData)
    v.set('current_application', 'socket')
    v.set('socket_host', target.host)
    if (script.answered) {
      this.answeredAtMs = 0
      v.set('endpoint_disposition', 'ANSWER')
    }

    this.socket = connect(target.port, target.host)
    this.socket.setNoDelay(true)
    this.done = new Promise((resolve, reject) => {
      this.socket.on('error', (err) => {
        if (this.tornDown || (err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE') return
        reject(err)
      })
      this.socket.on('close', () => {
        this.clearTimers()
        // The socket vanished under a live channel (closeAll/destroy): close its files anyway.
        this.stopAllRecordings('hangup')
        resolve({
          uuid: this.uuid,
          commands: this.commands,
          sent: this.sent,
          hangupCause: this.hangupCause,
          recordings: this.recordings,
          closedBy: this.closedBy,
        })
      })
    })
    this.socket.on('data', (chunk: Buffer) => {
      for (const cmd of this.reader.push(chunk)) this.onCommand(cmd)
    })
    // The application went away: FreeSWITCH hangs the channel up (no one to hear events).
    this.socket.on('end', () => {
      if (!this.hungUp) this.hangupNow('NORMAL_CLEARING', false)
    })
    for (const d of script.dtmf ?? []) this.after(d.atMs, () => this.press(d.digits))
    if (script.hangupAtMs !== undefined) this.after(script.hangupAtMs, () => this.hangupNow(script.hangupCause ?? 'NORMAL_CLEARING'))
    for (const h of script.holds ?? []) {
      this.after(h.atMs, () => this.hold('on'))
      this.after(h.atMs + h.forMs, () => this.hold('off'))
    }
  }

  /** The caller presses digits now. */
  press(digits: string): void {
    for (const d of digits) {
      if (this.hungUp) return
      this.emitEvent('DTMF', [
        ['DTMF-Digit', d],
        ['DTMF-Duration', '2000'],
        ['DTMF-Source', 'RTP'],
      ], { minimal: true })
      this.digitBuffer.push(d)
    }
    this.digitListener?.()
  }

  /** The caller (or the network) hangs up now. */
  hangup(cause = 'NORMAL_CLEARING'): void {
    this.hangupNow(cause)
  }

  destroy(): void {
    this.clearTimers()
    this.socket.destroy()
  }

  // ---- time -------------------------------------------------------------------------

  /** Script time since connect. */
  now(): number {
    return (performance.now() - this.t0) / this.sim.opts.timeScale
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn()
    }, ms * this.sim.opts.timeScale)
    this.timers.add(t)
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const w of this.waiters) clearTimeout(w.timer)
    if (this.flushTimer) clearInterval(this.flushTimer)
    this.flushTimer = undefined
    for (const r of this.active) clearTimeout(r.limitTimer)
  }

  /**
   * Wait script time; rejects with INTERRUPTED when the channel hangs up (or is
   * transferred away). `ctl.finish` (filled in) ends the wait early, normally.
   */
  private wait(ms: number, until?: () => boolean, ctl?: { finish?: () => void }): Promise<void> {
    if (this.hungUp || this.leaving) return Promise.reject(INTERRUPTED)
    return new Promise((resolve, reject) => {
      const w = {
        reject: (e: unknown) => {
          clearTimeout(w.timer)
          this.waiters.delete(w)
          reject(e)
        },
        timer: setTimeout(() => {
          this.waiters.delete(w)
          if (until) this.digitListener = undefined
          resolve()
        }, Math.max(0, ms * this.sim.opts.timeScale)),
      }
      this.waiters.add(w)
      if (ctl)
        ctl.finish = () => {
          clearTimeout(w.timer)
          this.waiters.delete(w)
          resolve()
        }
      if (until) {
        this.digitListener = () => {
          if (!until()) return
          clearTimeout(w.timer)
          this.waiters.delete(w)
          this.digitListener = undefined
          resolve()
        }
        this.digitListener()
      }
    })
  }

  // ---- wire -------------------------------------------------------------------------

  private write(data: string): void {
    if (this.socket.destroyed || !this.socket.writable) return
    const buf = Buffer.from(data, 'utf8')
    const chunk = this.sim.opts.chunk
    if (!chunk) {
      this.socket.write(buf)
      return
    }
    for (let off = 0; off < buf.length; ) {
      const n = chunk.min + Math.floor(Math.random() * (chunk.max - chunk.min + 1))
      this.writeQueue.push(buf.subarray(off, off + n))
      off += n
    }
    this.pump()
  }

  /** Chunked mode: one piece per macrotask so the reader really sees split frames. */
  private pump(): void {
    if (this.writing) return
    const next = this.writeQueue.shift()
    if (!next) return
    this.writing = true
    this.socket.write(next, () => {
      this.writing = false
      setImmediate(() => this.pump())
    })
  }

  private end(): void {
    this.closedBy = 'fs'
    if (this.writeQueue.length || this.writing) {
      const check = () => (this.writeQueue.length || this.writing ? setTimeout(check, 1) : this.socket.end())
      check()
    } else this.socket.end()
  }

  private reply(text: string): void {
    this.sent.push(`reply:${text}`)
    this.write(commandReply(text))
  }

  private onCommand(cmd: ReceivedCommand): void {
    this.commands.push(cmd)
    const word = cmd.line.split(' ')[0].toLowerCase()
    if (this.sim.opts.neverAnswer.includes(word) || this.sim.opts.neverAnswer.includes('*')) return
    const rest = cmd.line.slice(word.length).trim()
    switch (word) {
      case 'connect':
        this.sent.push('reply:connect')
        this.write(connectReply(this.channelData()))
        return
      case 'myevents': {
        const r = this.subscription.enableMyEvents()
        if (!r.ok) return this.reply(r.error)
        // FreeSWITCH looks for the word anywhere in the line (strstr).
        if (/json/i.test(rest)) this.format = 'json'
        return this.reply('+OK Events Enabled')
      }
      case 'event': {
        const r = this.subscription.subscribe(rest.split(/\s+/).filter(Boolean))
        if (!r.ok) return this.reply(r.error)
        if (r.format) this.format = r.format === 'json' ? 'json' : 'plain'
        return this.reply(`+OK event listener enabled ${this.format}`)
      }
      case 'nixevent': {
        const r = this.subscription.unsubscribe(rest.split(/\s+/).filter(Boolean))
        return this.reply(r.ok ? '+OK events nixed' : r.error)
      }
      case 'noevents': {
        const r = this.subscription.clear()
        return this.reply(r.ok ? '+OK no longer listening for events' : r.error)
      }
      case 'linger':
        this.linger = true
        return this.reply('+OK will linger')
      case 'nolinger':
        this.linger = false
        return this.reply('+OK will nolinger')
      case 'sendmsg':
        return this.onSendmsg(cmd)
      case 'api': {
        // Run at once, even while an application holds the event-lock queue (a bridge).
        this.sent.push('api')
        const r = this.sim.runApi(rest)
        this.write(apiResponse(r.body))
        if (r.after) setImmediate(r.after)
        return
      }
      case 'bgapi': {
        // The reply carries the job id at once; the result comes as BACKGROUND_JOB with Job-Owner-UUID = this
        // channel, which `myevents` lets through (mod_event_socket).
        const job = cmd.headers['job-uuid'] ?? randomUUID()
        this.sent.push(`reply:+OK Job-UUID: ${job}`)
        this.write(`Content-Type: command/reply\nReply-Text: +OK Job-UUID: ${job}\nJob-UUID: ${job}\n\n`)
        this.sim.background(rest, this, (body) => this.backgroundJob(job, rest, body))
        return
      }
      case 'exit':
        this.reply('+OK bye')
        this.write(disconnectNotice(this.uuid))
        this.end()
        return
      default:
        return this.reply('-ERR command not found')
    }
  }

  private onSendmsg(cmd: ReceivedCommand): void {
    const h = cmd.headers
    const command = (h['call-command'] ?? '').toLowerCase()
    if (command === 'hangup') {
      this.reply('+OK')
      this.hangupNow(h['hangup-cause'] ?? 'NORMAL_CLEARING')
      return
    }
    if (command !== 'execute') return this.reply(`-ERR invalid call-command ${command}`)
    if (!h['execute-app-name']) return this.reply('-ERR no execute-app-name')
    this.reply('+OK')
    // Queued after hangup: FreeSWITCH accepts it but the session never runs it.
    if (this.hungUp) return
    this.queue.push({
      name: h['execute-app-name'],
      arg: h['execute-app-arg'] ?? cmd.body,
      appUuid: h['event-uuid'] ?? randomUUID(),
      eventLock: (h['event-lock'] ?? '') === 'true',
    })
    if (!this.current) this.after(1, () => this.runNext())
  }

  // ---- events -----------------------------------------------------------------------

  private channelData(): Headers {
    return [
      ['Event-Name', 'CHANNEL_DATA'],
      ...this.commonHeaders('mod_event_socket.c', 'parse_command'),
      ['Channel-Direction', this.direction],
      ['Channel-Caller-ID-Name', this.script.callerIdName ?? 'Client'],
      ['Channel-Caller-ID-Number', this.script.callerIdNumber ?? '74951234567'],
      ['Channel-Destination-Number', this.script.destination ?? '7001'],
      ['Channel-Unique-ID', this.uuid],
      ...this.channelHeaders(),
      ...this.profile,
      ...this.varHeaders(),
    ]
  }

  private commonHeaders(file: string, fn: string): Headers {
    const nowUs = (this.startEpochMs + this.now()) * 1000
    const d = new Date(nowUs / 1000)
    return [
      ['Core-UUID', CORE_UUID],
      ['FreeSWITCH-Hostname', 'fs-simulator'],
      ['FreeSWITCH-Switchname', 'fs-simulator'],
      ['FreeSWITCH-IPv4', '127.0.0.1'],
      ['FreeSWITCH-IPv6', '::1'],
      ['Event-Date-Local', d.toISOString().replace('T', ' ').slice(0, 19)],
      ['Event-Date-GMT', d.toUTCString()],
      ['Event-Date-Timestamp', String(Math.round(nowUs))],
      ['Event-Calling-File', file],
      ['Event-Calling-Function', fn],
      ['Event-Calling-Line-Number', '1'],
      ['Event-Sequence', String(sequence++)],
    ]
  }

  private channelHeaders(): Headers {
    const answered = this.answeredAtMs !== undefined
    return [
      ['Channel-State', this.channelState],
      ['Channel-Call-State', this.hungUp ? 'HANGUP' : answered ? 'ACTIVE' : 'RINGING'],
      ['Channel-State-Number', this.channelState === 'CS_EXECUTE' ? '4' : this.channelState === 'CS_HANGUP' ? '10' : '11'],
      ['Channel-Name', this.channelName],
      ['Unique-ID', this.uuid],
      ['Call-Direction', this.direction],
      ['Presence-Call-Direction', this.direction],
      ['Channel-HIT-Dialplan', 'true'],
      ['Channel-Call-UUID', this.uuid],
      ['Answer-State', this.hungUp ? 'hangup' : answered ? 'answered' : 'ringing'],
      ['Channel-Read-Codec-Name', 'PCMU'],
      ['Channel-Read-Codec-Rate', '8000'],
      ['Channel-Write-Codec-Name', 'PCMU'],
      ['Channel-Write-Codec-Rate', '8000'],
    ]
  }

  private varHeaders(): Headers {
    return [...this.vars].map(([k, v]) => [`variable_${k}`, v])
  }

  private emitEvent(name: string, extra: Headers = [], o: { minimal?: boolean; body?: string } = {}): void {
    const subclass = name === 'CUSTOM' ? extra.find(([k]) => k === 'Event-Subclass')?.[1] : undefined
    if (!this.subscription.wants(name, subclass)) return
    let headers: Headers
    if (o.minimal) {
      headers = [
        ['Event-Name', name],
        ...this.commonHeaders('switch_channel.c', 'switch_channel_dequeue_dtmf'),
        ['Unique-ID', this.uuid],
        ['Call-Direction', this.direction],
        ['Presence-Call-Direction', this.direction],
        ['Answer-State', this.answeredAtMs !== undefined ? 'answered' : 'ringing'],
        ...extra,
      ]
    } else {
      const other: Headers = this.bridgedTo
        ? [
            ['Other-Type', 'originatee'],
            ['Other-Leg-Direction', 'outbound'],
            ['Other-Leg-Destination-Number', this.bridgedTo.dest],
            ['Other-Leg-Unique-ID', this.bridgedTo.uuid],
          ]
        : []
      headers = [
        ['Event-Name', name],
        ...this.commonHeaders('switch_core_session.c', 'switch_core_session_exec'),
        ...this.channelHeaders(),
        ...this.profile,
        ...other,
        ...this.varHeaders(),
        ...extra,
      ]
    }
    this.sent.push(name)
    this.write(encodeEvent(this.format, headers, o.body))
  }

  // ---- applications -----------------------------------------------------------------

  private async runNext(): Promise<void> {
    if (this.current || this.hungUp) return
    const app = this.queue.shift()
    if (!app) return
    this.current = app
    this.vars.set('current_application', app.name)
    if (app.arg) this.vars.set('current_application_data', app.arg)
    const appHeaders = (): Headers => [
      ['Application', app.name],
      ...(app.arg ? ([['Application-Data', app.arg]] as Headers) : []),
      ['Application-UUID', app.appUuid],
    ]
    this.emitEvent('CHANNEL_EXECUTE', appHeaders())
    let response = '_none_'
    let endsSession = false
    try {
      const r = await this.runApp(app.name, app.arg)
      response = r ?? '_none_'
      endsSession = app.name === 'transfer'
    } catch (err) {
      if (err !== INTERRUPTED) throw err
      response = app.name === 'playback' || app.name === 'play_and_get_digits' ? 'PLAYBACK ERROR' : '_none_'
    }
    this.vars.set('last_app', app.name)
    if (app.arg) this.vars.set('last_arg', app.arg)
    this.emitEvent('CHANNEL_EXECUTE_COMPLETE', [...appHeaders().slice(0, -1), ['Application-Response', response], ['Application-UUID', app.appUuid]])
    this.current = undefined
    if (endsSession || this.leaving) return this.leaveSocket()
    if (this.hungUp) return void this.teardown()
    setImmediate(() => void this.runNext())
  }

  private async runApp(name: string, arg: string): Promise<string | void> {
    switch (name) {
      case 'answer':
        this.markAnswered()
        return
      case 'pre_answer':
      case 'ring_ready':
        this.emitEvent('CHANNEL_PROGRESS_MEDIA')
        return
      case 'playback':
      case 'say':
      case 'speak':
        await this.play()
        return name === 'playback' ? 'FILE PLAYED' : undefined
      case 'sleep':
        await this.wait(Number(arg) || 0)
        return
      case 'set':
      case 'export': {
        const i = arg.indexOf('=')
        if (i > 0) this.vars.set(arg.slice(0, i), arg.slice(i + 1))
        return
      }
      case 'multiset':
        for (const pair of arg.split(/\s+/)) {
          const i = pair.indexOf('=')
          if (i > 0) this.vars.set(pair.slice(0, i), pair.slice(i + 1))
        }
        return
      case 'unset':
        this.vars.delete(arg)
        return
      case 'record_session':
        // `path +<limit>`: stop after <limit> seconds.
        {
          const m = /^(.*?)\s+\+(\d+)$/.exec(arg)
          this.startRecording('a', 'record_session', m ? m[1] : arg, { limitSec: m ? Number(m[2]) : 0 })
        }
        return
      case 'stop_record_session':
        this.stopRecordingPath('a', arg)
        return
      case 'record_session_mask':
      case 'record_session_unmask':
        this.maskRecording('a', arg, name === 'record_session_mask')
        return
      case 'play_and_get_digits':
        return this.playAndGetDigits(arg)
      case 'bridge':
        return this.bridge(arg)
      case 'endless_playback':
      case 'park':
        return this.untilBroken(name === 'endless_playback')
      case 'intercept':
        return this.intercept(arg)
      case 'conference':
        return this.joinConference(arg)
      case 'hangup':
        this.hangupNow(arg || 'NORMAL_CLEARING')
        return
      case 'transfer':
        return
      default:
        return
    }
  }

  private markAnswered(): void {
    if (this.answeredAtMs !== undefined) return
    this.answeredAtMs = this.now()
    this.vars.set('endpoint_disposition', 'ANSWER')
    this.emitEvent('CHANNEL_ANSWER')
  }

  private async play(): Promise<void> {
    const [min, max] = this.script.playbackMs ?? this.sim.opts.playbackMs
    const ms = min + Math.random() * (max - min)
    this.setPrompting(+1)
    try {
      await this.wait(ms)
    } finally {
      this.setPrompting(-1)
    }
    this.vars.set('playback_ms', String(Math.round(ms)))
    this.vars.set('playback_samples', String(Math.round(ms * 8)))
  }

  /** min max tries timeout terminators file invalid_file var_name regexp [digit_timeout] */
  private async playAndGetDigits(arg: string): Promise<void> {
    const [minS, maxS, triesS, timeoutS, terminators = '#', , , varName = 'digits', regex = '\\d+', digitTimeoutS] = arg.split(' ')
    const min = Number(minS) || 0
    const max = Number(maxS) || 128
    const tries = Number(triesS) || 1
    const timeout = Number(timeoutS) || 5000
    const digitTimeout = Number(digitTimeoutS) || timeout
    this.vars.delete(varName)
    let re: RegExp
    try {
      re = new RegExp(`^(?:${regex})$`)
    } catch {
      re = /^\d+$/
    }
    for (let t = 0; t < tries; t++) {
      if (this.digitBuffer.length === 0) {
        // The prompt plays until a digit interrupts it.
        const [pmin, pmax] = this.script.playbackMs ?? this.sim.opts.playbackMs
        this.setPrompting(+1)
        await this.wait(pmin + Math.random() * (pmax - pmin), () => this.digitBuffer.length > 0).finally(() => this.setPrompting(-1))
      }
      let digits = ''
      let terminated = false
      const take = () => {
        while (this.digitBuffer.length && digits.length < max && !terminated) {
          const d = this.digitBuffer.shift()!
          if (terminators.includes(d)) terminated = true
          else digits += d
        }
        return terminated || digits.length >= max
      }
      while (!take()) {
        await this.wait(digits.length ? digitTimeout : timeout, () => this.digitBuffer.length > 0)
        if (this.digitBuffer.length === 0) break // timed out waiting for the next digit
      }
      if (digits.length >= min && re.test(digits)) {
        this.vars.set(varName, digits)
        this.vars.set('read_result', 'success')
        this.vars.set('digits_dialed', digits)
        return
      }
      this.vars.set('read_result', digits ? 'failure' : 'timeout')
    }
  }

  private async bridge(dial: string): Promise<void> {
    const globals: Record<string, string> = {}
    let rest = dial
    const g = /^\{([^}]*)\}/.exec(rest)
    if (g) {
      for (const kv of g[1].split(/(?<!\\),/)) {
        const i = kv.indexOf('=')
        if (i > 0) globals[kv.slice(0, i)] = kv.slice(i + 1).replace(/\\,/g, ',')
      }
      rest = rest.slice(g[0].length)
    }
    const legs = rest.split(/[,|]/).map((e) => {
      const local: Record<string, string> = {}
      const m = /^\[([^\]]*)\]/.exec(e)
      if (m) {
        for (const kv of m[1].split(',')) {
          const i = kv.indexOf('=')
          if (i > 0) local[kv.slice(0, i)] = kv.slice(i + 1)
        }
        e = e.slice(m[0].length)
      }
      const target = this.script.bridgeTargets?.[e] ?? this.sim.opts.defaultTarget
      const timeoutSec = Number(local.leg_timeout ?? globals.originate_timeout ?? this.vars.get('call_timeout') ?? 60)
      return { endpoint: e, target, timeoutMs: timeoutSec * 1000 }
    })
    // Who answers first (within its timeout), and when do the others give up?
    let winner: (typeof legs)[number] | undefined
    let failAt = 0
    let cause = 'NO_ANSWER'
    for (const leg of legs) {
      const t = leg.target
      if (t.noAnswer) failAt = Math.max(failAt, leg.timeoutMs)
      else if (t.busy || t.failCause) {
        failAt = Math.max(failAt, t.ringMs ?? 0)
        if (legs.length === 1 || cause === 'NO_ANSWER') cause = t.busy ? 'USER_BUSY' : t.failCause!
      } else if ((t.answerAfterMs ?? 0) < leg.timeoutMs) {
        if (!winner || (t.answerAfterMs ?? 0) < (winner.target.answerAfterMs ?? 0)) winner = leg
      } else failAt = Math.max(failAt, leg.timeoutMs)
    }
    if (legs.some((l) => l.target.noAnswer || (l.target.answerAfterMs ?? 0) >= l.timeoutMs)) cause = 'NO_ANSWER'
    const setDisposition = (d: string) => {
      this.vars.set('originate_disposition', d)
      this.vars.set('DIALSTATUS', DIALSTATUS[d] ?? 'CHANUNAVAIL')
    }
    try {
      await this.wait(winner ? (winner.target.answerAfterMs ?? 0) : failAt)
    } catch (err) {
      setDisposition('ORIGINATOR_CANCEL')
      throw err
    }
    if (!winner) {
      setDisposition(cause)
      this.vars.set('originate_failed_cause', cause)
      return
    }
    const bUuid = randomUUID()
    this.markAnswered()
    this.bLegFate = 'hangup'
    setDisposition('SUCCESS')
    this.vars.set('bridge_uuid', bUuid)
    this.vars.set('last_bridge_to', bUuid)
    this.vars.set('signal_bond', bUuid)
    this.vars.set('bridge_channel', winner.endpoint)
    const start = this.flushRecordings()
    this.bridgedTo = { uuid: bUuid, dest: winner.endpoint.split('/').pop() ?? winner.endpoint }
    this.bLegVars = new Map([
      // The dial string's {vars} are the B-leg's channel variables.
      ...Object.entries(globals),
      ['uuid', bUuid],
      ['direction', 'outbound'],
      ['bridge_channel', winner.endpoint],
    ])
    this.bridgeStartMs = start
    this.emitEvent('CHANNEL_BRIDGE', [
      ['Bridge-A-Unique-ID', this.uuid],
      ['Bridge-B-Unique-ID', bUuid],
    ])
    const unbridge = () => {
      const end = this.flushRecordings()
      // Recordings on the B-leg end with it.
      for (const r of this.active.filter((x) => x.leg === 'b')) this.finishRecording(r, 'unbridge')
      this.endBLeg = undefined
      this.bridgeStartMs = undefined
      this.bridgedSpans.push([start, end])
      this.emitEvent('CHANNEL_UNBRIDGE', [
        ['Bridge-A-Unique-ID', this.uuid],
        ['Bridge-B-Unique-ID', bUuid],
      ])
      this.bridgedTo = undefined
    }
    // The B-leg hangs up by script, or when killed (uuid_kill) or transferred away.
    let bCause = 'NORMAL_CLEARING'
    const ctl: { finish?: () => void } = {}
    this.endBLeg = (cause) => {
      bCause = cause
      ctl.finish?.()
    }
    try {
      await this.wait(winner.target.hangupAfterMs ?? 24 * 3600 * 1000, undefined, ctl)
    } catch (err) {
      this.vars.set('bridge_hangup_cause', this.hangupCause ?? 'NORMAL_CLEARING')
      unbridge()
      throw err
    }
    this.vars.set('bridge_hangup_cause', bCause)
    this.vars.set('last_bridge_hangup_cause', bCause)
    unbridge()
  }

  // ---- end of the call --------------------------------------------------------------

  private hangupNow(cause: string, notify = true): void {
    if (this.hungUp) return
    this.hungUp = true
    this.hangupCause = cause
    this.vars.set('hangup_cause', cause)
    this.vars.set('hangup_cause_q850', String(Q850[cause] ?? 16))
    if (notify) this.emitEvent('CHANNEL_HANGUP', [['Hangup-Cause', cause]])
    // api_hangup_hook: FreeSWITCH runs this api command when the channel hangs up.
    const hook = this.vars.get('api_hangup_hook')
    if (hook) setImmediate(() => this.sim.api(hook))
    this.queue = []
    for (const w of [...this.waiters]) w.reject(INTERRUPTED)
    // The running application completes (interrupted) first; then the session ends.
    if (!this.current) void this.teardown()
  }

  private async teardown(): Promise<void> {
    if (this.tornDown) return
    this.tornDown = true
    this.stopAllRecordings('hangup')
    const endMs = this.now()
    const ms = (x: number) => this.startEpochMs + x
    const epoch = (x: number) => Math.floor(ms(x) / 1000)
    const v = this.vars
    v.set('start_epoch', String(epoch(0)))
    v.set('start_uepoch', String(Math.round(ms(0) * 1000)))
    v.set('end_epoch', String(epoch(endMs)))
    v.set('end_uepoch', String(Math.round(ms(endMs) * 1000)))
    if (this.answeredAtMs !== undefined) {
      v.set('answer_epoch', String(epoch(this.answeredAtMs)))
      v.set('answer_uepoch', String(Math.round(ms(this.answeredAtMs) * 1000)))
    } else v.set('answer_epoch', '0')
    v.set('duration', String(epoch(endMs) - epoch(0)))
    v.set('billsec', String(this.answeredAtMs !== undefined ? epoch(endMs) - epoch(this.answeredAtMs) : 0))
    v.set('mduration', String(Math.round(endMs)))
    v.set('billmsec', String(this.answeredAtMs !== undefined ? Math.round(endMs - this.answeredAtMs) : 0))
    v.set('caller_id', `"${this.script.callerIdName ?? 'Client'}" <${this.script.callerIdNumber ?? '74951234567'}>`)
    // FreeSWITCH's own hold total (switch_channel_set_timestamps): every hold span, an open one up to the hangup.
    const holdUs = Math.round(this.holds.reduce((sum, h) => sum + ((h.endMs ?? endMs) - h.startMs), 0) * 1000)
    v.set('hold_accum_seconds', String(Math.floor(holdUs / 1e6)))
    v.set('hold_accum_usec', String(holdUs))
    v.set('hold_accum_ms', String(Math.floor(holdUs / 1000)))
    if (this.socket.destroyed) return
    if (!this.linger) {
      this.sent.push('notice:disconnect')
      this.write(disconnectNotice(this.uuid))
      return this.end()
    }
    const cause: Headers = [['Hangup-Cause', this.hangupCause ?? 'NORMAL_CLEARING']]
    this.emitEvent('CHANNEL_UNPARK', cause)
    this.emitEvent('CHANNEL_EXECUTE_COMPLETE', [
      ...cause,
      ['Application', 'socket'],
      ['Application-Data', this.socketAppData],
      ['Application-Response', '_none_'],
      ['Application-UUID', randomUUID()],
    ])
    this.channelState = 'CS_HANGUP'
    this.emitEvent('CHANNEL_STATE', cause)
    this.channelState = 'CS_REPORTING'
    this.emitEvent('CHANNEL_STATE', cause)
    this.emitEvent('CHANNEL_HANGUP_COMPLETE', cause)
    this.sent.push('notice:linger')
    this.write(lingerNotice(this.uuid, this.channelName))
    this.after(this.sim.opts.lingerMs, () => {
      this.sent.push('notice:disconnect')
      this.write(disconnectNotice(this.uuid))
      this.end()
    })
  }

  /** After `transfer` the channel leaves the socket application (still up, elsewhere). */
  private leaveSocket(): void {
    // The channel lives on elsewhere; what the simulator recorded of it ends here.
    this.stopAllRecordings('transfer')
    this.tornDown = true
    this.hungUp = true
    this.emitEvent('CHANNEL_EXECUTE_COMPLETE', [
      ['Application', 'socket'],
      ['Application-Data', this.socketAppData],
      ['Application-Response', '_none_'],
      ['Application-UUID', randomUUID()],
    ])
    this.sent.push('notice:disconnect')
    this.write(disconnectNotice(this.uuid))
    this.end()
  }

  // ---- api and recordings ----------------------------------------------------------

  // ---- hold, background jobs, intercept, conference (attended transfer, 3-way) -----------

  /** uuid_hold on this (A) channel: CHANNEL_HOLD / CHANNEL_UNHOLD on it, the span kept in `holds`. */
  hold(mode: 'on' | 'off' | 'toggle'): void {
    if (this.hungUp) return
    const open = this.holds.at(-1)?.endMs === null
    const on = mode === 'toggle' ? !open : mode === 'on'
    if (on === open) return
    if (on) this.holds.push({ startMs: this.now(), endMs: null })
    else this.holds.at(-1)!.endMs = this.now()
    this.emitEvent(on ? 'CHANNEL_HOLD' : 'CHANNEL_UNHOLD')
  }

  /** uuid_break: the running endless_playback / park ends (the next queued app runs). */
  breakMedia(): void {
    this.breakCurrent?.()
  }

  /** The BACKGROUND_JOB of a `bgapi` this socket sent. */
  backgroundJob(jobUuid: string, command: string, body: string): void {
    // Its Job-Owner-UUID is this channel: a myevents socket gets it without asking (see the header comment).
    if (!this.subscription.wants('BACKGROUND_JOB') && !(this.subscription.on && this.subscription.myevents)) return
    const sp = command.indexOf(' ')
    const headers: Headers = [
      ['Event-Name', 'BACKGROUND_JOB'],
      ...this.commonHeaders('mod_event_socket.c', 'api_exec'),
      ['Job-UUID', jobUuid],
      ['Job-Command', sp < 0 ? command : command.slice(0, sp)],
      ...(sp < 0 ? [] : ([['Job-Command-Arg', command.slice(sp + 1)]] as Headers)),
      ['Job-Owner-UUID', this.uuid],
    ]
    this.sent.push('BACKGROUND_JOB')
    this.write(encodeEvent(this.format, headers, body))
  }

  /**
   * conference::maintenance about this channel's membership. It carries this channel's
   * Unique-ID, but CUSTOM is not in the myevents list: the socket gets it only after
   * `event plain CUSTOM conference::maintenance`.
   */
  conferenceEvent(conf: SimConference, action: string, memberId: number): void {
    this.emitEvent('CUSTOM', [
      ['Event-Subclass', 'conference::maintenance'],
      ['Conference-Name', conf.name],
      ['Conference-Domain', conf.profile],
      ['Conference-Size', String(conf.size)],
      ['Conference-Profile-Name', conf.profile],
      ['Conference-Unique-ID', conf.uuid],
      ['Member-ID', String(memberId)],
      ['Member-Type', 'member'],
      ['Action', action],
    ])
  }

  /** kick/hup from the conference: the `conference` app returns (hup also hangs the channel up). */
  leaveConference(hangup: boolean): void {
    this.leaveConferenceNow?.()
    if (hangup) this.hangupNow('NORMAL_CLEARING')
  }

  /** Write open files up to now (before a change of what this channel hears). */
  flushNow(): void {
    this.flushRecordings()
  }

  private async untilBroken(music: boolean): Promise<string | void> {
    this.markAnswered()
    if (music) this.setPrompting(+1)
    const ctl: { finish?: () => void } = {}
    this.breakCurrent = () => ctl.finish?.()
    try {
      await this.wait(24 * 3600 * 1000, undefined, ctl)
    } finally {
      this.breakCurrent = undefined
      if (music) this.setPrompting(-1)
    }
    return music ? 'FILE PLAYED' : undefined
  }

  /**
   * `intercept <uuid>`: bridge this channel to a live channel (a parked leg); that
   * channel's own partner, if any, is hung up (pickup semantics). Returns when the
   * bridge ends like `bridge` does.
   */
  private async intercept(arg: string): Promise<void> {
    const uuid = arg.replace(/^-bleg\s+/, '').trim()
    const leg = this.sim.liveLeg(uuid)
    if (!leg || leg.state === 'ringing') return
    leg.leaveForPickup()
    this.markAnswered()
    const start = this.flushRecordings()
    this.bridgedTo = { uuid, dest: leg.endpoint.split('/').pop() ?? leg.endpoint }
    this.bLegVars = leg.vars
    this.interceptedLeg = leg
    this.bLegFate = 'hangup'
    leg.state = 'bridged'
    leg.peer = this
    this.bridgeStartMs = start
    this.vars.set('bridge_uuid', uuid)
    this.vars.set('last_bridge_to', uuid)
    this.emitEvent('CHANNEL_BRIDGE', [
      ['Bridge-A-Unique-ID', this.uuid],
      ['Bridge-B-Unique-ID', uuid],
    ])
    let bCause = 'NORMAL_CLEARING'
    const ctl: { finish?: () => void } = {}
    this.endBLeg = (cause) => {
      bCause = cause
      ctl.finish?.()
    }
    const unbridge = () => {
      const end = this.flushRecordings()
      for (const r of this.active.filter((x) => x.leg === 'b')) this.finishRecording(r, 'unbridge')
      this.endBLeg = undefined
      this.bridgeStartMs = undefined
      this.bridgedSpans.push([start, end])
      this.emitEvent('CHANNEL_UNBRIDGE', [
        ['Bridge-A-Unique-ID', this.uuid],
        ['Bridge-B-Unique-ID', uuid],
      ])
      this.bridgedTo = undefined
      this.interceptedLeg = undefined
    }
    try {
      await this.wait(24 * 3600 * 1000, undefined, ctl)
    } catch (err) {
      this.vars.set('bridge_hangup_cause', this.hangupCause ?? 'NORMAL_CLEARING')
      unbridge()
      leg.partnerLeft()
      throw err
    }
    this.vars.set('bridge_hangup_cause', bCause)
    unbridge()
    if (this.bLegFate === 'hangup') {
      leg.peer = undefined
      leg.hangup(bCause)
    }
  }

  /** The `conference <room>[@profile]` app: a member until kicked, hung up, or the channel hangs up. */
  private async joinConference(arg: string): Promise<void> {
    const [name, profile = 'default'] = arg.split(/\s+/)[0].split('@')
    const conf = this.sim.conferenceNamed(name, profile)
    this.markAnswered()
    this.flushRecordings()
    const ctl: { finish?: () => void } = {}
    this.leaveConferenceNow = () => ctl.finish?.()
    this.inConference = conf
    const id = conf.add({ call: this })
    try {
      await this.wait(24 * 3600 * 1000, undefined, ctl)
    } finally {
      this.leaveConferenceNow = undefined
      conf.remove(id)
      this.flushRecordings()
      this.inConference = undefined
    }
  }

  /** Which leg of this call `uuid` names, while that leg is alive. */
  legOf(uuid: string): 'a' | 'b' | undefined {
    if (this.hungUp || this.tornDown) return undefined
    if (uuid === this.uuid) return 'a'
    if (this.bridgedTo && uuid === this.bridgedTo.uuid) return 'b'
    return undefined
  }

  /** The uuid of the bridged leg, while bridged. */
  get bLegUuid(): string | undefined {
    return this.bridgedTo?.uuid
  }

  /** Recordings FreeSWITCH is writing now (finished ones are in `recordings`). */
  get activeRecordings(): Array<{ path: string; leg: 'a' | 'b'; via: Recording['via']; masked: boolean; startMs: number }> {
    return this.active.map((r) => ({ path: r.path, leg: r.leg, via: r.via, masked: r.masked, startMs: r.startMs }))
  }

  setVar(leg: 'a' | 'b', name: string, value: string | undefined): void {
    const vars = leg === 'a' ? this.vars : this.bLegVars
    if (value === undefined || value === '') vars.delete(name)
    else vars.set(name, value)
  }

  getVar(leg: 'a' | 'b', name: string): string | undefined {
    return (leg === 'a' ? this.vars : this.bLegVars).get(name)
  }

  /** uuid_kill: the A-leg hangs up (the running app is interrupted); the B-leg leaves the bridge. */
  kill(leg: 'a' | 'b', cause: string): void {
    if (leg === 'a') this.hangupNow(cause)
    else {
      this.bLegFate = 'hangup'
      this.endBLeg?.(cause)
    }
  }

  /** uuid_transfer: the A-leg leaves the socket application (bridge broken); a B-leg just leaves the bridge. */
  transferLeg(leg: 'a' | 'b' | 'both', dest: string): void {
    if (leg === 'b') {
      // The B-leg leaves the bridge alive and runs its new destination (park, conference:<room>); A goes on with its socket.
      if (!this.bridgedTo) return
      const b = this.interceptedLeg ?? new SimLeg(this.sim, this, this.bridgedTo.uuid, this.bLegVars.get('bridge_channel') ?? this.bridgedTo.dest, this.bLegVars)
      this.bLegFate = 'detached'
      b.peer = undefined
      this.sim.legs.set(b.uuid, b)
      this.endBLeg?.('NORMAL_CLEARING')
      b.transferTo(dest)
      return
    }
    if (this.hungUp || this.leaving) return
    this.leaving = true
    this.queue = []
    for (const w of [...this.waiters]) w.reject(INTERRUPTED)
    if (!this.current) this.leaveSocket()
  }

  /**
   * Start a media bug writing `path` (record_session or uuid_record start). Like
   * FreeSWITCH: needs media on the channel (answered), reads RECORD_STEREO and
   * RECORD_MIN_SEC (default 3) now, creates the file at once. false = not started.
   */
  startRecording(leg: 'a' | 'b', via: Recording['via'], path: string, o: { limitSec?: number; vars?: Record<string, string> } = {}): boolean {
    if (this.hungUp || this.leaving || this.answeredAtMs === undefined || !path) return false
    if (leg === 'b' && !this.bridgedTo) return false
    if (this.active.some((r) => r.path === path)) return false
    const vars = leg === 'a' ? this.vars : this.bLegVars
    const get = (k: string) => o.vars?.[k] ?? vars.get(k)
    const stereo = (get('RECORD_STEREO') ?? 'false') === 'true'
    let writer: WavStreamWriter
    try {
      writer = new WavStreamWriter(path, stereo)
    } catch {
      return false // FreeSWITCH: "Error opening <path>"
    }
    const r: Recording = {
      path,
      stereo,
      minSec: Number(get('RECORD_MIN_SEC') ?? 3),
      startMs: this.now(),
      via,
      leg,
      uuid: leg === 'a' ? this.uuid : this.bridgedTo!.uuid,
      writer,
      masked: false,
      maskedSpans: [],
    }
    if (o.limitSec && o.limitSec > 0) {
      r.limitTimer = setTimeout(() => {
        if (this.active.includes(r)) this.finishRecording(r, 'limit')
      }, o.limitSec * 1000 * this.sim.opts.timeScale)
    }
    this.active.push(r)
    this.flushTimer ??= setInterval(() => this.flushRecordings(), FLUSH_EVERY_MS)
    this.flushTimer.unref()
    return true
  }

  /** stop_record_session / uuid_record stop: `all` or one path. false = nothing to stop. */
  stopRecordingPath(leg: 'a' | 'b', path: string): boolean {
    const stopping = this.active.filter((r) => r.leg === leg && (path === 'all' || r.path === path))
    for (const r of stopping) this.finishRecording(r, 'stop')
    return stopping.length > 0
  }

  /** Mask (silence, both directions) or unmask one recording from now on. false = no such recording. */
  maskRecording(leg: 'a' | 'b', path: string, on: boolean): boolean {
    const r = this.active.find((x) => x.leg === leg && x.path === path)
    if (!r) return false
    if (r.masked === on) return true
    // One timestamp for the flush and the span: writing the file takes (real) time too.
    const nowMs = this.now()
    this.flushRecording(r, nowMs)
    const at = nowMs - r.startMs
    if (on) r.maskFrom = at
    else {
      r.maskedSpans.push([r.maskFrom ?? 0, at])
      r.maskFrom = undefined
    }
    r.masked = on
    return true
  }

  private setPrompting(delta: number): void {
    this.flushRecordings()
    this.prompting += delta
  }

  /** Write every open file up to now with the media as it is now (called before any change); returns that now. */
  private flushRecordings(): number {
    const nowMs = this.now()
    for (const r of this.active) this.flushRecording(r, nowMs)
    return nowMs
  }

  private flushRecording(r: Recording, atMs = this.now()): void {
    const toFrame = Math.floor((atMs - r.startMs) * 8)
    if (r.masked) return r.writer.append(toFrame, null, null)
    const talks = this.script.callerTalks?.map(([a, b]): Span => [(a - r.startMs) * 8, (b - r.startMs) * 8])
    if (r.leg === 'b') return r.writer.append(toFrame, 'agent', 'caller', talks)
    const others = this.bridgedTo || (this.inConference && this.inConference.size > 1)
    r.writer.append(toFrame, 'caller', others ? 'agent' : this.prompting > 0 ? 'prompt' : null, talks)
  }

  private stopAllRecordings(by: RecordingResult['stoppedBy']): void {
    for (const r of [...this.active]) this.finishRecording(r, by)
  }

  /** Close one file (or delete it under RECORD_MIN_SEC) and set the record_* variables. */
  private finishRecording(r: Recording, by: RecordingResult['stoppedBy']): void {
    const endMs = this.now()
    this.flushRecording(r, endMs)
    this.active.splice(this.active.indexOf(r), 1)
    if (this.active.length === 0 && this.flushTimer) {
      clearInterval(this.flushTimer)
      this.flushTimer = undefined
    }
    clearTimeout(r.limitTimer)
    const durationMs = Math.max(0, endMs - r.startMs)
    if (r.masked) r.maskedSpans.push([r.maskFrom ?? 0, durationMs])
    const samples = r.writer.frames
    const keep = durationMs >= r.minSec * 1000
    let fileSize = 44 + samples * r.writer.channels * 2
    if (keep) fileSize = r.writer.close()
    else r.writer.discard()
    const bridged: Span[] = []
    const spans: Span[] = this.bridgeStartMs !== undefined ? [...this.bridgedSpans, [this.bridgeStartMs, endMs]] : this.bridgedSpans
    for (const [a, b] of spans) {
      const from = Math.max(0, a - r.startMs)
      const to = Math.min(durationMs, b - r.startMs)
      if (to > from) bridged.push([from, to])
    }
    const vars = r.leg === 'a' ? this.vars : this.bLegVars
    vars.set('record_file_size', String(fileSize))
    vars.set('record_samples', String(samples))
    vars.set('record_seconds', String(Math.floor(durationMs / 1000)))
    vars.set('record_ms', String(Math.round(durationMs)))
    vars.set('record_completion_cause', 'success-silence')
    this.recordings.push({
      path: r.path,
      stereo: r.stereo,
      ms: Math.round(durationMs),
      samples,
      fileSize,
      written: keep,
      via: r.via,
      leg: r.leg,
      uuid: r.uuid,
      startMs: r.startMs,
      endMs,
      masked: r.maskedSpans,
      bridged,
      stoppedBy: by,
    })
  }
}

// ---- channels outside any socket, and conference rooms ----------------------------------

interface LegRecording {
  path: string
  stereo: boolean
  minSec: number
  startMs: number
  writer: WavStreamWriter
}

/**
 * A channel no socket controls: a leg originated with `bgapi originate … &park()` (or
 * `&conference(<room>)`), or a B-leg moved out of its bridge (uuid_transfer, uuid_bridge).
 * Like FreeSWITCH it can be parked, bridged to another such channel (uuid_bridge), picked
 * up by a call (`intercept`), be a conference member, be recorded (`uuid_record`, agent
 * left, the other party right), and hang up (uuid_kill, its script's hangupAfterMs).
 * When its partner leaves a bridge it parks if park_after_bridge=true, else hangs up.
 * Its events reach no socket (myevents sockets see only their own channel's events).
 */
export class SimLeg {
  state: 'ringing' | 'parked' | 'bridged' | 'conference' | 'hungup' = 'ringing'
  peer: SimLeg | SimCall | undefined
  held = false
  hangupCause: string | undefined
  private conference: { room: SimConference; memberId: number } | undefined
  private readonly active: LegRecording[] = []
  private readonly timers = new Set<NodeJS.Timeout>()
  private flushTimer: NodeJS.Timeout | undefined
  private ringing: { timer: NodeJS.Timeout; settle: (killedBy?: string) => void } | undefined

  constructor(
    readonly sim: FsSimulator,
    /** The call whose script times this leg (its bridgeTargets) and whose clock its recordings use. */
    readonly owner: SimCall,
    readonly uuid: string,
    readonly endpoint: string,
    readonly vars: Map<string, string>,
  ) {
    vars.set('uuid', uuid)
  }

  get alive(): boolean {
    return this.state !== 'hungup'
  }

  get inConference(): SimConference | undefined {
    return this.conference?.room
  }

  after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn()
    }, ms * this.sim.opts.timeScale)
    t.unref()
    this.timers.add(t)
  }

  /** Ringing until `settle` (answered or failed after `ms`, or killed earlier). */
  ring(ms: number, settle: (killedBy?: string) => void): void {
    const timer = setTimeout(() => {
      this.ringing = undefined
      settle()
    }, ms * this.sim.opts.timeScale)
    timer.unref()
    this.ringing = { timer, settle }
  }

  answer(): void {
    this.state = 'parked'
    this.vars.set('endpoint_disposition', 'ANSWER')
  }

  park(): void {
    this.state = 'parked'
  }

  /** uuid_kill, the far end hanging up, or FreeSWITCH ending it. */
  hangup(cause: string): void {
    if (!this.alive) return
    if (this.ringing) {
      clearTimeout(this.ringing.timer)
      const r = this.ringing
      this.ringing = undefined
      return r.settle(cause)
    }
    this.flush()
    this.leaveConference()
    for (const r of [...this.active]) this.finishRecording(r, 'hangup')
    const p = this.peer
    this.peer = undefined
    this.gone(cause)
    if (p instanceof SimLeg) p.partnerLeft()
    else if (p) p.kill('b', cause)
  }

  /** The channel no longer exists (hung up, or never answered). */
  gone(cause: string): void {
    this.state = 'hungup'
    this.hangupCause = cause
    this.vars.set('hangup_cause', cause)
    this.sim.legs.delete(this.uuid)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** Its partner left the bridge: park_after_bridge=true parks it, otherwise it hangs up (FreeSWITCH's default). */
  partnerLeft(): void {
    if (!this.alive) return
    this.flush()
    this.peer = undefined
    if (this.state !== 'bridged') return
    if (this.vars.get('park_after_bridge') === 'true') this.state = 'parked'
    else this.hangup('NORMAL_CLEARING')
  }

  /** uuid_bridge: both leave what they were doing and talk to each other. */
  bridgeWith(other: SimLeg): void {
    for (const x of [this, other]) {
      x.flush()
      x.leaveConference()
      const p = x.peer
      x.peer = undefined
      if (p instanceof SimLeg && p !== this && p !== other) p.partnerLeft()
    }
    this.peer = other
    other.peer = this
    this.state = other.state = 'bridged'
  }

  /** Picked up by a call (`intercept`): its current partner is hung up, it leaves any conference. */
  leaveForPickup(): void {
    this.flush()
    this.leaveConference()
    const p = this.peer
    this.peer = undefined
    if (p instanceof SimLeg) p.hangup('PICKED_OFF')
  }

  /** uuid_transfer to `park` or `conference:<room>[@profile]` (inline dialplan). */
  transferTo(dest: string): void {
    this.flush()
    this.leaveConference()
    const p = this.peer
    this.peer = undefined
    if (p instanceof SimLeg) p.partnerLeft()
    if (dest.startsWith('conference:')) this.joinConference(dest.slice('conference:'.length))
    else this.state = 'parked'
  }

  joinConference(spec: string): void {
    const [name, profile = 'default'] = spec.split('@')
    const room = this.sim.conferenceNamed(name, profile)
    this.flush()
    this.state = 'conference'
    this.conference = { room, memberId: room.add({ leg: this }) }
  }

  private leaveConference(): void {
    const c = this.conference
    if (!c) return
    this.conference = undefined
    c.room.remove(c.memberId)
    if (this.state === 'conference') this.state = 'parked'
  }

  /** uuid_* commands aimed at this channel, with FreeSWITCH's answers. */
  api(cmd: string, args: string): { body: string; after?: () => void } {
    switch (cmd) {
      case 'uuid_record': {
        const [, action = '', path = '', limit, vars] = separate(args, 5)
        if (!path) return { body: '-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n' }
        if (action === 'start') return { body: this.startRecording(path, Number(limit) || 0, parseVarBlock(vars)) ? '+OK Success\n' : '-ERR Cannot record session!\n' }
        if (action === 'stop') {
          const stopping = this.active.filter((r) => path === 'all' || r.path === path)
          for (const r of stopping) this.finishRecording(r, 'stop')
          return { body: stopping.length ? '+OK Success\n' : '-ERR Cannot stop record session!\n' }
        }
        return { body: '-ERR Cannot mask recording session!\n' }
      }
      case 'uuid_setvar': {
        const [, name, value] = separate(args, 3)
        if (!name) return { body: '-USAGE: <uuid> <var> [value]\n' }
        if (value === undefined || value === '') this.vars.delete(name)
        else this.vars.set(name, value)
        return { body: '+OK\n' }
      }
      case 'uuid_getvar': {
        const [, name] = separate(args, 2)
        if (!name) return { body: '-USAGE: <uuid> <var>\n' }
        return { body: this.vars.get(name) ?? '_undef_' }
      }
      case 'uuid_kill': {
        const [, cause] = separate(args, 2)
        return { body: '+OK\n', after: () => this.hangup(cause || 'NORMAL_CLEARING') }
      }
      case 'uuid_transfer': {
        const a = separate(args, 5)
        const dest = a[1] === '-bleg' || a[1] === '-both' ? a[2] : a[1]
        if (!dest) return { body: '-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n' }
        return { body: '+OK\n', after: () => this.transferTo(dest) }
      }
      default:
        return { body: '+OK\n' }
    }
  }

  private startRecording(path: string, limitSec: number, o: Record<string, string>): boolean {
    if (this.state === 'ringing' || this.active.some((r) => r.path === path)) return false
    const get = (k: string) => o[k] ?? this.vars.get(k)
    const stereo = (get('RECORD_STEREO') ?? 'false') === 'true'
    let writer: WavStreamWriter
    try {
      writer = new WavStreamWriter(path, stereo)
    } catch {
      return false
    }
    const r: LegRecording = { path, stereo, minSec: Number(get('RECORD_MIN_SEC') ?? 3), startMs: this.owner.now(), writer }
    this.active.push(r)
    if (limitSec > 0) this.after(limitSec * 1000, () => this.active.includes(r) && this.finishRecording(r, 'limit'))
    this.flushTimer ??= setInterval(() => this.flush(), FLUSH_EVERY_MS)
    this.flushTimer.unref()
    return true
  }

  /** Write open files up to now: this channel left, what it hears right (nothing while held or alone). */
  flush(): void {
    const nowMs = this.owner.now()
    const right: Voice = this.held ? null
      : this.peer instanceof SimCall ? 'caller'
      : this.peer ? 'agent'
      : this.conference && this.conference.room.size > 1 ? (this.conference.room.hasCall ? 'caller' : 'agent')
      : null
    for (const r of this.active) r.writer.append(Math.floor((nowMs - r.startMs) * 8), 'agent', right)
  }

  private finishRecording(r: LegRecording, by: RecordingResult['stoppedBy']): void {
    const endMs = this.owner.now()
    this.flush()
    this.active.splice(this.active.indexOf(r), 1)
    if (this.active.length === 0 && this.flushTimer) {
      clearInterval(this.flushTimer)
      this.flushTimer = undefined
    }
    const durationMs = Math.max(0, endMs - r.startMs)
    const keep = durationMs >= r.minSec * 1000
    const samples = r.writer.frames
    let fileSize = 44 + samples * r.writer.channels * 2
    if (keep) fileSize = r.writer.close()
    else r.writer.discard()
    this.vars.set('record_ms', String(Math.round(durationMs)))
    this.vars.set('record_file_size', String(fileSize))
    this.owner.recordings.push({
      path: r.path, stereo: r.stereo, ms: Math.round(durationMs), samples, fileSize, written: keep, via: 'uuid_record', leg: 'b',
      uuid: this.uuid, startMs: r.startMs, endMs, masked: [], bridged: [], stoppedBy: by,
    })
  }

  /** The simulator is shut down: close files, stop timers, forget the channel. */
  dispose(): void {
    if (this.ringing) clearTimeout(this.ringing.timer)
    this.ringing = undefined
    for (const r of [...this.active]) this.finishRecording(r, 'hangup')
    this.leaveConference()
    this.gone('SYSTEM_SHUTDOWN')
  }
}

/**
 * A mod_conference room: members (a socket's own channel through the `conference` app,
 * or legs sent there by uuid_transfer/originate), `list`, `record <path>` (one mono file
 * of the mix, closed by `norecord` or when the last member leaves — the room is then
 * destroyed), `kick`/`hup`. conference::maintenance add-member/del-member go to the
 * member's own socket.
 */
export class SimConference {
  readonly uuid = randomUUID()
  private readonly members: Array<{ id: number; call?: SimCall; leg?: SimLeg }> = []
  private nextId = 1
  private readonly t0 = performance.now()
  private readonly recs: Array<{ path: string; startMs: number; writer: WavStreamWriter }> = []
  private flushTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly sim: FsSimulator,
    readonly name: string,
    readonly profile: string,
  ) {}

  get size(): number {
    return this.members.length
  }

  get hasCall(): boolean {
    return this.members.some((m) => m.call)
  }

  private now(): number {
    return (performance.now() - this.t0) / this.sim.opts.timeScale
  }

  add(m: { call?: SimCall; leg?: SimLeg }): number {
    this.touch()
    const id = this.nextId++
    this.members.push({ id, ...m })
    m.call?.conferenceEvent(this, 'add-member', id)
    return id
  }

  remove(id: number): void {
    const i = this.members.findIndex((m) => m.id === id)
    if (i < 0) return
    this.touch()
    const [m] = this.members.splice(i, 1)
    m.call?.conferenceEvent(this, 'del-member', id)
    this.touch()
    if (this.members.length === 0) this.destroy()
  }

  memberIds(which: string): number[] {
    return which === 'all' ? this.members.map((m) => m.id) : this.members.filter((m) => String(m.id) === which).map((m) => m.id)
  }

  /** kick: the member leaves (a leg then hangs up: nothing follows in its dialplan); hup: the member hangs up. */
  end(id: number, how: 'kick' | 'hup'): void {
    const m = this.members.find((x) => x.id === id)
    if (!m) return
    if (m.call) m.call.leaveConference(how === 'hup')
    else m.leg?.hangup('NORMAL_CLEARING')
  }

  /** `<id>;<channel>;<uuid>;<cid name>;<cid number>;<flags>;<vol in>;<vol out>;<energy>` per member. */
  list(): string {
    return this.members.map((m) => {
      const uuid = m.call?.uuid ?? m.leg!.uuid
      const channel = m.call?.vars.get('channel_name') ?? m.leg!.endpoint
      const cid = m.call ? (m.call.script.callerIdNumber ?? '74951234567') : (m.leg!.endpoint.split('/').pop() ?? '')
      return `${m.id};${channel};${uuid};${cid};${cid};hear|speak;0;0;300\n`
    }).join('')
  }

  record(path: string): boolean {
    if (this.recs.some((r) => r.path === path)) return false
    try {
      this.recs.push({ path, startMs: this.now(), writer: new WavStreamWriter(path, false) })
    } catch {
      return false
    }
    this.flushTimer ??= setInterval(() => this.flush(), FLUSH_EVERY_MS)
    this.flushTimer.unref()
    return true
  }

  norecord(path: string): number {
    const stopping = this.recs.filter((r) => path === 'all' || r.path === path)
    this.flush()
    for (const r of stopping) this.closeRecording(r, 'stop')
    return stopping.length
  }

  /** Members' files and the room's files written up to now (before anyone joins or leaves). */
  private touch(): void {
    this.flush()
    for (const m of this.members) {
      m.call?.flushNow()
      m.leg?.flush()
    }
  }

  private flush(): void {
    const nowMs = this.now()
    const left: Voice = this.hasCall ? 'caller' : this.members.length ? 'agent' : null
    const right: Voice = this.members.length > 1 ? 'agent' : null
    for (const r of this.recs) r.writer.append(Math.floor((nowMs - r.startMs) * 8), left, right)
  }

  private closeRecording(r: { path: string; startMs: number; writer: WavStreamWriter }, by: RecordingResult['stoppedBy']): void {
    this.recs.splice(this.recs.indexOf(r), 1)
    const endMs = this.now()
    const samples = r.writer.frames
    const fileSize = r.writer.close()
    this.sim.conferenceRecordings.push({
      path: r.path, stereo: false, ms: Math.round(endMs - r.startMs), samples, fileSize, written: true, via: 'uuid_record', leg: 'a',
      uuid: this.uuid, startMs: r.startMs, endMs, masked: [], bridged: [], stoppedBy: by,
    })
    if (this.recs.length === 0 && this.flushTimer) {
      clearInterval(this.flushTimer)
      this.flushTimer = undefined
    }
  }

  /** The last member left (or the simulator stops): the room and its recordings end. */
  destroy(): void {
    this.flush()
    for (const r of [...this.recs]) this.closeRecording(r, 'hangup')
    if (this.sim.conferences.get(this.name) === this) this.sim.conferences.delete(this.name)
  }
}
