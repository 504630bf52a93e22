import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { TimeoutError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { DEFAULT_ESL_LIMITS, type EslLimits } from './defaults.ts'
import { EslClosedError, EslCommandError, EslProtocolError } from './errors.ts'
import { classify, type EslEvent, type EslMessage } from './event.ts'
import { FrameParser } from './frame-parser.ts'

/** A command's answer: command/reply (Reply-Text) or api/response (body). */
export interface EslReply {
  /** Every header, decoded (built when first read; the connect reply has ~150). */
  readonly headers: Record<string, string>
  body: string
  /** Reply-Text for command/reply, the body for api/response. */
  text: string
  ok: boolean
  /** One header, decoded, without building `headers`. */
  header(name: string): string | undefined
}

interface Pending {
  command: string
  resolve: (r: EslReply) => void
  reject: (e: Error) => void
  /** performance.now() past which the reply is overdue (the wire limit). */
  deadline: number
  timeoutMs: number
  giveUpTimer?: NodeJS.Timeout
  /** The caller gave up waiting; the slot stays so the late reply is consumed in order. */
  abandoned?: boolean
}

export interface EslConnectionEvents {
  event: [EslEvent]
  disconnectNotice: [{ disposition: string; headers: Record<string, string>; body: string }]
  auth: []
  close: [{ reason: string; error?: Error }]
}

/**
 * One ESL socket, either direction: frames in, commands out. FreeSWITCH answers the
 * commands of one socket in order, so replies are matched first-in first-out. Anything
 * wrong on the wire (malformed frame, oversize, a command that is never answered)
 * closes this socket only, with the reason logged once; pending commands reject.
 */
export class EslConnection extends EventEmitter<EslConnectionEvents> {
  private readonly parser: FrameParser
  private readonly pending: Pending[] = []
  private readonly limits: EslLimits
  private closed = false
  private closeReason = ''
  private logger: Logger | undefined
  /**
   * One timer per socket for the wire limit, not one per command: it is armed for the
   * earliest deadline of the pending commands and, when it fires, checks them and re-arms
   * for what is left. A reply does not clear it (most commands are answered in a
   * millisecond, and the next one is sent at once); it is cleared at close.
   */
  private deadlineTimer: NodeJS.Timeout | undefined
  private armedFor = Infinity
  /** Commands written this tick wait in the socket until the next tick sends them together (see write). */
  private corked = false

  /**
   * `log` may be a function: the logger is then made on first use. A pino child per
   * socket costs more than the rest of a call's handshake, and most sockets log nothing
   * before their call's own logger replaces it (useLogger).
   */
  constructor(
    readonly socket: Socket,
    private makeLog: Logger | (() => Logger),
    limits: Partial<EslLimits> = {},
    /** With a lazy `log`: the logger it is made from, asked whether debug is on without making it. */
    private readonly parentLog?: Logger,
  ) {
    super()
    this.limits = { ...DEFAULT_ESL_LIMITS, ...limits }
    this.parser = new FrameParser(this.limits)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.shutdown(`socket error: ${err.message}`, err))
    socket.on('end', () => this.shutdown(this.parser.buffered > 0 ? `peer closed inside a frame (${this.parser.buffered} bytes truncated)` : 'peer closed'))
    socket.on('close', () => this.shutdown('socket closed'))
  }

  private get log(): Logger {
    return (this.logger ??= typeof this.makeLog === 'function' ? this.makeLog() : this.makeLog)
  }

  /** Log through `log` from now on (the call's logger once the call is known; a function: made on first use). */
  useLogger(log: Logger | (() => Logger)): void {
    this.logger = typeof log === 'function' ? undefined : log
    if (typeof log === 'function') this.makeLog = log
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Send a command (and optional headers/body) and wait for its reply. `timeoutMs` is the
   * wire limit: past it the socket is closed (replies are matched in order, one that never
   * comes makes the socket unusable). `giveUpAfterMs` (shorter) only stops the caller
   * waiting: its promise rejects with TimeoutError, the reply is still consumed in order
   * when it comes, and the wire limit still applies.
   */
  command(
    command: string,
    headers: Record<string, string> = {},
    opts: { timeoutMs?: number; giveUpAfterMs?: number; body?: string } = {},
  ): Promise<EslReply> {
    let text = command + '\n'
    for (const k in headers) text += `${k}: ${headers[k]}\n`
    if (opts.body !== undefined) text += `Content-Length: ${Buffer.byteLength(opts.body)}\n\n${opts.body}`
    else text += '\n'
    return this.send(text, command, opts)
  }

  /**
   * Send one command already in wire form (`text` ends with the blank line), as command()
   * does after formatting it; `command` names it in logs and timeouts. For hot paths that
   * format their own headers (CallChannel.execute).
   */
  send(text: string, command: string, opts: { timeoutMs?: number; giveUpAfterMs?: number } = {}): Promise<EslReply> {
    return new Promise<EslReply>((resolve, reject) => this.sendThen(text, command, resolve, reject, opts))
  }

  /**
   * send() with callbacks instead of a promise, for callers that already hold one per
   * command (CallChannel.execute): one promise and closure less per application run.
   */
  sendThen(
    text: string,
    command: string,
    resolve: (r: EslReply) => void,
    reject: (e: Error) => void,
    opts: { timeoutMs?: number; giveUpAfterMs?: number } = {},
  ): void {
    if (this.closed) {
      reject(new EslClosedError(this.closeReason))
      return
    }
    const timeoutMs = opts.timeoutMs ?? this.limits.commandTimeoutMs
    const deadline = performance.now() + timeoutMs
    if (deadline < this.armedFor) this.armDeadline(deadline)
    const p: Pending = { command, resolve, reject, deadline, timeoutMs }
    if (opts.giveUpAfterMs !== undefined && opts.giveUpAfterMs < timeoutMs) {
      p.giveUpTimer = setTimeout(() => {
        p.abandoned = true
        reject(new TimeoutError(`ESL command ${JSON.stringify(command.split('\n')[0])}`, opts.giveUpAfterMs!))
      }, opts.giveUpAfterMs)
    }
    this.pending.push(p)
    this.write(text)
  }

  /**
   * Commands sent in the same tick leave in one packet (one write syscall instead of one
   * each; on loopback a write also pays the receiver's TCP work). FreeSWITCH reads commands
   * byte by byte, so several in a packet are read and answered one after the other.
   */
  private write(text: string): void {
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(this.uncork)
    }
    this.socket.write(text)
  }

  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  private armDeadline(deadline: number): void {
    clearTimeout(this.deadlineTimer)
    this.armedFor = deadline
    this.deadlineTimer = setTimeout(() => this.checkDeadlines(), Math.max(0, Math.ceil(deadline - performance.now())))
  }

  private checkDeadlines(): void {
    this.deadlineTimer = undefined
    this.armedFor = Infinity
    if (this.closed) return
    let first: Pending | undefined
    for (const p of this.pending) if (!first || p.deadline < first.deadline) first = p
    if (!first) return
    if (first.deadline > performance.now()) {
      this.armDeadline(first.deadline)
      return
    }
    // A reply that never comes desynchronises FIFO matching: the socket is unusable.
    const name = first.command.split('\n')[0]
    this.shutdown(`command timed out: ${name}`, new TimeoutError(`ESL command ${JSON.stringify(name)}`, first.timeoutMs))
  }

  /** Close the socket; pending commands reject with EslClosedError. Idempotent. */
  close(reason = 'closed by application'): void {
    this.shutdown(reason)
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    let messages: EslMessage[]
    try {
      messages = this.parser.push(chunk).map((f) => classify(f, this.limits.maxBodyBytes))
    } catch (err) {
      this.shutdown(err instanceof EslProtocolError ? err.message : `parse failure: ${(err as Error).message}`, err as Error)
      return
    }
    for (const m of messages) {
      if (this.closed) return
      this.dispatch(m)
    }
  }

  private dispatch(m: EslMessage): void {
    switch (m.kind) {
      case 'reply': {
        const p = this.pending.shift()
        if (!p) {
          this.log.warn({ headers: m.headers }, 'ESL reply without a pending command, ignored')
          return
        }
        if (p.giveUpTimer) clearTimeout(p.giveUpTimer)
        if (p.abandoned) {
          this.log.debug({ command: p.command.split('\n')[0] }, 'late ESL reply to an abandoned command consumed')
          return
        }
        m.text = m.contentType === 'api/response' ? m.body : m.replyText
        m.ok = !isApiFailure(m.text)
        p.resolve(m)
        return
      }
      case 'event':
        this.emit('event', m.event)
        return
      case 'disconnect':
        this.emit('disconnectNotice', { disposition: m.disposition, headers: m.headers, body: m.body })
        return
      case 'auth':
        this.emit('auth')
        return
      case 'other':
        this.log.debug({ contentType: m.contentType }, 'ESL frame of unknown type ignored')
    }
  }

  private shutdown(reason: string, error?: Error): void {
    if (this.closed) return
    this.closed = true
    this.closeReason = reason
    const normal = reason === 'peer closed' || reason === 'socket closed' || reason === 'closed by application'
    if (!normal) this.log.warn({ reason, err: error }, 'ESL connection closed')
    else if ((this.logger ?? this.parentLog ?? this.log).isLevelEnabled('debug')) this.log.debug({ reason }, 'ESL connection closed')
    clearTimeout(this.deadlineTimer)
    this.deadlineTimer = undefined
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.giveUpTimer)
      if (p.abandoned) continue
      p.reject(error instanceof TimeoutError ? error : new EslClosedError(reason))
    }
    this.socket.destroy()
    this.emit('close', { reason, error })
  }
}

export function assertOk(command: string, reply: EslReply): EslReply {
  if (!reply.ok) throw new EslCommandError(command, reply.text)
  return reply
}

/** FreeSWITCH's failure answers: `-ERR <why>`, and `-USAGE: <syntax>` for bad arguments of an api command. */
export function isApiFailure(text: string): boolean {
  return text.startsWith('-ERR') || text.startsWith('-USAGE')
}
