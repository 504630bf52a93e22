/**
 * FreeSWITCH's inbound event socket (port 8021) as in inbound-api.txt: auth/request,
 * `auth <pw>` → `+OK accepted`, `api …` → api/response, `bgapi …` → `+OK Job-UUID: …`
 * then a BACKGROUND_JOB event, unknown api → `-ERR <cmd> Command not found!`, `exit`.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { apiResponse, commandReply, CommandReader, GOODBYE, plainEvent, jsonEvent, type ReceivedCommand } from './esl-wire.ts'
import type { BridgeTarget, CallScript, FsSimulator, SimCall } from './fs-simulator.ts'
import { parseOriginateArgs, type OriginateSpec } from '../../src/esl/originate.ts'

/** One `originate` the simulator ran: what was asked, how the first leg ended, the socket call it made. */
export interface SimOriginate {
  spec: OriginateSpec
  uuid: string
  /** `+OK <uuid>` or `-ERR <CAUSE>`, as answered. */
  result: string
  /** The answered leg running `&socket(host:port …)`, dialling Switchboard's outbound server. */
  call?: SimCall
}

export interface InboundSimOptions {
  password?: string
  /** Answer api commands; return undefined for "Command not found". */
  api?: (command: string, args: string) => string | undefined
  /** Delay of BACKGROUND_JOB after the bgapi reply (ms). */
  bgapiDelayMs?: number
  /** Commands (first word) never answered. */
  neverAnswer?: string[]
  /**
   * `originate` like mod_commands: the first leg rings per `targets[endpoint]` (default:
   * answers after 10 ms); the answer is `+OK <origination_uuid>` once it answers, else
   * `-ERR <cause>`. An answered leg with `&socket(host:port async full)` then connects to
   * that address as an outbound, already answered channel carrying the originate's
   * variables — through `fs`, with `script(spec)` adding the rest (bridge targets, hangup).
   * Times are script ms, scaled by the FsSimulator's timeScale.
   */
  originate?: {
    fs?: FsSimulator
    targets?: Record<string, BridgeTarget>
    script?: (spec: OriginateSpec) => Partial<CallScript>
  }
}

export class InboundSimulator {
  private server: Server
  readonly sockets = new Set<Socket>()
  readonly commands: ReceivedCommand[] = []
  readonly originates: SimOriginate[] = []
  connections = 0
  port = 0

  constructor(private readonly opts: InboundSimOptions = {}) {
    this.server = createServer((s) => this.onSocket(s))
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
    return this.port
  }

  /** Drop every client (FreeSWITCH restarting). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy()
  }

  close(): Promise<void> {
    this.dropAll()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private onSocket(socket: Socket): void {
    this.connections++
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    const reader = new CommandReader()
    let authed = false
    let format: 'plain' | 'json' = 'plain'
    let events = new Set<string>()
    socket.write('Content-Type: auth/request\n\n')
    socket.on('data', (chunk: Buffer) => {
      for (const cmd of reader.push(chunk)) {
        this.commands.push(cmd)
        const [word, ...restParts] = cmd.line.split(' ')
        const rest = restParts.join(' ')
        if (this.opts.neverAnswer?.includes(word)) continue
        if (!authed) {
          if (word === 'auth' && rest === (this.opts.password ?? 'ClueCon')) {
            authed = true
            socket.write(commandReply('+OK accepted'))
          } else {
            socket.write(commandReply('-ERR invalid'))
            socket.end()
          }
          continue
        }
        switch (word) {
          case 'event': {
            const [fmt, ...names] = rest.split(' ')
            format = fmt === 'json' ? 'json' : 'plain'
            events = new Set(names)
            socket.write(commandReply(`+OK event listener enabled ${format}`))
            break
          }
          case 'api':
            // originate blocks until the first leg answers (or fails); everything else answers at once.
            if (rest.startsWith('originate ')) void this.runOriginate(rest.slice('originate '.length)).then((body) => socket.write(apiResponse(body)))
            else socket.write(apiResponse(this.runApi(rest)))
            break
          case 'bgapi': {
            const job = cmd.headers['job-uuid'] ?? randomUUID()
            socket.write(commandReply(`+OK Job-UUID: ${job}`))
            const originate = rest.startsWith('originate ') ? this.runOriginate(rest.slice('originate '.length)) : null
            const body = originate ? '' : this.runApi(rest)
            void (originate ?? Promise.resolve(body)).then((body) => setTimeout(() => {
              if (!events.has('BACKGROUND_JOB') && !events.has('all')) return
              const [command, ...args] = rest.split(' ')
              const headers: Array<[string, string]> = [
                ['Event-Name', 'BACKGROUND_JOB'],
                ['Core-UUID', randomUUID()],
                ['Event-Calling-File', 'mod_event_socket.c'],
                ['Event-Calling-Function', 'api_exec'],
                ['Job-UUID', job],
                ['Job-Command', command],
                ['Job-Command-Arg', args.join(' ')],
              ]
              socket.write(format === 'json' ? jsonEvent(headers, body) : plainEvent(headers, body))
              this.afterJob.get(body)?.()
            }, this.opts.bgapiDelayMs ?? 5))
            break
          }
          case 'exit':
            socket.write(commandReply('+OK bye'))
            socket.write(`Content-Type: text/disconnect-notice\nContent-Length: ${Buffer.byteLength(GOODBYE)}\n\n${GOODBYE}`)
            socket.end()
            break
          default:
            socket.write(commandReply('-ERR command not found'))
        }
      }
    })
  }

  /** What happens after the answer of an originate is written: its leg runs the socket app. */
  private readonly afterJob = new Map<string, () => void>()

  private async runOriginate(args: string): Promise<string> {
    const spec = parseOriginateArgs(args)
    if (!spec) return '-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n'
    const o = this.opts.originate ?? {}
    const uuid = spec.vars.origination_uuid || randomUUID()
    const scale = o.fs?.opts.timeScale ?? 1
    const target = o.targets?.[spec.endpoint] ?? { answerAfterMs: 10 }
    const timeoutMs = Number(spec.vars.originate_timeout ?? 60) * 1000
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms * scale))
    const record = (result: string) => { this.originates.push({ spec, uuid, result }); return `${result}\n` }
    if (target.busy || target.failCause) {
      await sleep(target.ringMs ?? 0)
      return record(`-ERR ${target.busy ? 'USER_BUSY' : target.failCause}`)
    }
    if (target.noAnswer || (target.answerAfterMs ?? 0) >= timeoutMs) {
      await sleep(timeoutMs)
      return record('-ERR NO_ANSWER')
    }
    await sleep(target.answerAfterMs ?? 0)
    const body = record(`+OK ${uuid}`)
    const entry = this.originates[this.originates.length - 1]
    const addr = spec.app.name === 'socket' ? /^\[?([^\]\s]+?)\]?:(\d+)\b/.exec(spec.app.arg) : null
    if (addr && o.fs) {
      const fs = o.fs
      // FreeSWITCH answers the job, then the session thread runs the socket application.
      this.afterJob.set(body, () => {
        this.afterJob.delete(body)
        const dest = spec.endpoint.split('/').pop() ?? spec.endpoint
        entry.call = fs.call({
          uuid, direction: 'outbound', answered: true, context: 'default',
          callerIdNumber: spec.vars.origination_caller_id_number ?? '0000000000',
          callerIdName: spec.vars.origination_caller_id_name ?? 'FreeSWITCH',
          destination: dest, channelName: spec.endpoint.startsWith('user/') ? `sofia/internal/${dest}@127.0.0.1` : spec.endpoint,
          vars: { ...spec.vars }, connectTo: { host: addr[1], port: Number(addr[2]) },
          ...o.script?.(spec),
        })
      })
      // api originate has no job event: start right after the response.
      setTimeout(() => this.afterJob.get(body)?.(), (this.opts.bgapiDelayMs ?? 5) + 1)
    }
    return body
  }

  private runApi(line: string): string {
    const [command, ...args] = line.split(' ')
    const custom = this.opts.api?.(command, args.join(' '))
    if (custom !== undefined) return custom
    switch (command) {
      case 'status':
        return 'UP 0 years, 0 days, 0 hours, 2 minutes, 7 seconds\nFreeSWITCH (Version 1.10.12 simulator) is ready\n0 session(s) since startup\n'
      case 'show':
        return '{"row_count": 0}\n'
      case 'hupall':
        return `+OK hangup all channels with cause ${args[0] ?? 'NORMAL_CLEARING'}\n`
      case 'originate':
        return `+OK ${randomUUID()}\n`
      default:
        if (command.startsWith('uuid_')) return '+OK\n'
        return `-ERR ${command} Command not found!\n`
    }
  }
}
