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
import { buildHttpApp } from './http/app.ts'
import type { ReadinessCheck } from './http/plugins/health.ts'
import { ensureBootstrapAdmin } from './http/auth/tokens.ts'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const EXAMPLE_CONFIG = path.join(PROJECT_ROOT, 'config', 'switchboard.example.yaml')

export interface Switchboard {
  env: EnvConfig
  log: Logger
  config: ConfigHolder<SwitchboardFile>
  pool: Pool
  store: ObjectStore
  http: FastifyInstance
  httpUrl: string
  registry: Registry
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
  const config = new ConfigHolder(await loadSwitchboardFile(configPath), () => loadSwitchboardFile(configPath), log)
  log.info({ configPath }, 'switchboard config loaded')

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

    const store = createObjectStore(env, log)
    await store.init()
    log.info({ kind: store.kind }, 'object store ready')

    const registry = new Registry()
    collectDefaultMetrics({ register: registry })

    const readiness: ReadinessCheck[] = [
      { name: 'postgres', check: async () => { await pool.query('SELECT 1'); return { ok: true } } },
      { name: 'object_store', check: async () => { await store.ping(); return { ok: true, detail: store.kind } } },
    ]

    if (env.SWITCHBOARD_ADMIN_TOKEN) await ensureBootstrapAdmin(pool, env.SWITCHBOARD_ADMIN_TOKEN)
    const http = await buildHttpApp({ log, pool, registry, readiness })
    const httpUrl = await http.listen({ port: env.PORT, host: env.HOST })
    stops.push(() => http.close())
    log.info({ url: httpUrl }, 'HTTP listening')

    return { env, log, config, pool, store, http, httpUrl, registry, stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}
