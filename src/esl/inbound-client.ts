import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { TimeoutError, UnavailableError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { EslConnection, isApiFailure } from './connection.ts'
import { DEFAULT_ESL_LIMITS, DEFAULT_FS_ESL_PORT, type EslLimits } from './defaults.ts'
import { EslCommandError } from './errors.ts'
import type { EslEvent } from './event.ts'

export interface InboundClientOptions {
  host?: string
  port?: number
  password: string
  logger: Logger
  limits?: Partial<EslLimits>
  /** Events to subscribe to besides BACKGROUND_JOB (always on: bgapi needs it). */
  events?: string[]
  /** How long a bgapi job may take before its promise rejects. Default 30 s. */
  bgapiTimeoutMs?: number
  /** Reconnect backoff (ms): min doubles up to max, with jitter. */
  reconnect?: { minMs?: number; maxMs?: number }
}

export interface InboundClientEvents {
  connected: []
  disconnected: [{ reason: string }]
  event: [EslEvent]
}

interface Job {
  resolve: (body: string) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

/**
 * Client of FreeSWITCH's inbound event socket (port 8021) for api/bgapi commands:
 * originate, uuid_kill, uuid_transfer, ... It stays connected and reconnects with
 * backoff; while disconnected, commands fail fast with UnavailableError (callers have a
 * fallback) instead of queueing without bound.
 */
export class InboundClient extends EventEmitter<InboundClientEvents> {
  private conn: EslConnection | undefined
  private ready = false
  private stopped = false
  private attempt = 0
  private reconnectTimer: NodeJS.Timeout | undefined
  private readonly jobs = new Map<string, Job>()
  private readonly limits: EslLimits
  private firstConnect: { resolve: () => void; reject: (e: Error) => void } | undefined

  constructor(private readonly opts: InboundClientOptions) {
    super()
    this.limits = { ...DEFAULT_ESL_LIMITS, ...opts.limits }
  }

  get connected(): boolean {
    return this.ready
  }

  /** Connect and authenticate; resolves once ready. Later drops reconnect on their own. */
  start(): Promise<void> {
    this.stopped = false
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject }
      this.open()
    })
  }

  /** `api <cmd>`: the response body; a body starting with -ERR or -USAGE rejects with EslCommandError. */
  async api(command: string, timeoutMs?: number): Promise<string> {
    const conn = this.usable(command)
    const reply = await conn.command(`api ${command}`, {}, { timeoutMs })
    if (isApiFailure(reply.body)) throw new EslCommandError(`api ${command}`, reply.body.trim())
    return reply.body
  }

  /** `bgapi <cmd>`: resolves with the BACKGROUND_JOB body for our Job-UUID. */
  async bgapi(command: string, timeoutMs = this.opts.bgapiTimeoutMs ?? 30_000): Promise<string> {
    const conn = this.usable(command)
    const jobUuid = randomUUID()
    const done = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.jobs.delete(jobUuid)
        reject(new TimeoutError(`bgapi ${command.split(' ')[0]}`, timeoutMs))
      }, timeoutMs)
      this.jobs.set(jobUuid, { resolve, reject, timer })
    })
    done.catch(() => {}) // observed below; avoid an unhandled rejection if the command fails first
    try {
      const reply = await conn.command(`bgapi ${command}`, { 'Job-UUID': jobUuid })
      if (!reply.ok) throw new EslCommandError(`bgapi ${command}`, reply.text)
    } catch (err) {
      this.failJob(jobUuid, err as Error)
      throw err
    }
    const body = await done
    if (isApiFailure(body)) throw new EslCommandError(`bgapi ${command}`, body.trim())
    return body
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    const conn = this.conn
    if (conn && !conn.isClosed) {
      await conn.command('exit', {}, { timeoutMs: 1000 }).catch(() => {})
      conn.close('client stopped')
    }
    for (const id of [...this.jobs.keys()]) this.failJob(id, new UnavailableError('FreeSWITCH inbound ESL', 'client stopped'))
  }

  private usable(command: string): EslConnection {
    if (!this.ready || !this.conn || this.conn.isClosed) {
      throw new UnavailableError('FreeSWITCH inbound ESL', `not connected (command ${command.split(' ')[0]})`)
    }
    return this.conn
  }

  private open(): void {
    const { host = '127.0.0.1', port = DEFAULT_FS_ESL_PORT, logger } = this.opts
    const socket = connect(port, host)
    const log = logger.child({ fs_esl: `${host}:${port}` })
    const conn = new EslConnection(socket, log, this.limits)
    this.conn = conn
    // FreeSWITCH speaks first (auth/request); time-box the whole login.
    const loginTimer = setTimeout(() => conn.close('no auth/request from FreeSWITCH'), this.limits.commandTimeoutMs)
    conn.once('auth', () => {
      clearTimeout(loginTimer)
      this.login(conn).catch((err: Error) => {
        log.warn({ err }, 'inbound ESL login failed')
        conn.close(`login failed: ${err.message}`)
      })
    })
    conn.on('event', (e) => this.onEvent(e))
    conn.once('close', ({ reason }) => {
      clearTimeout(loginTimer)
      const wasReady = this.ready
      this.ready = false
      if (wasReady) this.emit('disconnected', { reason })
      for (const id of [...this.jobs.keys()]) this.failJob(id, new UnavailableError('FreeSWITCH inbound ESL', `connection lost: ${reason}`))
      if (this.stopped) return
      const { minMs = 100, maxMs = 10_000 } = this.opts.reconnect ?? {}
      const delay = Math.min(maxMs, minMs * 2 ** this.attempt++) * (0.75 + Math.random() * 0.5)
      log.info({ reason, delayMs: Math.round(delay) }, 'inbound ESL reconnect scheduled')
      this.reconnectTimer = setTimeout(() => this.open(), delay)
    })
  }

  private async login(conn: EslConnection): Promise<void> {
    const auth = await conn.command(`auth ${this.opts.password}`)
    if (!auth.ok) {
      const err = new EslCommandError('auth', auth.text)
      this.stopped = true // a wrong password does not get better by retrying
      this.firstConnect?.reject(err)
      this.firstConnect = undefined
      throw err
    }
    const events = ['BACKGROUND_JOB', ...(this.opts.events ?? []).filter((e) => e !== 'BACKGROUND_JOB')]
    const sub = await conn.command(`event plain ${events.join(' ')}`)
    if (!sub.ok) throw new EslCommandError('event', sub.text)
    this.ready = true
    this.attempt = 0
    this.firstConnect?.resolve()
    this.firstConnect = undefined
    this.emit('connected')
  }

  private onEvent(e: EslEvent): void {
    if (e.name === 'BACKGROUND_JOB') {
      const id = e.headers['Job-UUID'] ?? ''
      const job = this.jobs.get(id)
      if (job) {
        clearTimeout(job.timer)
        this.jobs.delete(id)
        job.resolve(e.body)
      }
    }
    this.emit('event', e)
  }

  private failJob(id: string, err: Error): void {
    const job = this.jobs.get(id)
    if (!job) return
    clearTimeout(job.timer)
    this.jobs.delete(id)
    job.reject(err)
  }
}
