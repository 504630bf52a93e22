import { EventEmitter } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Logger } from '../log.ts'
import { CallChannel } from './call-channel.ts'
import { parseChannelData, type ChannelData } from './channel-data.ts'
import { EslConnection } from './connection.ts'
import { DEFAULT_DROPPED_EVENTS, DEFAULT_ESL_HOST, DEFAULT_ESL_LIMITS, DEFAULT_ESL_PORT, DEFAULT_EXTRA_EVENTS, type EslLimits } from './defaults.ts'
import { EslProtocolError } from './errors.ts'
import type { EslEvent } from './event.ts'

export interface OutboundServerOptions {
  port?: number
  host?: string
  logger: Logger
  limits?: Partial<EslLimits>
  /** `myevents` (plain, as FreeSWITCH defaults to) or `myevents json`. */
  eventFormat?: 'plain' | 'json'
  /** Keep receiving events after hangup (HANGUP_COMPLETE carries billsec, record_*). Default true. */
  linger?: boolean
  /** Bound on concurrent sockets; beyond it new ones are closed at once. */
  maxSessions?: number
  /**
   * The event types asked for beyond `myevents` (`event …`) and the ones of its list dropped
   * (`nixevent …`); see defaults.ts. `false`: `myevents` alone, as a plain modesl app does
   * (the trace replays use it: the app that made the captures sent nothing else).
   */
  subscriptions?: { extra: readonly string[]; drop: readonly string[] } | false
}

export interface OutboundServerEvents {
  channel: [CallChannel]
  /**
   * The socket failed after `connect` told us which call it is but before the channel was
   * ready (peer hung up or dropped, a reply timed out, a malformed frame): no CallChannel is
   * handed out, yet the call existed and still needs its CDR.
   */
  channelLost: [ChannelData, string]
  error: [Error]
}

/**
 * FreeSWITCH's `socket` application connects here, one TCP connection per call. For each
 * we send, in one packet, `connect` (reply: the channel data, headers in any order),
 * `myevents`, `event …` / `nixevent …` (the event types Switchboard reads, see defaults.ts)
 * and `linger`, then hand a ready CallChannel to whoever listens to 'channel'.
 *
 * Own ESL code rather than modesl 1.2.1's Server: its outbound Connection sends
 * `event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE` before `myevents` (an extra,
 * unfiltered subscription), only notices 'end' (a reset socket stays in
 * `server.connections` forever), has no command timeout, and its parser can crash the
 * process on one malformed header (see frame-parser.ts).
 */
export class OutboundServer extends EventEmitter<OutboundServerEvents> {
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly opts: Required<Omit<OutboundServerOptions, 'limits'>> & { limits: EslLimits }
  private accepted = 0
  private rejected = 0
  /** Resolves when the listener is closed and every socket has ended (the server's 'close'). */
  private serverClosed: Promise<void> | undefined
  private idleWaiters: Array<() => void> = []
  /** What follows `connect` on every socket: myevents, event, nixevent, linger. */
  private readonly setupCommands: string[]

  constructor(options: OutboundServerOptions) {
    super()
    this.opts = {
      port: options.port ?? DEFAULT_ESL_PORT,
      host: options.host ?? DEFAULT_ESL_HOST,
      logger: options.logger,
      limits: { ...DEFAULT_ESL_LIMITS, ...options.limits },
      eventFormat: options.eventFormat ?? 'plain',
      linger: options.linger ?? true,
      maxSessions: options.maxSessions ?? 20_000,
      subscriptions: options.subscriptions ?? { extra: DEFAULT_EXTRA_EVENTS, drop: DEFAULT_DROPPED_EVENTS },
    }
    this.setupCommands = this.buildSetupCommands()
    this.server = createServer((s) => this.onSocket(s))
    this.server.on('error', (err) => this.emit('error', err))
  }

  /** Open sockets (handshaking or carrying a call). */
  get sessionCount(): number {
    return this.sockets.size
  }

  get stats(): { open: number; accepted: number; rejected: number } {
    return { open: this.sockets.size, accepted: this.accepted, rejected: this.rejected }
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject)
        const addr = this.server.address() as AddressInfo
        this.opts.logger.info({ host: addr.address, port: addr.port }, 'outbound ESL server listening')
        resolve(addr)
      })
    })
  }

  /** Whether the port is open for new calls. */
  get accepting(): boolean {
    return this.server.listening
  }

  /**
   * Graceful shutdown, first half: close the listening port — FreeSWITCH's `socket` app
   * gets a refused connection for new calls (and tries the next host it lists) — while
   * the calls already here keep running. Resolves once the port is closed. Idempotent.
   * Then wait for whenIdle() (the running calls end by themselves), or close() to drop them.
   */
  stopAccepting(): Promise<void> {
    if (!this.serverClosed) {
      const wasListening = this.server.listening
      this.serverClosed = new Promise((resolve) => this.server.close(() => resolve()))
      if (wasListening) this.opts.logger.info({ open: this.sockets.size }, 'outbound ESL server stopped accepting calls')
    }
    // server.close() closes the listening handle at once; its callback waits for the sockets.
    return new Promise((resolve) => setImmediate(resolve))
  }

  /** Resolves when no socket is open any more (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Stop accepting, drop every socket (FreeSWITCH hangs those calls up), wait for close. */
  async close(): Promise<void> {
    void this.stopAccepting()
    for (const s of this.sockets) s.destroy()
    await this.serverClosed
  }

  private onSocket(socket: Socket): void {
    if (this.sockets.size >= this.opts.maxSessions) {
      this.rejected++
      this.opts.logger.warn({ max: this.opts.maxSessions }, 'outbound ESL session limit reached, connection dropped')
      socket.destroy()
      return
    }
    this.accepted++
    this.sockets.add(socket)
    socket.once('close', () => {
      this.sockets.delete(socket)
      if (this.sockets.size === 0) for (const w of this.idleWaiters.splice(0)) w()
    })
    const remote = `${socket.remoteAddress}:${socket.remotePort}`
    // One pino child per call (remote + call_uuid), made once the call is known; a socket
    // that fails before that gets a remote-only child when it first logs.
    const conn = new EslConnection(socket, () => this.opts.logger.child({ remote }), this.opts.limits, this.opts.logger)
    const known: { data?: ChannelData } = {}
    this.handshake(conn, remote, known).catch((err: Error) => {
      // Logged once here; the socket is already closed or gets closed now.
      if (!conn.isClosed) this.opts.logger.warn({ err, remote }, 'outbound ESL handshake failed')
      conn.close(`handshake failed: ${err.message}`)
      if (known.data) this.emit('channelLost', known.data, `handshake failed: ${err.message}`)
    })
  }

  private buildSetupCommands(): string[] {
    const { eventFormat, subscriptions, linger } = this.opts
    const commands = [eventFormat === 'json' ? 'myevents json' : 'myevents']
    if (subscriptions) {
      for (const name of [...subscriptions.extra, ...subscriptions.drop]) {
        if (!/^[A-Za-z0-9_:.-]+$/.test(name)) throw new EslProtocolError(`event subscription ${JSON.stringify(name)} is not an event name`)
      }
      if (subscriptions.extra.length) commands.push(`event ${eventFormat} ${subscriptions.extra.join(' ')}`)
      if (subscriptions.drop.length) commands.push(`nixevent ${subscriptions.drop.join(' ')}`)
    }
    if (linger) commands.push('linger')
    return commands
  }

  /**
   * `connect` and the setup commands go out in one packet: mod_event_socket reads commands
   * byte by byte and answers them in order, so nothing waits for a round trip per command.
   * Events may follow the `myevents` reply in the very read that carries the connect reply,
   * before the CallChannel exists: they are held and handed to it.
   */
  private async handshake(conn: EslConnection, remote: string, known: { data?: ChannelData }): Promise<void> {
    const early: EslEvent[] = []
    const holdEarly = (e: EslEvent) => early.push(e)
    conn.on('event', holdEarly)
    const connected = conn.command('connect')
    const setup = Promise.all(this.setupCommands.map((c) => conn.command(c).then((reply) => ({ command: c, reply }))))
    setup.catch(() => {}) // a failed connect says it first; the same failure rejects these
    const reply = await connected
    if (!reply.header('Unique-ID') && !reply.header('Channel-Unique-ID')) {
      throw new EslProtocolError('connect reply carries no channel data')
    }
    const data = parseChannelData(reply)
    known.data = data
    // The call's pino child (remote + call_uuid) is made when something first logs: at the
    // default level nothing does on a normal call, and a child costs as much as parsing a
    // few events.
    let made: Logger | undefined
    const channelLog = () => (made ??= this.opts.logger.child({ remote, call_uuid: data.uuid }))
    conn.useLogger(channelLog)
    const channel = new CallChannel(conn, data, channelLog, this.opts.logger)
    conn.off('event', holdEarly)
    for (const e of early) conn.emit('event', e)
    for (const { command, reply } of await setup) {
      // An older FreeSWITCH may not know an event name; the call still works without it.
      if (!reply.ok) channel.log.warn({ command, reply: reply.text }, 'FreeSWITCH refused an event setup command')
    }
    if (this.opts.logger.isLevelEnabled('debug')) channel.log.debug({ caller: data.callerIdNumber, destination: data.destination }, 'call channel ready')
    this.emit('channel', channel)
  }
}
