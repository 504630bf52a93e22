/**
 * FreeSWITCH's inbound event socket (port 8021) as in inbound-api.txt: auth/request,
 * `auth <pw>` → `+OK accepted`, `api …` → api/response, `bgapi …` → `+OK Job-UUID: …`
 * then a BACKGROUND_JOB event, unknown api → `-ERR <cmd> Command not found!`, `exit`.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { apiResponse, commandReply, CommandReader, GOODBYE, plainEvent, jsonEvent, type ReceivedCommand } from './esl-wire.ts'

export interface InboundSimOptions {
  password?: string
  /** Answer api commands; return undefined for "Command not found". */
  api?: (command: string, args: string) => string | undefined
  /** Delay of BACKGROUND_JOB after the bgapi reply (ms). */
  bgapiDelayMs?: number
  /** Commands (first word) never answered. */
  neverAnswer?: string[]
}

export class InboundSimulator {
  private server: Server
  readonly sockets = new Set<Socket>()
  readonly commands: ReceivedCommand[] = []
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
            socket.write(apiResponse(this.runApi(rest)))
            break
          case 'bgapi': {
            const job = cmd.headers['job-uuid'] ?? randomUUID()
            socket.write(commandReply(`+OK Job-UUID: ${job}`))
            const body = this.runApi(rest)
            setTimeout(() => {
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
            }, this.opts.bgapiDelayMs ?? 5)
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
