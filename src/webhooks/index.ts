import type { Registry } from 'prom-client'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { EventBus } from '../events/bus.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import { LinkSigner } from './links.ts'
import { WebhookOutbox } from './outbox.ts'
import { DeliveryWorker } from './worker.ts'

export interface Webhooks { outbox: WebhookOutbox; worker: DeliveryWorker; signer: LinkSigner; stop(): Promise<void> }

/** Outbox (EventBus → Postgres) + delivery worker + link signer, wired together and started. */
export function startWebhooks(deps: { pool: Pool; events: EventBus; log: Logger; config: () => SwitchboardFile; node: string; registry?: Registry; env?: NodeJS.ProcessEnv }): Webhooks {
  const webhooks = () => deps.config().webhooks
  const links = () => deps.config().links
  const signer = new LinkSigner({ pool: deps.pool, links, env: deps.env })
  const worker = new DeliveryWorker({ pool: deps.pool, log: deps.log, webhooks, signer, node: deps.node, env: deps.env, registry: deps.registry })
  const outbox = new WebhookOutbox({ pool: deps.pool, events: deps.events, log: deps.log, webhooks, links, onEnqueued: () => worker.wake() })
  outbox.start()
  worker.start()
  return {
    outbox, worker, signer,
    stop: async () => { await outbox.stop(); await worker.stop() },
  }
}
