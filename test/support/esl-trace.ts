/**
 * Replays a capture from /work/shared/esl-traces at our server, byte for byte: the
 * FreeSWITCH→app chunks exactly as FreeSWITCH wrote them (real chunk boundaries), paced
 * on the app's commands — before each app→FreeSWITCH record we wait for the app to send
 * one complete command. What the app sends is recorded for assertions.
 */
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { CommandReader, type ReceivedCommand } from './esl-wire.ts'

export const TRACE_DIR = '/work/shared/esl-traces'

export interface TraceRecord {
  t: number
  dir: 'fs->app' | 'app->fs' | 'fs->client' | 'client->fs'
  data: Buffer
}

export function loadTrace(name: string): TraceRecord[] {
  const file = name.includes('/') ? name : `${TRACE_DIR}/${name}${name.endsWith('.jsonl') ? '' : '.jsonl'}`
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const r = JSON.parse(l) as { t: number; dir: TraceRecord['dir']; data: string }
      return { t: r.t, dir: r.dir, data: Buffer.from(r.data, 'base64') }
    })
}

export interface ReplayResult {
  commands: ReceivedCommand[]
  /** Bytes of the trace actually written to the app. */
  bytesSent: number
  /** False when the app closed (or stopped sending commands) before the trace ended. */
  complete: boolean
}

/** Outbound traces: we are FreeSWITCH connecting to the app's server at `port`. */
export function replayOutbound(name: string, port: number, opts: { commandTimeoutMs?: number } = {}): Promise<ReplayResult> {
  const records = loadTrace(name)
  const socket = connect(port, '127.0.0.1')
  return replay(records, 'fs->app', socket, opts.commandTimeoutMs ?? 5000, true)
}

/**
 * Inbound traces: we are FreeSWITCH's port 8021 and the app connected to us; pass the
 * accepted socket. The first record (auth/request) is sent at once.
 */
export function replayInbound(name: string, socket: import('node:net').Socket, opts: { commandTimeoutMs?: number } = {}): Promise<ReplayResult> {
  return replay(loadTrace(name), 'fs->client', socket, opts.commandTimeoutMs ?? 5000, false)
}

function replay(records: TraceRecord[], fromFs: string, socket: import('node:net').Socket, commandTimeoutMs: number, waitConnect: boolean): Promise<ReplayResult> {
  const reader = new CommandReader()
  const commands: ReceivedCommand[] = []
  let consumed = 0
  let notify: (() => void) | undefined
  let closed = false
  socket.on('data', (c: Buffer) => {
    commands.push(...reader.push(c))
    notify?.()
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    closed = true
    notify?.()
  })
  const nextCommand = () =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (commands.length > consumed) {
          consumed++
          clearTimeout(timer)
          notify = undefined
          resolve(true)
        } else if (closed) {
          clearTimeout(timer)
          resolve(false)
        }
      }
      const timer = setTimeout(() => {
        notify = undefined
        resolve(false)
      }, commandTimeoutMs)
      notify = check
      check()
    })
  return (async () => {
    if (waitConnect) await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    let bytesSent = 0
    let complete = true
    for (const r of records) {
      if (r.dir === fromFs) {
        if (closed) {
          complete = false
          break
        }
        socket.write(r.data)
        bytesSent += r.data.length
        // One read on FreeSWITCH's side = one write here; let the app see them separately.
        await new Promise((res) => setImmediate(res))
      } else if (!(await nextCommand())) {
        complete = false
        break
      }
    }
    socket.end()
    if (!closed) await new Promise<void>((res) => socket.once('close', () => res()))
    return { commands, bytesSent, complete }
  })()
}
