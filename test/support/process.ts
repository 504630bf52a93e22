import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface RunningServer {
  child: ChildProcess
  logs: Array<Record<string, unknown>>
  /** Resolves with the first JSON log line matching `pred`, or rejects after `ms`. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>
  exit: Promise<number | null>
  stderr(): string
}

/** Call `onLine` with every JSON log line a child writes (pino: one object per line); other output is skipped. */
export function onJsonLines(stream: NodeJS.ReadableStream, onLine: (line: Record<string, unknown>) => void): void {
  let buf = ''
  stream.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      let parsed: Record<string, unknown>
      try { parsed = JSON.parse(line) as Record<string, unknown> } catch { continue }
      onLine(parsed)
    }
  })
}

/** Start `src/main.ts` as `npm start` does, as a separate process with its own env. */
export function startServerProcess(env: Record<string, string>): RunningServer {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  const waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = []
  let errBuf = ''
  onJsonLines(child.stdout!, (parsed) => {
    logs.push(parsed)
    for (const w of [...waiters]) if (w.pred(parsed)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(parsed) }
  })
  child.stderr!.on('data', (d: Buffer) => { errBuf += d.toString() })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    logs,
    exit,
    stderr: () => errBuf,
    waitForLog(pred, ms = 60_000) {
      const found = logs.find(pred)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${ms} ms; stderr: ${errBuf.slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`)), ms)
        waiters.push({ pred, resolve: (l) => { clearTimeout(timer); resolve(l) } })
        void exit.then((code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before the log line; stderr: ${errBuf.slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`)) })
      })
    },
  }
}
