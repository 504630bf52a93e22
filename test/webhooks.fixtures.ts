// A real HTTP receiver for the webhook tests: node:http on 127.0.0.1:0, scripted answers.
import http from 'node:http'
import { createHmac } from 'node:crypto'
import type { AddressInfo } from 'node:net'

export type Answer = 'ok' | '500' | '503' | 'timeout' | 'redirect' | '400'
export interface Received { path: string; headers: http.IncomingHttpHeaders; body: string; at: number }

export class Receiver {
  readonly requests: Received[] = []
  /** answers for the next requests, in order; 'ok' once the script runs out (or `fallback`) */
  readonly script: Answer[] = []
  fallback: Answer = 'ok'
  private readonly hanging = new Set<http.ServerResponse>()
  private server!: http.Server
  url = ''

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        this.requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() })
        const answer = this.script.shift() ?? this.fallback
        if (answer === 'timeout') { this.hanging.add(res); res.on('close', () => this.hanging.delete(res)); return }
        if (answer === 'redirect') { res.writeHead(302, { location: `${this.url}/elsewhere` }).end(); return }
        const code = answer === 'ok' ? 200 : Number(answer)
        res.writeHead(code, { 'content-type': 'text/plain' }).end(answer === 'ok' ? 'thanks' : `receiver says ${code}`)
      })
    })
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  /** requests to one path (the endpoint), excluding anything else */
  at(path: string): Received[] { return this.requests.filter((r) => r.path === path) }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}

/** The receiver's side of the signature, recomputed independently of src/webhooks/signature.ts. */
export function signatureValid(secret: string, header: string | string[] | undefined, body: string): boolean {
  if (typeof header !== 'string') return false
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header)
  if (!m) return false
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex')
  return expected === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) < 300
}
