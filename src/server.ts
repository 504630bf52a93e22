import path from 'node:path'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { readEnvConfig, type EnvConfig } from './config/env.ts'
import { loadSwitchboardFile, type SwitchboardFile } from './config/switchboard-file.ts'
import { ConfigHolder } from './config/holder.ts'
import { createLogger, type Logger } from './log.ts'
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.ts'
import { migrate } from './db/migrate.ts'
import { createPool, type Pool } from './db/pool.ts'
import { createObjectStore, type ObjectStore } from './recordings/store/index.ts'
import { Spool } from './recordings/spool.ts'
import { RecordingPipeline } from './recordings/pipeline.ts'
import { configureFfmpeg, resolveFfmpeg, checkEncoders } from './recordings/ffmpeg-paths.ts'
import { buildHttpApp } from './http/app.ts'
import type { ReadinessCheck } from './http/plugins/health.ts'
import { ensureBootstrapAdmin } from './http/auth/tokens.ts'
import { OutboundServer } from './esl/outbound-server.ts'
import { CallService } from './calls/call-service.ts'
import { CdrWriter } from './calls/cdr.ts'
import { PresenceStore } from './acd/presence.ts'
import { Acd } from './acd/dispatcher.ts'
import { agentsRoutes } from './http/plugins/agents.ts'
import { queuesRoutes } from './http/plugins/queues.ts'
import { endpointOf } from './calls/context.ts'
import { closeInterruptedCalls } from './calls/interrupted-calls.ts'
import { DirectoryStore } from './crm/directory-store.ts'
import { crmRoutes } from './crm/http.ts'
import { unknownCallerLookup } from './crm/unknown-caller-lookup.ts'
import { ConfigVersions } from './config/versions.ts'
import { configRoutes } from './config/http.ts'
import { callsRoutes } from './http/plugins/calls.ts'
import { recordingsRoutes } from './http/plugins/recordings.ts'
import { clientsRoutes } from './http/plugins/clients.ts'
import { auditRoutes } from './http/plugins/audit.ts'
import { sessionRoutes } from './http/plugins/session.ts'
import { qaReviewRoutes } from './http/plugins/qa-review.ts'
import { consoleRoutes } from './http/plugins/console.ts'
import { RetentionSweeperRunner } from './recordings/access/retention-sweeper.ts'
import { systemClock } from './routing/types.ts'
import { EventBus } from './events/bus.ts'
import { startWebhooks } from './webhooks/index.ts'
import { webhooksRoutes } from './http/plugins/webhooks.ts'
import { erasureRoutes } from './http/plugins/erasure.ts'
import { exportsRoutes } from './http/plugins/exports.ts'
import { DailyCsvExporter } from './erp/daily-csv.ts'
import { ScreenPopHub } from './screen-pop/hub.ts'
import { screenPopRoutes } from './http/plugins/screen-pop.ts'
import { LiveStats } from './stats/live.ts'
import { statsRoutes } from './http/plugins/stats.ts'
import { InboundClient } from './esl/inbound-client.ts'
import { OutboundCalls } from './calls/click-to-call.ts'
import { CallbackWorker } from './callbacks/worker.ts'
import { clickToCallRoutes } from './http/plugins/click-to-call.ts'
import { employeesRoutes } from './http/plugins/employees.ts'
import { callbacksRoutes } from './http/plugins/callbacks.ts'
import { CallPlanDialler } from './call-plans/dialler.ts'
import { callPlansRoutes } from './http/plugins/call-plans.ts'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const EXAMPLE_CONFIG = path.join(PROJECT_ROOT, 'config', 'switchboard.example.yaml')

export interface Switchboard {
  env: EnvConfig
  log: Logger
  config: ConfigHolder<SwitchboardFile>
  pool: Pool
  store: ObjectStore
  pipeline: RecordingPipeline
  presence: PresenceStore
  calls: CallService
  http: FastifyInstance
  httpUrl: string
  eslPort: number
  registry: Registry
  events: EventBus
  /** agents' screen pop and the supervisor's live statistics (issue 11) */
  screenPop: ScreenPopHub
  live: LiveStats
  /** FreeSWITCH's inbound event socket (null: FS_ESL_HOST not set), the calls we originate, the callback worker. */
  inbound: InboundClient | null
  outbound: OutboundCalls
  callbackWorker: CallbackWorker
  /** outbound call plans: dials uploaded lists progressively (issue 11) */
  callPlanDialler: CallPlanDialler
  stop(): Promise<void>
}

/**
 * Composition root: read and validate config, build every part, start them in
 * dependency order, and stop them in reverse order. `main.ts` adds signal handling;
 * tests call this directly to run the real server in-process.
 */
export async function startSwitchboard(envVars: NodeJS.ProcessEnv = process.env, log?: Logger): Promise<Switchboard> {
  const env = readEnvConfig(envVars)
  log ??= createLogger(env.LOG_LEVEL)
  const configPath = env.SWITCHBOARD_CONFIG ?? EXAMPLE_CONFIG
  // The file is validated before anything starts; an active version in Postgres (set
  // through the config API) replaces it once the database is up.
  let fileConfig = await loadSwitchboardFile(configPath)
  let versions: ConfigVersions | undefined
  const config = new ConfigHolder(fileConfig, async () => {
    fileConfig = await loadSwitchboardFile(configPath)
    return versions ? (await versions.loadActive()).config : fileConfig
  }, log)
  log.info({ configPath }, 'switchboard config file loaded')

  const ffmpeg = configureFfmpeg(resolveFfmpeg(envVars))
  const encoders = await checkEncoders(ffmpeg)
  log.info({ ffmpeg: ffmpeg.ffmpegPath, source: ffmpeg.source, version: encoders.version }, 'ffmpeg ready')

  const stops: Array<() => Promise<void>> = []
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try { await stop() } catch (err) { log!.error({ err }, 'error while stopping a part') }
    }
    stops.length = 0
  }

  try {
    await mkdir(env.DATA_DIR, { recursive: true })
    await mkdir(env.SPOOL_DIR, { recursive: true })

    let embedded: EmbeddedDatabase | undefined
    let databaseUrl = env.DATABASE_URL
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(env.DATA_DIR, log)
      stops.push(() => embedded!.stop())
      databaseUrl = embedded.url
    }
    await migrate(databaseUrl, log)
    const pool = createPool(databaseUrl, log)
    stops.push(() => pool.end())
    if (env.SWITCHBOARD_ADMIN_TOKEN) await ensureBootstrapAdmin(pool, env.SWITCHBOARD_ADMIN_TOKEN)

    // CRM directory in memory (refreshed on import, also on other nodes via LISTEN/NOTIFY).
    const directory = new DirectoryStore({ pool, databaseUrl, log: log.child({ part: 'directory' }), config: () => config.current() })
    await directory.start()
    stops.push(() => directory.stop())

    versions = new ConfigVersions({ pool, databaseUrl, log: log.child({ part: 'config' }), fallback: () => fileConfig, directory: () => directory.current() })
    const active = await versions.loadActive()
    if (active.source === 'db') {
      config.set(active.config)
      log.info({ version: active.version }, 'active config version from Postgres in force')
    }
    versions.onChange((next, version) => { config.set(next); log.info({ version }, 'config version activated') })
    // activations on other nodes arrive by LISTEN/NOTIFY (issue 5)
    await versions.start(active.version)
    stops.push(() => versions!.stop())

    const store = createObjectStore(env, log)
    await store.init()
    log.info({ kind: store.kind }, 'object store ready')

    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const events = new EventBus((err, event) => log!.error({ err, event }, 'event listener failed'))
    // Webhooks (issue 14): events → Postgres outbox → signed deliveries; stopped after the calls (stops run in reverse).
    const webhooks = startWebhooks({ pool, events, log: log.child({ part: 'webhooks' }), config: () => config.current(), node: env.NODE_NAME, registry, env: envVars })
    stops.push(() => webhooks.stop())
    const dailyCsv = new DailyCsvExporter({ pool, log: log.child({ part: 'erp-csv' }), erp: () => config.current().erp, links: () => config.current().links, node: env.NODE_NAME })
    dailyCsv.start()
    stops.push(() => dailyCsv.stop())

    // Recordings: spool → transcode → object store, durable jobs in Postgres.
    const spool = new Spool(path.resolve(env.SPOOL_DIR))
    const pipelineCfg = config.current().recording.pipeline
    const pipeline = new RecordingPipeline(
      { pool, store, spool, events, log: log.child({ part: 'recordings' }), recording: () => config.current().recording, retention: () => config.current().retention },
      {
        concurrency: pipelineCfg.concurrency, quietSec: pipelineCfg.quietSec, scanIntervalSec: pipelineCfg.scanIntervalSec,
        maxRetryDelaySec: pipelineCfg.maxRetryDelaySec, warnFreePercent: pipelineCfg.spoolWarnFreePercent, criticalFreePercent: pipelineCfg.spoolCriticalFreePercent,
      },
      registry,
    )
    await pipeline.start()
    stops.push(() => pipeline.stop())

    // Call control: FreeSWITCH's socket app connects here, one CallSession per call.
    // The node id (name + instance) marks this process's callers and claims in Postgres.
    const presence = new PresenceStore(pool, log, events, { node: Acd.nodeIdFor(env.NODE_NAME) })
    await presence.load()
    // Before the first call: close the CDRs a crash of this node left open, free their agents.
    await closeInterruptedCalls(pool, env.NODE_NAME, presence, log.child({ part: 'recovery' }))
    const cdr = new CdrWriter(pool, log.child({ part: 'cdr' }))
    stops.push(async () => { await cdr.drain(5_000); cdr.stop() })
    // ACD: the waiting list and agent offers shared with every other node (Postgres); stopped after the calls.
    const acd = new Acd({
      pool, log: log.child({ part: 'acd' }), presence, config: () => config.current(), directory: () => directory.current(), events, node: env.NODE_NAME,
      ringable: (e) => endpointOf(e, { gateways: config.current().gateways, fmc: config.current().fmc }) !== null,
    })
    await acd.start()
    stops.push(() => acd.stop())
    const esl = new OutboundServer({ port: env.ESL_PORT, host: env.ESL_HOST, logger: log.child({ part: 'esl' }) })
    const calls = new CallService(esl, {
      log: log.child({ part: 'calls' }), pool, cdr, spool, recordings: pipeline, directory: () => directory.current(), presence,
      config: () => config.current(), clock: systemClock, node: env.NODE_NAME, events, acd,
      lookupUnknown: unknownCallerLookup(config.current(), () => directory.current(), log.child({ part: 'crm-lookup' })),
    }, registry)
    const eslAddr = await esl.listen()
    stops.push(() => calls.stop())

    // Calls Switchboard places itself (click-to-call, callbacks) go through FreeSWITCH's
    // inbound event socket when FS_ESL_HOST is set; it reconnects on its own. FreeSWITCH
    // dials the answered leg back to this node's ESL address (ESL_ADVERTISE_ADDR).
    const inbound = env.FS_ESL_HOST
      ? new InboundClient({ host: env.FS_ESL_HOST, port: env.FS_ESL_PORT, password: env.FS_ESL_PASSWORD, logger: log.child({ part: 'fs-inbound' }) })
      : null
    if (inbound) {
      inbound.start().then(() => log.info({ fs_esl: `${env.FS_ESL_HOST}:${env.FS_ESL_PORT}` }, 'FreeSWITCH inbound event socket connected'))
        .catch((err) => log.error({ err }, 'FreeSWITCH inbound event socket refused the login (FS_ESL_PASSWORD?): originating calls is off'))
      stops.push(() => inbound.stop())
    } else log.info('FS_ESL_HOST not set: click-to-call and callbacks answer 503')
    const wildcard = env.ESL_HOST === '0.0.0.0' || env.ESL_HOST === '::'
    if (inbound && wildcard && !env.ESL_ADVERTISE_ADDR) log.warn('ESL_HOST listens on all interfaces: set ESL_ADVERTISE_ADDR to the address FreeSWITCH reaches this node at (using 127.0.0.1)')
    const socketAddress = env.ESL_ADVERTISE_ADDR ?? `${wildcard ? '127.0.0.1' : env.ESL_HOST}:${eslAddr.port}`
    const outbound = new OutboundCalls({
      log: log.child({ part: 'originate' }), pool, events, presence, directory: () => directory.current(), config: () => config.current(),
      inbound, socketAddress: () => socketAddress,
    })
    const callbackWorker = new CallbackWorker({
      pool, log: log.child({ part: 'callbacks' }), config: () => config.current(), directory: () => directory.current(), presence, outbound,
      canOriginate: () => inbound?.connected === true, clock: systemClock, node: env.NODE_NAME,
    })
    callbackWorker.start()
    stops.push(() => callbackWorker.stop())
    // Call plans: uploaded lists dialled one call per ready agent; rows carry this instance's id (the ACD's) for crash recovery.
    const callPlanDialler = new CallPlanDialler({
      pool, log: log.child({ part: 'call-plans' }), config: () => config.current(), directory: () => directory.current(), presence, outbound,
      canOriginate: () => inbound?.connected === true, clock: systemClock, node: acd.nodeId, events,
    })
    callPlanDialler.start()
    stops.push(() => callPlanDialler.stop())

    // Retention: expired recordings leave the object store (rows kept as 'deleted'); holds are never touched.
    const sweeper = new RetentionSweeperRunner({ pool, store, log: log.child({ part: 'retention' }) }, { intervalSec: 3600, limit: 500 })
    sweeper.start()
    stops.push(() => sweeper.stop())

    // Screen pop (call events → agents' SSE streams) and the supervisor's live view + gauges.
    const screenPop = new ScreenPopHub({ events, pool, log: log.child({ part: 'screen-pop' }), config: () => config.current(), directory: () => directory.current() })
    screenPop.start()
    stops.push(async () => screenPop.stop())
    const live = new LiveStats({ pool, log: log.child({ part: 'live-stats' }), config: () => config.current(), events, registry })
    live.start()
    stops.push(async () => live.stop())

    const readiness: ReadinessCheck[] = [
      { name: 'postgres', check: async () => { await pool.query('SELECT 1'); return { ok: true } } },
      { name: 'object_store', check: async () => { await store.ping(); return { ok: true, detail: store.kind } } },
      {
        name: 'spool_disk',
        check: async () => {
          await pipeline.checkDisk()
          const d = pipeline.diskStatus()
          const detail = `${d.freePercent.toFixed(1)}% free (${d.level})${d.level === 'critical' ? ': optional recordings suspended' : ''}`
          return { ok: d.level !== 'critical', detail }
        },
      },
      {
        // Reported, but not configured is not "not ready": only click-to-call and callbacks need it.
        name: 'freeswitch_inbound',
        check: async () => inbound
          ? { ok: inbound.connected, detail: `${env.FS_ESL_HOST}:${env.FS_ESL_PORT} ${inbound.connected ? 'connected' : 'not connected'}` }
          : { ok: true, detail: 'not configured (FS_ESL_HOST unset): click-to-call and callbacks unavailable' },
      },
    ]

    const http = await buildHttpApp({
      log, pool, registry, readiness,
      plugins: [
        callsRoutes({ calls }),
        crmRoutes({ pool, log, config: () => config.current() }),
        configRoutes({ versions }),
        recordingsRoutes({ pool, store, log: log.child({ part: 'recordings-api' }) }),
        clientsRoutes({ pool, config: () => config.current(), directory: () => directory.current() }),
        auditRoutes({ pool }),
        agentsRoutes({ pool, presence, acd, directory: () => directory.current(), config: () => config.current() }),
        queuesRoutes({ acd, directory: () => directory.current(), config: () => config.current() }),
        sessionRoutes(),
        qaReviewRoutes({ pool }),
        consoleRoutes({ log: log.child({ part: 'console' }) }),
        screenPopRoutes({ hub: screenPop, pool, config: () => config.current(), directory: () => directory.current() }),
        statsRoutes({ pool, config: () => config.current(), live }),
        clickToCallRoutes({ outbound }),
        employeesRoutes({ directory: () => directory.current(), presence: (id) => presence.get(id), config: () => config.current() }),
        callbacksRoutes({ pool }),
        callPlansRoutes({ pool, log: log.child({ part: 'call-plans-api' }), config: () => config.current(), directory: () => directory.current(), onStart: () => callPlanDialler.wake() }),
        webhooksRoutes({ pool, store, log: log.child({ part: 'webhooks-api' }), signer: webhooks.signer, onRedeliver: () => webhooks.worker.wake() }),
        erasureRoutes({ pool, store, log: log.child({ part: 'erasure' }) }),
        exportsRoutes({ pool, config: () => config.current() }),
      ],
    })
    const httpUrl = await http.listen({ port: env.PORT, host: env.HOST })
    stops.push(() => http.close())
    log.info({ url: httpUrl, esl_port: eslAddr.port }, 'HTTP listening')

    return { env, log, config, pool, store, pipeline, presence, calls, http, httpUrl, eslPort: eslAddr.port, registry, events, screenPop, live, inbound, outbound, callbackWorker, callPlanDialler, stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}
