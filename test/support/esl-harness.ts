import { silentLogger } from '../../src/log.ts'
import { OutboundServer, type OutboundServerOptions } from '../../src/esl/outbound-server.ts'
import type { CallChannel } from '../../src/esl/call-channel.ts'
import { FsSimulator, type SimulatorOptions } from './fs-simulator.ts'

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

/**
 * The outbound server plus a wire simulator dialling into it, both torn down with the
 * test: the setup every CallChannel test starts from.
 */
export async function startServerWithSimulator(
  t: { teardown(fn: () => unknown): void },
  simOpts: Partial<SimulatorOptions> = {},
  serverOpts: Partial<OutboundServerOptions> = {},
) {
  const h = await startOutbound(serverOpts)
  const sim = new FsSimulator({ port: h.port, ...simOpts })
  t.teardown(async () => {
    sim.closeAll()
    await h.close()
  })
  return { h, sim }
}
