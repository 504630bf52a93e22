/**
 * The in-memory directory snapshot routing reads: clients and their phones (through the
 * compact PhoneIndex), employees by id / extension / mobile, groups and offices.
 *
 * A snapshot is immutable once built (the nightly anonymised import builds a new one and
 * swaps it in); the only mutation is `learnPhone`, used when the live lookup identifies a
 * number the import did not have. Raw phone strings are normalised here, at the edge.
 */
import { normalizePhone, isE164 } from './phone.ts'
import { PhoneIndex, type PhoneEntry, type PhoneIndexStats } from './phone-index.ts'

export type Segment = 'A' | 'B' | 'C'
export type CounterpartyKind = 'client' | 'supplier' | 'partner' | 'other'
export type EmployeeRole = 'agent' | 'manager' | 'supervisor' | 'secretary'

export interface Client {
  id: string
  name: string
  inn?: string
  segment: Segment
  kind: CounterpartyKind
  region?: string
  tz?: string
  assignedManagerId?: string
  attributes?: Record<string, unknown>
}

export interface ClientInput extends Client {
  /** Raw or E.164 numbers; normalised with the directory's default region. */
  phones: string[]
}

export interface Employee {
  id: string
  name: string
  role: EmployeeRole
  groupId?: string
  extension?: string
  /** E.164 once in the snapshot. */
  mobile?: string
  officeId?: string
  supervisorId?: string
}

export interface Group {
  id: string
  name: string
  supervisorId?: string
  secretaryId?: string
  officeId?: string
}

export interface OfficeRef {
  id: string
  name: string
  tz: string
}

export interface DirectoryInput {
  clients: Iterable<ClientInput>
  employees?: Iterable<Employee>
  /** Usually the `groups` of the switchboard config file. */
  groups?: Iterable<Group>
  offices?: Iterable<OfficeRef>
}

export type CallerIdentity =
  | { kind: 'client'; client: Client; source: 'directory' | 'live' }
  | { kind: 'employee'; employee: Employee }
  | { kind: 'unidentified' }

export interface DirectoryStats {
  clients: number
  employees: number
  groups: number
  phones: PhoneIndexStats
  /** First 100 phone strings that could not be normalised, for the import report. */
  rejectedPhones: Array<{ owner: string; raw: string }>
  rejectedPhoneCount: number
  warnings: string[]
}

export class DirectorySnapshot {
  readonly clients: ReadonlyMap<string, Client>
  readonly employees: ReadonlyMap<string, Employee>
  readonly employeesByExtension: ReadonlyMap<string, Employee>
  readonly employeesByMobile: ReadonlyMap<string, Employee>
  readonly groups: ReadonlyMap<string, Group>
  readonly offices: ReadonlyMap<string, OfficeRef>
  readonly builtAt: Date
  readonly stats: DirectoryStats
  private phones: PhoneIndex
  private members: Map<string, Employee[]>

  constructor(parts: {
    clients: Map<string, Client>; phones: PhoneIndex; employees: Map<string, Employee>
    groups: Map<string, Group>; offices: Map<string, OfficeRef>; builtAt: Date; stats: DirectoryStats
  }) {
    this.clients = parts.clients
    this.phones = parts.phones
    this.employees = parts.employees
    this.groups = parts.groups
    this.offices = parts.offices
    this.builtAt = parts.builtAt
    this.stats = parts.stats
    const byExt = new Map<string, Employee>()
    const byMobile = new Map<string, Employee>()
    this.members = new Map()
    for (const e of parts.employees.values()) {
      if (e.extension) byExt.set(e.extension, e)
      if (e.mobile) byMobile.set(e.mobile, e)
      if (e.groupId) {
        const list = this.members.get(e.groupId) ?? []
        list.push(e)
        this.members.set(e.groupId, list)
      }
    }
    this.employeesByExtension = byExt
    this.employeesByMobile = byMobile
  }

  /** Client id for an E.164 number (no normalisation here: numbers arrive normalised). */
  clientIdByPhone(e164: string): string | undefined {
    return this.phones.lookup(e164)
  }

  clientByPhone(e164: string): Client | undefined {
    const id = this.phones.lookup(e164)
    return id === undefined ? undefined : this.clients.get(id)
  }

  /** Who is calling: an employee's mobile, a known client's phone, or nobody we know. */
  identify(e164: string | null): CallerIdentity {
    if (e164 === null) return { kind: 'unidentified' }
    const emp = this.employeesByMobile.get(e164)
    if (emp) return { kind: 'employee', employee: emp }
    const client = this.clientByPhone(e164)
    if (client) return { kind: 'client', client, source: 'directory' }
    return { kind: 'unidentified' }
  }

  /** Employees of a group, in directory order. */
  groupMembers(groupId: string): readonly Employee[] {
    return this.members.get(groupId) ?? []
  }

  /**
   * Remember a number the live lookup identified, so the next call is answered from memory.
   * The client record is added if the snapshot did not have it.
   */
  learnPhone(e164: string, client: Client): boolean {
    if (!isE164(e164)) return false
    if (!this.clients.has(client.id)) (this.clients as Map<string, Client>).set(client.id, client)
    return this.phones.upsert(e164, client.id)
  }

  phoneIndexStats(): PhoneIndexStats {
    return this.phones.stats()
  }
}

/** Build a snapshot from plain arrays (the import's output, or test fixtures). */
export function buildDirectory(input: DirectoryInput, opts: { defaultRegion: string; now?: Date }): DirectorySnapshot {
  const clients = new Map<string, Client>()
  const rejectedPhones: Array<{ owner: string; raw: string }> = []
  let rejectedPhoneCount = 0
  const warnings: string[] = []
  const reject = (owner: string, raw: string) => {
    rejectedPhoneCount++
    if (rejectedPhones.length < 100) rejectedPhones.push({ owner, raw })
  }
  const entries: PhoneEntry[] = []
  for (const c of input.clients) {
    const { phones, ...client } = c
    if (clients.has(client.id)) warnings.push(`client ${client.id} listed twice; the later record wins`)
    clients.set(client.id, client)
    for (const raw of phones) {
      const e164 = normalizePhone(raw, opts.defaultRegion)
      if (e164 === null) reject(client.id, raw)
      else entries.push({ e164, clientId: client.id })
    }
  }
  const phones = PhoneIndex.build(entries)

  const groups = new Map<string, Group>()
  for (const g of input.groups ?? []) groups.set(g.id, { ...g })
  const offices = new Map<string, OfficeRef>()
  for (const o of input.offices ?? []) offices.set(o.id, { id: o.id, name: o.name, tz: o.tz })

  const employees = new Map<string, Employee>()
  for (const e of input.employees ?? []) {
    const emp: Employee = { ...e }
    if (e.mobile !== undefined) {
      const m = normalizePhone(e.mobile, opts.defaultRegion)
      if (m === null) { reject(`employee:${e.id}`, e.mobile); delete emp.mobile } else emp.mobile = m
    }
    if (emp.groupId !== undefined && groups.size > 0 && !groups.has(emp.groupId)) warnings.push(`employee ${e.id}: unknown group ${emp.groupId}`)
    employees.set(emp.id, emp)
  }
  for (const c of clients.values()) {
    if (c.assignedManagerId !== undefined && !employees.has(c.assignedManagerId)) {
      if (warnings.length < 1000) warnings.push(`client ${c.id}: assigned manager ${c.assignedManagerId} is not in the directory`)
    }
  }
  for (const g of groups.values()) {
    for (const [role, id] of [['supervisor', g.supervisorId], ['secretary', g.secretaryId]] as const) {
      if (id !== undefined && !employees.has(id)) warnings.push(`group ${g.id}: ${role} ${id} is not in the directory`)
    }
  }

  return new DirectorySnapshot({
    clients, phones, employees, groups, offices,
    builtAt: opts.now ?? new Date(),
    stats: {
      clients: clients.size, employees: employees.size, groups: groups.size, phones: phones.stats(),
      rejectedPhones, rejectedPhoneCount, warnings,
    },
  })
}
