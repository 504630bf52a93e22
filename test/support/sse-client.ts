import http from 'node:http'

export interface SseMessage { event: string; data: unknown; id?: string; receivedAt: number }

/**
 * A small server-sent-events client over node:http (tests and benches: hundreds of
 * connections, the arrival time of each event taken when its last line is parsed).
 */
export class SseClient {
  readonly messages: SseMessage[] = []
  status = 0
  body = ''
  private readonly waiters: Array<{ pred: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void }> = []
  private listeners: Array<(m: SseMessage) => void> = []
  private req: http.ClientRequest | null = null
  private ended = false

  /** Resolves once the response headers arrived (any status; a non-200 body is in `body`). */
  static connect(url: string, headers: Record<string, string> = {}, agent?: http.Agent): Promise<SseClient> {
    const c = new SseClient()
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent }, (res) => {
        c.status = res.statusCode ?? 0
        res.setEncoding('utf8')
        let buf = ''
        res.on('data', (chunk: string) => {
          if (c.status !== 200) { c.body += chunk; return }
          buf += chunk
          let i: number
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i)
            buf = buf.slice(i + 2)
            c.parse(block)
          }
        })
        res.on('end', () => { c.ended = true })
        res.on('error', () => { c.ended = true })
        if (c.status !== 200) res.on('end', () => resolve(c))
        else resolve(c)
      })
      req.on('error', (err) => { if (c.status === 0) reject(err); c.ended = true })
      c.req = req
    })
  }

  get closed(): boolean { return this.ended }

  onMessage(fn: (m: SseMessage) => void): void { this.listeners.push(fn) }

  /** The first message (already received or still to come) matching `pred`. */
  next(pred: (m: SseMessage) => boolean, timeoutMs = 10_000): Promise<SseMessage> {
    const seen = this.messages.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching SSE message within ${timeoutMs} ms (got: ${this.messages.map((m) => m.event).join(', ')})`)), timeoutMs)
      this.waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m) } })
    })
  }

  close(): void { this.req?.destroy(); this.ended = true }

  private parse(block: string): void {
    let event = 'message'
    let data = ''
    let id: string | undefined
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'data') data += (data ? '\n' : '') + value
      else if (field === 'id') id = value
    }
    if (data === '') return // retry: lines and comments
    const m: SseMessage = { event, data: JSON.parse(data), receivedAt: performance.now(), ...(id ? { id } : {}) }
    this.messages.push(m)
    for (const l of this.listeners) l(m)
    for (let k = this.waiters.length - 1; k >= 0; k--) {
      if (this.waiters[k].pred(m)) { this.waiters[k].resolve(m); this.waiters.splice(k, 1) }
    }
  }
}
