/**
 * decideRoute: who should take this call. Pure — no I/O, no clock reads except the
 * injected Clock — so every rule is table-tested. Every rule that fires appends a line
 * to `reasons`, which the screen pop, the call record and the console show.
 *
 * Order of rules:
 *  1. DID → call-tracking source tag, noIvr, office, optional IVR menu / queue.  [001]
 *  2. Blacklist: a number on the static list, or flagged N times today.           [004]
 *  3. Office hours (office tz + production calendar). Closed → holiday queue, else an
 *     office open in another zone, else the after-hours treatment.               [000, 001, 002]
 *  4. Repeat caller today → the same agent first, if ready.                       [004]
 *  5. Known client: segment queue (e.g. C → call centre), else assigned manager (if
 *     ready) → ready colleagues of the group → supervisor / secretary (if ready);
 *     absent, not-ready and offline people are never in the chain.               [000, 003]
 *     Other counterparties by kind: supplier → production, other → finance.      [001]
 *  6. Unknown caller: DID queue, else the DID's IVR (unless noIvr), else the
 *     unknown-kind queue (sales). Queue priority by ABC segment.                  [000, 001]
 */
import type { SwitchboardFile, OfficeConfig, CalendarConfig, DidConfig, GroupConfig, QueueConfig } from '../config/switchboard-file.ts'
import type { CallerIdentity, Client, DirectorySnapshot, Employee, Segment } from '../crm/directory.ts'
import { mergeCalendars, officeStatusAt } from './office-hours.ts'
import type {
  CallFacts, CallerSummary, Clock, DecisionCommon, DirectTarget, PresenceState, PresenceView, RouteDecision,
} from './types.ts'

interface Compiled {
  dids: Map<string, { number: string; did: DidConfig }>
  offices: Map<string, OfficeConfig>
  calendars: Map<string, CalendarConfig>
  queues: Map<string, QueueConfig>
  groups: Map<string, GroupConfig>
  blacklist: Set<string>
  defaultOffice: OfficeConfig
}

const cache = new WeakMap<SwitchboardFile, Compiled>()

function compile(config: SwitchboardFile): Compiled {
  let c = cache.get(config)
  if (c) return c
  const offices = new Map(config.offices.map(o => [o.id, o]))
  c = {
    dids: new Map(Object.entries(config.dids).map(([n, d]) => [n.replace(/^\+/, ''), { number: n, did: d }])),
    offices,
    calendars: new Map(config.offices.map(o => [o.id, mergeCalendars(config.calendar, o.calendar)])),
    queues: new Map(config.queues.map(q => [q.id, q])),
    groups: new Map(config.groups.map(g => [g.id, g])),
    blacklist: new Set(config.routing.blacklist.numbers),
    defaultOffice: offices.get(config.routing.defaultOfficeId ?? '') ?? config.offices[0],
  }
  cache.set(config, c)
  return c
}

function stateOf(presence: PresenceView, id: string): PresenceState {
  const s = typeof presence === 'function' ? presence(id) : presence.get(id)
  return s ?? 'offline'
}

function summarize(identity: CallerIdentity): CallerSummary {
  if (identity.kind === 'client') {
    const c = identity.client
    return { kind: 'client', clientId: c.id, segment: c.segment, clientKind: c.kind, source: identity.source }
  }
  if (identity.kind === 'employee') return { kind: 'employee', employeeId: identity.employee.id }
  return { kind: 'unidentified' }
}

function who(e: Employee | undefined, id: string): string {
  return e ? `${e.name} (${id})` : id
}

/**
 * The source tag of the DID a call came in on (call tracking), as decideRoute sets it in
 * every decision: the call's CDR row is written with it before the route is decided.
 */
export function didSourceTag(config: SwitchboardFile, did: string): string | null {
  return compile(config).dids.get(did.replace(/^\+/, ''))?.did.source ?? null
}

export function queuePriority(config: SwitchboardFile, queueId: string, segment: Segment | 'unidentified'): number {
  const q = compile(config).queues.get(queueId)
  const rule = q?.priorityRules.find(r => r.segment === segment)
  if (rule) return rule.priority
  if (segment === 'unidentified') {
    const s = config.routing.unidentifiedSegment
    return s === 'none' ? 0 : config.routing.segmentPriority[s]
  }
  return config.routing.segmentPriority[segment]
}

export function decideRoute(
  facts: CallFacts,
  directory: DirectorySnapshot,
  presence: PresenceView,
  clock: Clock,
  config: SwitchboardFile,
): RouteDecision {
  const c = compile(config)
  const r = config.routing
  const reasons: string[] = []
  const now = facts.time ?? clock.now()

  // 1. DID
  const didDigits = facts.did.replace(/^\+/, '')
  const didEntry = c.dids.get(didDigits)
  const did = didEntry?.did
  const office = (did && c.offices.get(did.officeId)) || c.defaultOffice
  if (did) reasons.push(`DID ${didEntry.number}: source "${did.source}", office ${office.id}${did.noIvr ? ', no IVR' : ''}`)
  else reasons.push(`DID ${facts.did} is not configured: no source tag, office ${office.id}`)

  const identity: CallerIdentity = facts.identity ?? directory.identify(facts.caller)
  const caller = summarize(identity)
  const common: DecisionCommon = {
    reasons, sourceTag: did?.source ?? null, noIvr: did?.noIvr ?? false, did: facts.did, officeId: office.id, caller,
  }
  const segment: Segment | 'unidentified' = identity.kind === 'client' ? identity.client.segment : 'unidentified'
  const toQueue = (queueId: string, why: string): RouteDecision => {
    const priority = queuePriority(config, queueId, segment)
    reasons.push(`${why} → queue ${queueId} (priority ${priority}${segment === 'unidentified' ? '' : `, segment ${segment}`})`)
    return { ...common, kind: 'queue', queueId, priority }
  }

  if (identity.kind === 'client') {
    const cl = identity.client
    reasons.push(`caller ${facts.caller ?? '(withheld)'} is ${cl.kind} ${cl.name} (${cl.id}), segment ${cl.segment}${identity.source === 'live' ? ', found by live lookup' : ''}`)
  } else if (identity.kind === 'employee') {
    reasons.push(`caller ${facts.caller} is employee ${who(identity.employee, identity.employee.id)} (internal)`)
  } else {
    reasons.push(facts.caller === null ? 'caller number withheld' : `caller ${facts.caller} is not in the directory`)
  }

  // 2. Blacklist
  if (r.blacklist.enabled && facts.caller !== null) {
    const flags = facts.blacklistFlagsToday ?? 0
    const listed = c.blacklist.has(facts.caller)
    if (listed || flags >= r.blacklist.maxCallsPerDay) {
      const why = listed ? `${facts.caller} is on the blacklist` : `${facts.caller} flagged ${flags} times today (limit ${r.blacklist.maxCallsPerDay})`
      if (r.blacklist.treatment === 'reject' || r.blacklist.queue === undefined) {
        reasons.push(`${why} → reject`)
        return { ...common, kind: 'reject', cause: 'CALL_REJECTED', reason: why }
      }
      const priority = Math.min(...Object.values(r.segmentPriority)) - 100
      reasons.push(`${why} → queue ${r.blacklist.queue} (priority ${priority})`)
      return { ...common, kind: 'queue', queueId: r.blacklist.queue, priority }
    }
  }

  // 3. Office hours
  const status = officeStatusAt(office, c.calendars.get(office.id)!, now)
  if (!status.open) {
    const dayNote = status.dayType === 'regular' ? `hours ${status.hours}` : `${status.dayType}, hours ${status.hours}`
    reasons.push(`office ${office.id} closed at ${status.local} ${office.tz} (${dayNote})`)
    if (status.dayType === 'holiday' && r.afterHours.holidayQueue !== undefined) {
      return toQueue(r.afterHours.holidayQueue, `holiday ${status.localDate}`)
    }
    if (r.afterHours.openOfficeFallback) {
      for (const other of config.offices) {
        if (other.id === office.id || other.fallbackQueue === undefined) continue
        const s = officeStatusAt(other, c.calendars.get(other.id)!, now)
        if (s.open) {
          common.officeId = other.id
          return toQueue(other.fallbackQueue, `office ${other.id} open at ${s.local} ${other.tz}`)
        }
      }
      reasons.push('no other office is open')
    }
    reasons.push(`after-hours message${r.afterHours.createCallback ? ' + callback task' : ''}`)
    return { ...common, kind: 'after-hours', prompt: r.afterHours.prompt, createCallback: r.afterHours.createCallback }
  }
  reasons.push(`office ${office.id} open at ${status.local} ${office.tz}${status.dayType === 'regular' ? '' : ` (${status.dayType} ${status.hours})`}`)

  // 4. Repeat caller → same agent
  const targets: DirectTarget[] = []
  const add = (t: DirectTarget) => { if (!targets.some(x => x.employeeId === t.employeeId)) targets.push(t) }
  if (r.repeatCaller.enabled && facts.lastAgentToday && (facts.callsTodayByCaller ?? 0) > 0 && identity.kind !== 'employee') {
    const id = facts.lastAgentToday
    const st = stateOf(presence, id)
    const emp = directory.employees.get(id)
    if (st === 'ready') {
      reasons.push(`repeat caller (${facts.callsTodayByCaller} earlier today): ${who(emp, id)} talked to them and is ready → ring first`)
      add({ employeeId: id, ringSec: r.repeatCaller.ringSec, role: 'last-agent' })
    } else {
      reasons.push(`repeat caller: last agent ${who(emp, id)} is ${st} → skipped`)
    }
  }
  const withTargets = (fallbackQueueId: string, why: string): RouteDecision => {
    if (targets.length === 0) return toQueue(fallbackQueueId, why)
    const priority = queuePriority(config, fallbackQueueId, segment)
    reasons.push(`failover chain: ${targets.map(t => `${t.role} ${t.employeeId} ${t.ringSec}s`).join(' → ')}; then queue ${fallbackQueueId}`)
    return { ...common, kind: 'direct', targets, fallbackQueueId, priority }
  }

  // 5. Known counterparty
  if (identity.kind === 'client') {
    const cl = identity.client
    if (cl.kind !== 'client') {
      const q = cl.kind === 'supplier' ? r.kindRoutes.supplier : cl.kind === 'partner' ? (r.kindRoutes.partner ?? r.kindRoutes.other) : r.kindRoutes.other
      return withTargets(q, `counterparty kind ${cl.kind}`)
    }
    const clientQueue = did?.queue ?? r.kindRoutes.client ?? r.kindRoutes.unknown
    const segQueue = r.segmentQueues[cl.segment]
    if (segQueue !== undefined) return withTargets(segQueue, `segment ${cl.segment} is served by a queue`)
    managerChain(cl, directory, presence, c, config, reasons, add)
    if (targets.length === 0) reasons.push('nobody in the manager chain is ready')
    return withTargets(clientQueue, cl.assignedManagerId ? 'manager chain exhausted' : 'client has no assigned manager')
  }

  // 6. Unknown caller (or an employee calling the public number)
  if (did?.queue !== undefined) return withTargets(did.queue, `DID queue`)
  if (did?.ivrMenu !== undefined && !did.noIvr && targets.length === 0) {
    const priority = queuePriority(config, r.kindRoutes.unknown, segment)
    reasons.push(`→ IVR menu ${did.ivrMenu}`)
    return { ...common, kind: 'ivr', menuId: did.ivrMenu, priority }
  }
  return withTargets(r.kindRoutes.unknown, identity.kind === 'employee' ? 'internal caller' : 'unknown caller')
}

function managerChain(
  cl: Client, directory: DirectorySnapshot, presence: PresenceView, c: Compiled, config: SwitchboardFile,
  reasons: string[], add: (t: DirectTarget) => void,
): void {
  const r = config.routing
  if (cl.assignedManagerId === undefined) return
  const mgrId = cl.assignedManagerId
  const mgr = directory.employees.get(mgrId)
  if (!mgr) {
    reasons.push(`assigned manager ${mgrId} is not in the directory`)
    return
  }
  const mst = stateOf(presence, mgrId)
  if (mst === 'ready') {
    reasons.push(`assigned manager ${who(mgr, mgrId)} is ready → ring ${r.managerRingSec}s`)
    add({ employeeId: mgrId, ringSec: r.managerRingSec, role: 'manager' })
  } else {
    reasons.push(`assigned manager ${who(mgr, mgrId)} is ${mst} → skipped`)
  }
  if (mgr.groupId === undefined) {
    reasons.push(`manager ${mgrId} has no group: no colleagues to fail over to`)
  } else {
    const skipped: string[] = []
    let n = 0
    for (const e of directory.groupMembers(mgr.groupId)) {
      if (e.id === mgrId || (e.role !== 'agent' && e.role !== 'manager')) continue
      const st = stateOf(presence, e.id)
      if (st !== 'ready') { skipped.push(`${e.id} ${st}`); continue }
      if (n >= r.maxColleagues) break
      add({ employeeId: e.id, ringSec: r.colleagueRingSec, role: 'colleague' })
      n++
    }
    if (n > 0) reasons.push(`${n} ready colleague(s) of group ${mgr.groupId}`)
    if (skipped.length > 0) reasons.push(`colleagues skipped: ${skipped.join(', ')}`)
  }
  const group = (mgr.groupId !== undefined ? directory.groups.get(mgr.groupId) ?? c.groups.get(mgr.groupId) : undefined)
  const supervisorId = group?.supervisorId ?? mgr.supervisorId
  for (const [role, id] of [['supervisor', supervisorId], ['secretary', group?.secretaryId]] as const) {
    if (id === undefined || id === mgrId) continue
    const st = stateOf(presence, id)
    if (st === 'ready') {
      reasons.push(`${role} ${who(directory.employees.get(id), id)} is ready → ring ${r.supervisorRingSec}s`)
      add({ employeeId: id, ringSec: r.supervisorRingSec, role })
    } else {
      reasons.push(`${role} ${id} is ${st} → skipped`)
    }
  }
}
