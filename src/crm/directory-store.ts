/**
 * The directory snapshot every call reads, loaded from Postgres and kept fresh.
 *
 * `load()` reads employees, clients and phones in one read-only REPEATABLE READ
 * transaction (a consistent picture even while an import runs), streaming clients and
 * phones through server-side cursors in pages of `pageSize` rows, and builds an immutable
 * DirectorySnapshot (compact phone index). The config file's groups and offices go in too.
 *
 * `start()` loads once and then LISTENs on `switchboard_directory` on a dedicated
 * connection: an import on any node NOTIFYs, every node reloads. Notifications arriving
 * during a load are coalesced into one more load. When Postgres goes away the listener
 * reconnects with capped exponential backoff and reloads once it is back (notifications
 * sent while it was away are lost, so the reload is unconditional). The previous snapshot
 * keeps serving calls throughout; a failed load is logged and retried on the next signal.
 */
import { PgListener } from '../db/listener.ts'
import { StringDecoder } from 'node:string_decoder'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import { to as copyTo } from 'pg-copy-streams'
import { buildDirectory, DirectorySnapshot, type Client, type CounterpartyKind, type Employee, type EmployeeRole, type Group, type OfficeRef, type Segment } from './directory.ts'
import { PhoneIndex, type PhoneEntry } from './phone-index.ts'
import { DIRECTORY_CHANNEL } from './import.ts'

export interface DirectoryStoreOptions {
  pool: Pool
  /** Connection string for the dedicated LISTEN connection (the pool's own URL). */
  databaseUrl: string
  log: Logger
  /** The current switchboard config: defaultRegion, groups and offices. */
  config: () => SwitchboardFile
  /** Rows per cursor FETCH (default 50,000). */
  pageSize?: number
  /** Reconnect backoff bounds for the listener (default 250 ms … 10 s). */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export interface LoadStats {
  clients: number
  phones: number
  employees: number
  ms: number
  trigger: string
}

type Listener = (snapshot: DirectorySnapshot, stats: LoadStats) => void

export class DirectoryStore {
  private snapshot: DirectorySnapshot
  private listeners: Listener[] = []
  private listener: PgListener | null = null
  private stopped = true
  private loading: Promise<void> | null = null
  private again: string | null = null
  private lastStats: LoadStats | null = null
  private loads = 0

  constructor(private readonly opts: DirectoryStoreOptions) {
    const cfg = opts.config()
    this.snapshot = buildDirectory({ clients: [], groups: cfg.groups, offices: cfg.offices }, { defaultRegion: cfg.defaultRegion })
  }

  /** The snapshot calls use right now (empty until the first load). */
  current(): DirectorySnapshot { return this.snapshot }

  /** Figures of the last successful load. */
  stats(): LoadStats | null { return this.lastStats }

  /** Number of completed loads (tests and metrics). */
  get loadCount(): number { return this.loads }

  /** Called after every successful load with the new snapshot. */
  onChange(listener: Listener): void { this.listeners.push(listener) }

  /** First load, then follow NOTIFYs. Throws when the first load fails. */
  async start(): Promise<void> {
    this.stopped = false
    await this.reload('start')
    this.listener = new PgListener({
      databaseUrl: this.opts.databaseUrl, channel: DIRECTORY_CHANNEL, name: 'directory', log: this.opts.log,
      minBackoffMs: this.opts.minBackoffMs, maxBackoffMs: this.opts.maxBackoffMs,
      onNotify: (payload) => {
        this.reload(`notify:${payload ?? ''}`).catch((err) => this.opts.log.error({ err }, 'directory reload after NOTIFY failed; the previous snapshot stays'))
      },
      onConnected: (reconnected) => {
        // Whatever was notified while we were away is lost: reload unconditionally.
        if (reconnected) this.reload('reconnect').catch((err) => this.opts.log.error({ err }, 'directory reload after reconnect failed'))
      },
    })
    await this.listener.start()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.listener?.stop()
    if (this.loading) await this.loading.catch(() => undefined)
  }

  /**
   * Load a new snapshot now (coalesced: a request during a load runs one more load after
   * it). Resolves when a load that started after this call has finished.
   */
  reload(trigger = 'manual'): Promise<void> {
    if (this.loading) {
      this.again = trigger // the running load makes one more pass before it resolves
      return this.loading
    }
    const run = async (): Promise<void> => {
      let t: string | null = trigger
      try {
        while (t !== null) {
          this.again = null
          const { snapshot, stats } = await this.load(t)
          this.snapshot = snapshot
          this.lastStats = stats
          this.loads++
          this.opts.log.info(stats, 'directory loaded')
          for (const l of this.listeners) {
            try { l(snapshot, stats) } catch (err) { this.opts.log.error({ err }, 'directory change listener failed') }
          }
          t = this.again
        }
      } finally {
        this.loading = null
      }
    }
    this.loading = run()
    return this.loading
  }

  /** Read everything into a new snapshot (does not swap it in). */
  async load(trigger = 'manual'): Promise<{ snapshot: DirectorySnapshot; stats: LoadStats }> {
    const t0 = performance.now()
    const cfg = this.opts.config()
    const pageSize = this.opts.pageSize ?? 50_000
    const unidentified: Segment = cfg.routing.unidentifiedSegment === 'none' ? 'C' : cfg.routing.unidentifiedSegment
    const client = await this.opts.pool.connect()
    const clients = new Map<string, Client>()
    const employees: Employee[] = []
    const entries: PhoneEntry[] = []
    let phones = 0
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const emps = await client.query<{
        id: string; name: string; role: EmployeeRole; group_id: string | null; extension: string | null
        mobile: string | null; office_id: string | null; supervisor_id: string | null
      }>('SELECT id, name, role, group_id, extension, mobile, office_id, supervisor_id FROM employees WHERE active ORDER BY id')
      for (const e of emps.rows) {
        const emp: Employee = { id: e.id, name: e.name, role: e.role }
        if (e.group_id !== null) emp.groupId = e.group_id
        if (e.extension !== null) emp.extension = e.extension
        if (e.mobile !== null) emp.mobile = e.mobile
        if (e.office_id !== null) emp.officeId = e.office_id
        if (e.supervisor_id !== null) emp.supervisorId = e.supervisor_id
        employees.push(emp)
      }
      // Rows as arrays (no per-row object with column names): faster and lighter for millions.
      await client.query(`DECLARE dir_clients NO SCROLL CURSOR FOR
        SELECT id, name, inn, segment, kind, region, tz, assigned_manager_id,
               CASE WHEN attributes = '{}'::jsonb THEN NULL ELSE attributes::text END
          FROM clients`)
      for (;;) {
        const page = await client.query({ text: `FETCH ${pageSize} FROM dir_clients`, rowMode: 'array' })
        for (const r of page.rows as Array<Array<string | null>>) {
          const c: Client = { id: r[0] as string, name: r[1] as string, segment: (r[3] as Segment | null) ?? unidentified, kind: r[4] as CounterpartyKind }
          if (r[2] !== null) c.inn = r[2]
          if (r[5] !== null) c.region = r[5]
          if (r[6] !== null) c.tz = r[6]
          if (r[7] !== null) c.assignedManagerId = r[7]
          if (r[8] !== null) c.attributes = JSON.parse(r[8]) as Record<string, unknown>
          clients.set(c.id, c)
        }
        if (page.rows.length < pageSize) break
      }
      await client.query('CLOSE dir_clients')
      // Phones: the bulk of the rows, two short columns — streamed with COPY (no per-row
      // result objects) straight into the phone index entries. They are E.164 already
      // (normalised by the import); PhoneIndex.build counts anything else as rejected.
      const stream = client.query(copyTo('COPY (SELECT phone, client_id FROM client_phones) TO STDOUT'))
      const utf8 = new StringDecoder('utf8') // a chunk may end inside a character
      let carry = ''
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const text = carry + utf8.write(chunk)
        let pos = 0
        for (;;) {
          const nl = text.indexOf('\n', pos)
          if (nl < 0) break
          const tab = text.indexOf('\t', pos)
          const e164 = text.slice(pos, tab)
          let clientId = text.slice(tab + 1, nl)
          if (clientId.includes('\\')) clientId = unescapeCopy(clientId)
          pos = nl + 1
          if (clients.has(clientId)) { entries.push({ e164, clientId }); phones++ }
        }
        carry = text.slice(pos)
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      client.release()
    }
    const snapshot = assemble(clients, entries, employees, cfg)
    return { snapshot, stats: { clients: clients.size, phones, employees: employees.length, ms: Math.round(performance.now() - t0), trigger } }
  }

  /** True while the LISTEN connection is up (health checks, tests). */
  get listening(): boolean { return this.listener?.listening ?? false }
}

/** COPY text format escapes (`\\`, `\t`, `\n`, `\r`, …) back to characters. */
function unescapeCopy(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'b' ? '\b' : c === 'f' ? '\f' : c === 'v' ? '\v' : c))
}

/**
 * The snapshot from loaded rows in one pass: clients as read (no copies), the phone index
 * built straight from (E.164, client) pairs; employees, groups and offices (small) go
 * through `buildDirectory`, which also normalises mobiles and checks the references.
 */
function assemble(clients: Map<string, Client>, entries: PhoneEntry[], employees: Employee[], cfg: SwitchboardFile): DirectorySnapshot {
  const base = buildDirectory({ clients: [], employees, groups: cfg.groups, offices: cfg.offices }, { defaultRegion: cfg.defaultRegion })
  const phones = PhoneIndex.build(entries)
  const warnings = [...base.stats.warnings]
  for (const c of clients.values()) {
    if (c.assignedManagerId !== undefined && !base.employees.has(c.assignedManagerId) && warnings.length < 1000) {
      warnings.push(`client ${c.id}: assigned manager ${c.assignedManagerId} is not in the directory`)
    }
  }
  const phoneStats = phones.stats()
  return new DirectorySnapshot({
    clients, phones,
    employees: base.employees as Map<string, Employee>,
    groups: base.groups as Map<string, Group>,
    offices: base.offices as Map<string, OfficeRef>,
    builtAt: new Date(),
    stats: {
      clients: clients.size, employees: base.employees.size, groups: base.groups.size, phones: phoneStats,
      rejectedPhones: base.stats.rejectedPhones, rejectedPhoneCount: base.stats.rejectedPhoneCount + phoneStats.rejected, warnings,
    },
  })
}
