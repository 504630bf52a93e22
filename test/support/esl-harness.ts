import { silentLogger } from '../../src/log.ts'
import { OutboundServer, type OutboundServerOptions } from '../../src/esl/outbound-server.ts'
import type { CallChannel } from '../../src/esl/call-channel.ts'

/** A real outbound server on 127.0.0.1:<random port>, and a way to await its channels. */
export async function startOutbound(opts: Partial<OutboundServerOptions> = {}) {
  const server = new OutboundServer({ port: 0, host: '127.0.0.1', logger: silentLogger(), ...opts })
  const queued: CallChannel[] = []
  const waiting: Array<(c: CallChannel) => void> = []
  server.on('channel', (c) => {
    const w = waiting.shift()
    if (w) w(c)
    else queued.push(c)
  })
  const { port } = await server.listen()
  return {
    server,
    port,
    nextChannel(): Promise<CallChannel> {
      const c = queued.shift()
      if (c) return Promise.resolve(c)
      return new Promise((resolve) => waiting.push(resolve))
    },
    close: () => server.close(),
  }
}

/** Wait until cond() or fail after ms. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
