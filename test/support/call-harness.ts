import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import { OutboundServer } from '../../src/esl/outbound-server.ts'
import { CallService } from '../../src/calls/call-service.ts'
import { CdrWriter } from '../../src/calls/cdr.ts'
import { EventBus } from '../../src/events/bus.ts'
import { PresenceStore } from '../../src/acd/presence.ts'
import { Acd } from '../../src/acd/dispatcher.ts'
import { endpointOf } from '../../src/calls/context.ts'
import { FsObjectStore } from '../../src/recordings/store/fs-store.ts'
import { buildDirectory, type ClientInput, type Employee } from '../../src/crm/directory.ts'
import { loadSwitchboardFile, type SwitchboardFile } from '../../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../../src/server.ts'
import { fixedClock } from '../../src/routing/types.ts'
import { unknownCallerLookup } from '../../src/crm/unknown-caller-lookup.ts'
import { silentLogger, type Logger } from '../../src/log.ts'
import type { TestDatabase } from './db.ts'
import { FsSimulator } from './fs-simulator.ts'
import { tempSpool, makePipeline } from './pipeline.ts'

export interface CallHarness {
  sim: FsSimulator
  service: CallService
  presence: PresenceStore
  cdr: CdrWriter
  store: FsObjectStore
  config: SwitchboardFile
  events: EventBus
  /** the shared-Postgres ACD of this harness's node */
  acd: Acd
  close(): Promise<void>
}

/**
 * The real call path in-process: OutboundServer (real TCP) → CallService → CallSession,
 * real Postgres, the real recording pipeline with real ffmpeg into a filesystem store,
 * and the FreeSWITCH wire simulator dialling in. Only the clock is fixed (office hours).
 */
export async function startCallHarness(db: TestDatabase, opts: {
  employees: Employee[]; clients: ClientInput[]; ready?: string[]; at?: string; timeScale?: number; log?: Logger
  configure?: (cfg: SwitchboardFile) => void
  /** node name (two harnesses on one database = two Switchboard nodes) */
  node?: string
}): Promise<CallHarness> {
  const log = opts.log ?? silentLogger()
  const config = await loadSwitchboardFile(EXAMPLE_CONFIG)
  opts.configure?.(config)
  for (const e of opts.employees) {
    await db.pool.query(`INSERT INTO employees (id, name, role, group_id, extension) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [e.id, e.name, e.role, e.groupId ?? null, e.extension ?? null])
  }
  for (const c of opts.clients) {
    await db.pool.query(`INSERT INTO clients (id, name, segment, kind, assigned_manager_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [c.id, c.name, c.segment, c.kind, c.assignedManagerId ?? null])
  }
  const directory = buildDirectory({ clients: opts.clients, employees: opts.employees, groups: config.groups }, { defaultRegion: config.defaultRegion })
  const events = new EventBus()
  const presence = new PresenceStore(db.pool, log, events, { node: Acd.nodeIdFor(opts.node ?? 'test-node') })
  for (const id of opts.ready ?? []) await presence.set(id, 'ready')
  await presence.load()
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = await tempSpool()
  const pipeline = await makePipeline(db.pool, store, spool, { events })
  await pipeline.start()
  const cdr = new CdrWriter(db.pool, log)
  const esl = new OutboundServer({ port: 0, host: '127.0.0.1', logger: log })
  const registry = new Registry()
  const acd = new Acd({
    pool: db.pool, log, presence, config: () => config, directory: () => directory, events, node: opts.node ?? 'test-node',
    ringable: (e) => endpointOf(e, { gateways: config.gateways, fmc: config.fmc }) !== null,
  })
  await acd.start()
  const service = new CallService(esl, {
    log, pool: db.pool, cdr, spool, recordings: pipeline, directory: () => directory, presence, config: () => config,
    clock: fixedClock(opts.at ?? '2026-11-23T09:00:00Z'), node: opts.node ?? 'test-node', events, acd,
    lookupUnknown: unknownCallerLookup(config, () => directory, log),
  }, registry)
  const addr = await esl.listen()
  const sim = new FsSimulator({ port: addr.port, host: '127.0.0.1', timeScale: opts.timeScale ?? 0.01 })
  return {
    sim, service, presence, cdr, store, config, events, acd,
    close: async () => {
      sim.closeAll()
      await service.stop(2_000)
      await acd.stop()
      await pipeline.stop()
      cdr.stop()
      await rm(objects, { recursive: true, force: true })
      await rm(spool.dir, { recursive: true, force: true })
    },
  }
}
