/**
 * The routing / IVR / queue document, versioned in `config_versions`.
 *
 *  - `propose` validates a document (schema + referential checks, and prompt files when a
 *    prompts dir is configured), dry-runs it against the last N recorded inbound calls
 *    (`decideRoute` with the active config and with the proposal, everyone treated as
 *    ready so that only the configuration differs) and stores it, inactive.
 *  - `activate` makes a version the active one; `rollback` returns to the version that was
 *    active before the current one (repeated rollbacks walk further back).
 *  - Every activation / rollback is written to `audit_log` (who, when, which top-level
 *    paths changed) and announced with `NOTIFY switchboard_config, '<version>'`.
 *  - `loadActive` is what the server uses at start-up: the active version, or the config
 *    file when the table has none.
 *  - `start(version)` follows activations made on other nodes: it LISTENs on
 *    `switchboard_config` on a dedicated connection (the DirectoryStore's pattern) and,
 *    on a NOTIFY, reads the active version and hands it to the `onChange` listeners —
 *    once per version, whichever node activated it. Notifications during a refresh are
 *    coalesced into one more refresh; a lost connection reconnects with capped backoff
 *    and refreshes unconditionally (NOTIFYs sent meanwhile are lost).
 */
import { PgListener } from '../db/listener.ts'
import { withTransaction, type Pool, type PoolClient } from '../db/pool.ts'
import { audit } from '../recordings/access/audit.ts'
import type { Logger } from '../log.ts'
import { ConfigError, NotFoundError, SwitchboardError } from '../errors.ts'
import { missingPromptFiles, validateSwitchboardFile, type SwitchboardFile } from './switchboard-file.ts'
import { buildDirectory, type DirectorySnapshot } from '../crm/directory.ts'
import { normalizePhone } from '../crm/phone.ts'
import { decideRoute } from '../routing/decide.ts'
import { fixedClock, type RouteDecision } from '../routing/types.ts'

export const CONFIG_CHANNEL = 'switchboard_config'
const ACTIVATION_LOCK = 5_150_002

export class ConfigConflictError extends SwitchboardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('config_conflict', message, 409, details)
  }
}

export interface ConfigVersionsOptions {
  pool: Pool
  log: Logger
  /** The config file: the baseline when no version is active, and the start-up fallback. */
  fallback?: () => SwitchboardFile
  /** The directory the dry run identifies callers with (default: an empty one). */
  directory?: () => DirectorySnapshot
  /** When set, every prompt file a proposal names must exist here. */
  promptsDir?: string
  /** How many recent inbound calls the dry run replays (default 1,000). */
  dryRunCalls?: number
  /** Connection string for the LISTEN connection (`start`); without it other nodes' activations are seen at restart only. */
  databaseUrl?: string
  /** Reconnect backoff bounds for the listener (default 250 ms … 10 s). */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export interface VersionInfo {
  version: number
  author: string
  comment: string | null
  createdAt: string
  active: boolean
  activatedAt: string | null
  activatedBy: string | null
}

export interface DryRunExample {
  callUuid: string
  caller: string | null
  did: string
  startedAt: string
  before: string
  after: string
  reasons: string[]
}

export interface DryRunReport {
  /** 'active' version, the config 'file', or 'none' (nothing to compare with). */
  baseline: 'active' | 'file' | 'none'
  baselineVersion: number | null
  calls: number
  changed: number
  unchanged: number
  /** Calls the new config could not decide (an exception in decideRoute). */
  errors: number
  /** 'queue:sales → queue:callcentre' → count, most frequent first. */
  changes: Array<{ before: string; after: string; count: number }>
  examples: DryRunExample[]
}

export interface ProposeResult {
  version: number
  valid: true
  /** Paths that differ from the active (or file) config, e.g. 'routing.segmentQueues'. */
  changedPaths: string[]
  dryRun: DryRunReport
}

export interface ActivationResult {
  version: number
  previousVersion: number | null
  changedPaths: string[]
  /** False when the version was already active (nothing done, nothing audited). */
  changed: boolean
}

type ChangeListener = (config: SwitchboardFile, version: number) => void

interface Row {
  version: number; document: unknown; author: string; comment: string | null; created_at: Date
  active: boolean; activated_at: Date | null; activated_by: string | null
}

const info = (r: Row): VersionInfo => ({
  version: r.version, author: r.author, comment: r.comment, createdAt: r.created_at.toISOString(), active: r.active,
  activatedAt: r.activated_at?.toISOString() ?? null, activatedBy: r.activated_by,
})

export class ConfigVersions {
  private listeners: ChangeListener[] = []
  /** The version this node runs (null: the file); listeners fire only when it changes. */
  private applied: number | null = null
  private listener: PgListener | null = null
  private stopped = true
  private refreshing: Promise<void> | null = null
  private again = false

  constructor(private readonly opts: ConfigVersionsOptions) {}

  onChange(listener: ChangeListener): void { this.listeners.push(listener) }

  /**
   * Follow activations made on any node. `runningVersion` is what this node loaded at
   * start-up (`loadActive().version`); a version activated between that read and the
   * LISTEN is caught by the refresh that follows the connect.
   */
  async start(runningVersion: number | null): Promise<void> {
    this.applied = runningVersion
    this.stopped = false
    if (!this.opts.databaseUrl) return
    this.listener = new PgListener({
      databaseUrl: this.opts.databaseUrl, channel: CONFIG_CHANNEL, name: 'config', log: this.opts.log,
      minBackoffMs: this.opts.minBackoffMs, maxBackoffMs: this.opts.maxBackoffMs,
      onNotify: (payload) => {
        // the payload is the version: our own activation (already applied) needs no read
        if (payload !== undefined && Number(payload) === this.applied) return
        this.refresh(`notify:${payload ?? ''}`).catch((err) => this.opts.log.error({ err }, 'config refresh after NOTIFY failed; the running config stays'))
      },
      // whatever was activated before the LISTEN (start-up window, or while disconnected)
      onConnected: () => { this.refresh('listen').catch((err) => this.opts.log.error({ err }, 'config refresh after (re)connect failed')) },
    })
    await this.listener.start()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.listener?.stop()
    await this.refreshing?.catch(() => undefined)
  }

  /** True while the LISTEN connection is up (health checks, tests). */
  get listening(): boolean { return this.listener?.listening ?? false }

  /** The config version this node has applied (null: the file). */
  get runningVersion(): number | null { return this.applied }

  /**
   * Read the active version and apply it when it is not the one running here (coalesced:
   * a call during a refresh makes it run once more). Resolves when that pass is done.
   */
  refresh(trigger = 'manual'): Promise<void> {
    if (this.refreshing) { this.again = true; return this.refreshing }
    const run = async () => {
      try {
        do {
          this.again = false
          const a = await this.active()
          if (a && a.version !== this.applied) this.apply(a.config, a.version, trigger)
        } while (this.again && !this.stopped)
      } finally {
        this.refreshing = null
      }
    }
    this.refreshing = run()
    return this.refreshing
  }

  private apply(config: SwitchboardFile, version: number, trigger: string): void {
    if (version === this.applied) return
    this.applied = version
    this.opts.log.info({ version, trigger }, 'config version in force')
    for (const l of this.listeners) {
      try { l(config, version) } catch (err) { this.opts.log.error({ err }, 'config change listener failed') }
    }
  }

  /** Schema + referential validation (+ prompt files); throws ConfigError naming the field. */
  async validate(doc: unknown): Promise<SwitchboardFile> {
    const cfg = validateSwitchboardFile(doc)
    if (this.opts.promptsDir !== undefined) {
      const missing = await missingPromptFiles(cfg, this.opts.promptsDir)
      if (missing.length > 0) throw new ConfigError(`${missing[0].path}: ${missing[0].message}`, { problems: missing })
    }
    return cfg
  }

  /** The active version, or null when none was ever activated. */
  async active(): Promise<(VersionInfo & { config: SwitchboardFile }) | null> {
    const r = await this.opts.pool.query<Row>('SELECT * FROM config_versions WHERE active')
    const row = r.rows[0]
    if (!row) return null
    return { ...info(row), config: validateSwitchboardFile(row.document) }
  }

  /** For start-up: the active version, else the config file. */
  async loadActive(): Promise<{ version: number | null; source: 'db' | 'file'; config: SwitchboardFile }> {
    const a = await this.active()
    if (a) return { version: a.version, source: 'db', config: a.config }
    if (!this.opts.fallback) throw new ConfigError('no active config version and no config file to fall back to')
    return { version: null, source: 'file', config: this.opts.fallback() }
  }

  async list(limit = 100): Promise<VersionInfo[]> {
    const r = await this.opts.pool.query<Row>('SELECT * FROM config_versions ORDER BY version DESC LIMIT $1', [limit])
    return r.rows.map(info)
  }

  async get(version: number): Promise<VersionInfo & { document: unknown; dryRun: DryRunReport | null }> {
    const r = await this.opts.pool.query<Row & { dry_run: DryRunReport | null }>('SELECT * FROM config_versions WHERE version = $1', [version])
    const row = r.rows[0]
    if (!row) throw new NotFoundError('config version', String(version))
    return { ...info(row), document: row.document, dryRun: row.dry_run }
  }

  /** Validate, dry-run against recent calls, store as an inactive version. */
  async propose(doc: unknown, author: string, comment?: string): Promise<ProposeResult> {
    const next = await this.validate(doc)
    const base = await this.baseline()
    const dryRun = await this.dryRun(base.config, next, base.kind, base.version)
    const changedPaths = base.config ? diffPaths(base.config, next) : ['(all)']
    const r = await this.opts.pool.query<{ version: number }>(
      'INSERT INTO config_versions (document, author, comment, dry_run) VALUES ($1, $2, $3, $4) RETURNING version',
      [JSON.stringify(next), author, comment ?? null, JSON.stringify({ ...dryRun, changedPaths })])
    const version = r.rows[0].version
    this.opts.log.info({ version, author, changedPaths, changed: dryRun.changed, calls: dryRun.calls }, 'config version proposed')
    return { version, valid: true, changedPaths, dryRun }
  }

  /** Replay recent inbound calls through both configs and count changed decisions. */
  async dryRun(before: SwitchboardFile | null, after: SwitchboardFile, baseline: DryRunReport['baseline'] = 'none', baselineVersion: number | null = null): Promise<DryRunReport> {
    const report: DryRunReport = { baseline, baselineVersion, calls: 0, changed: 0, unchanged: 0, errors: 0, changes: [], examples: [] }
    const calls = await this.opts.pool.query<{ uuid: string; caller: string | null; did: string; started_at: Date }>(
      `SELECT uuid, caller, did, started_at FROM calls
        WHERE direction = 'inbound' AND did IS NOT NULL ORDER BY started_at DESC LIMIT $1`, [this.opts.dryRunCalls ?? 1000])
    const directory = this.opts.directory?.() ?? buildDirectory({ clients: [] }, { defaultRegion: after.defaultRegion })
    const ready = () => 'ready' as const
    const counts = new Map<string, { before: string; after: string; count: number }>()
    for (const c of calls.rows) {
      report.calls++
      const facts = { caller: normalizePhone(c.caller, after.defaultRegion), did: c.did, time: c.started_at }
      const clock = fixedClock(c.started_at)
      let a: string
      let decision: RouteDecision
      try {
        decision = decideRoute(facts, directory, ready, clock, after)
        a = signature(decision)
      } catch (err) {
        report.errors++
        this.opts.log.warn({ err, call: c.uuid }, 'dry run: the proposed config could not decide a call')
        continue
      }
      let b = '(none)'
      if (before) {
        try { b = signature(decideRoute(facts, directory, ready, clock, before)) } catch { b = '(error)' }
      }
      if (before && a === b) { report.unchanged++; continue }
      report.changed++
      const key = `${b} → ${a}`
      const entry = counts.get(key) ?? { before: b, after: a, count: 0 }
      entry.count++
      counts.set(key, entry)
      if (report.examples.length < 10) {
        report.examples.push({ callUuid: c.uuid, caller: c.caller, did: c.did, startedAt: c.started_at.toISOString(), before: b, after: a, reasons: decision.reasons })
      }
    }
    report.changes = [...counts.values()].sort((x, y) => y.count - x.count).slice(0, 50)
    return report
  }

  async activate(version: number, author: string, meta: { ip?: string } = {}): Promise<ActivationResult> {
    const result = await this.transaction(async (client) => {
      const target = await client.query<Row>('SELECT * FROM config_versions WHERE version = $1', [version])
      if (!target.rows[0]) throw new NotFoundError('config version', String(version))
      const cur = await client.query<Row>('SELECT * FROM config_versions WHERE active')
      const current = cur.rows[0]
      if (current?.version === version) return { version, previousVersion: version, changedPaths: [], changed: false, config: null }
      return this.switchTo(client, target.rows[0], current ?? null, current?.version ?? null, 'activate', author, meta)
    })
    return this.announce(result)
  }

  /** Back to the version active before the current one. 409 when there is none. */
  async rollback(author: string, meta: { ip?: string } = {}): Promise<ActivationResult> {
    const result = await this.transaction(async (client) => {
      const last = await client.query<{ id: number; version: number; previous_version: number | null }>(
        'SELECT id, version, previous_version FROM config_activations ORDER BY id DESC LIMIT 1')
      const head = last.rows[0]
      if (!head) throw new ConfigConflictError('no config version was ever activated: nothing to roll back')
      if (head.previous_version === null) throw new ConfigConflictError(`version ${head.version} is the first activated version: nothing to roll back to`)
      // The rolled-back-to version's own predecessor, so a second rollback goes further back.
      const before = await client.query<{ previous_version: number | null }>(
        'SELECT previous_version FROM config_activations WHERE version = $1 AND id < $2 ORDER BY id DESC LIMIT 1', [head.previous_version, head.id])
      const target = await client.query<Row>('SELECT * FROM config_versions WHERE version = $1', [head.previous_version])
      const cur = await client.query<Row>('SELECT * FROM config_versions WHERE active')
      return this.switchTo(client, target.rows[0], cur.rows[0] ?? null, before.rows[0]?.previous_version ?? null, 'rollback', author, meta)
    })
    return this.announce(result)
  }

  // ------------------------------------------------------------ internals

  private async baseline(): Promise<{ config: SwitchboardFile | null; kind: DryRunReport['baseline']; version: number | null }> {
    const a = await this.active()
    if (a) return { config: a.config, kind: 'active', version: a.version }
    if (this.opts.fallback) return { config: this.opts.fallback(), kind: 'file', version: null }
    return { config: null, kind: 'none', version: null }
  }

  /** One activation at a time across every node: the transaction holds an advisory lock. */
  private transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.opts.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACTIVATION_LOCK])
      return fn(client)
    })
  }

  private async switchTo(
    client: PoolClient, target: Row, current: Row | null, previousForHistory: number | null,
    kind: 'activate' | 'rollback', author: string, meta: { ip?: string },
  ): Promise<ActivationResult & { config: SwitchboardFile | null }> {
    let config: SwitchboardFile
    try {
      config = await this.validate(target.document)
    } catch (err) {
      // Stored versions were valid when proposed; the schema or the prompts may have changed since.
      if (err instanceof ConfigError) throw new ConfigError(`version ${target.version} is no longer valid: ${err.message}`, err.details)
      throw err
    }
    const before = current ? (current.document as SwitchboardFile) : this.opts.fallback?.() ?? null
    const changedPaths = before ? diffPaths(before, config) : ['(all)']
    await client.query('UPDATE config_versions SET active = false WHERE active')
    await client.query('UPDATE config_versions SET active = true, activated_at = now(), activated_by = $2 WHERE version = $1', [target.version, author])
    await client.query('INSERT INTO config_activations (version, previous_version, kind, actor) VALUES ($1, $2, $3, $4)',
      [target.version, kind === 'activate' ? current?.version ?? null : previousForHistory, kind, author])
    // Through the hash chain like every other audit entry (a direct INSERT would break verification).
    await audit(client, {
      actor: author, action: `config.${kind}`, subject: `config:${target.version}`, ip: meta.ip ?? null,
      details: { version: target.version, previousVersion: current?.version ?? null, changedPaths },
    })
    await client.query('SELECT pg_notify($1, $2)', [CONFIG_CHANNEL, String(target.version)])
    return { version: target.version, previousVersion: current?.version ?? null, changedPaths, changed: true, config }
  }

  private announce(r: ActivationResult & { config: SwitchboardFile | null }): ActivationResult {
    const { config, ...result } = r
    if (config && result.changed) {
      this.opts.log.info({ version: result.version, previous: result.previousVersion, changedPaths: result.changedPaths }, 'config version activated')
      this.apply(config, result.version, 'local')
    }
    return result
  }
}

/** A short, comparable description of a decision: what happens to the call. */
export function signature(d: RouteDecision): string {
  switch (d.kind) {
    case 'queue': return `queue:${d.queueId} p${d.priority}`
    case 'ivr': return `ivr:${d.menuId}`
    case 'direct': return `direct:${d.targets.map((t) => `${t.role}=${t.employeeId}`).join(',')} then queue:${d.fallbackQueueId}`
    case 'after-hours': return `after-hours:${d.prompt}${d.createCallback ? ' +callback' : ''}`
    case 'reject': return `reject:${d.reason}`
  }
}

/** Paths (two levels deep) whose JSON differs: 'queues', 'routing.segmentQueues', 'dids'. */
export function diffPaths(a: unknown, b: unknown, prefix = '', depth = 2): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (depth === 0 || !isObj(a) || !isObj(b)) return canonical(a) === canonical(b) ? [] : [prefix || '(root)']
  const out: string[] = []
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const p = prefix ? `${prefix}.${k}` : k
    if (canonical(a[k]) === canonical(b[k])) continue
    out.push(...diffPaths(a[k], b[k], p, depth - 1))
  }
  return out
}

/** JSON with object keys sorted (jsonb does not keep key order). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x
    const o = x as Record<string, unknown>
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]))
  }) ?? 'undefined'
}
