import type { FastifyReply, FastifyRequest } from 'fastify'

export interface SseStream {
  /** send one event; returns false once the client has gone */
  send(event: string, data: unknown, id?: string): boolean
  /** resolves when the client disconnects (or the server closes the stream) */
  closed: Promise<void>
  close(): void
}

/**
 * Server-sent events on a fastify route (screen pop, supervisor live view, click-to-call
 * progress). Takes over the raw response: a heartbeat comment every `heartbeatMs` keeps
 * proxies from closing an idle stream and reveals dead clients; the caller removes its
 * listeners when `closed` resolves. Writes are never awaited: a slow client buffers in
 * its own socket, and a client whose buffer exceeds `maxBufferedBytes` is disconnected
 * rather than growing memory without bound.
 */
export function openSse(req: FastifyRequest, reply: FastifyReply, opts: { heartbeatMs?: number; maxBufferedBytes?: number; retryMs?: number } = {}): SseStream {
  const res = reply.raw
  reply.hijack()
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  res.write(`retry: ${opts.retryMs ?? 3000}\n\n`)
  let open = true
  let resolveClosed!: () => void
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve })
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024
  const heartbeat = setInterval(() => { if (open) res.write(': ping\n\n') }, opts.heartbeatMs ?? 15_000)
  heartbeat.unref()
  const finish = () => {
    if (!open) return
    open = false
    clearInterval(heartbeat)
    resolveClosed()
  }
  req.raw.on('close', finish)
  res.on('close', finish)
  res.on('error', finish)
  return {
    send(event, data, id) {
      if (!open) return false
      if (res.writableLength > maxBuffered) {
        req.log.warn({ buffered: res.writableLength }, 'SSE client too slow; disconnecting it')
        res.destroy()
        finish()
        return false
      }
      const json = JSON.stringify(data)
      res.write(`${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${json}\n\n`)
      return true
    },
    closed,
    close() { if (open) { res.end(); finish() } },
  }
}
