/**
 * Who should work a callback task, and which office's hours decide when. Pure.
 *
 * In order: the queue the caller waited in (its groups); the client's own manager (first,
 * then their group); the queue of the DID the caller dialled, or the fallback queue of
 * that DID's office (after-hours tasks name no queue); `callbacks.defaultQueue`. The
 * office is the first target group's, else the DID's, else routing.defaultOfficeId,
 * else the first office.
 */
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import type { DirectorySnapshot } from '../crm/directory.ts'

export interface CallbackFacts {
  queueId: string | null
  clientId: string | null
  /** The DID of the missed call (calls.did), when known. */
  did: string | null
}

export interface CallbackTarget {
  /** Employees tried first, in order (the client's manager). */
  preferred: string[]
  groupIds: string[]
  officeId: string
  reason: string
}

export function callbackTarget(f: CallbackFacts, cfg: SwitchboardFile, directory: DirectorySnapshot): CallbackTarget | null {
  const queueGroups = (id: string | undefined | null) => (id ? cfg.queues.find((q) => q.id === id)?.groupIds ?? [] : [])
  const didCfg = f.did ? didConfig(cfg, f.did) : undefined
  const officeOf = (groupIds: string[]) =>
    groupIds.map((g) => cfg.groups.find((x) => x.id === g)?.officeId).find((o) => o !== undefined)
    ?? didCfg?.officeId ?? cfg.routing.defaultOfficeId ?? cfg.offices[0].id

  const fromQueue = queueGroups(f.queueId)
  if (fromQueue.length > 0) return { preferred: [], groupIds: fromQueue, officeId: officeOf(fromQueue), reason: `queue ${f.queueId}` }

  const client = f.clientId ? directory.clients.get(f.clientId) : undefined
  const manager = client?.assignedManagerId ? directory.employees.get(client.assignedManagerId) : undefined
  if (manager) {
    const groups = manager.groupId ? [manager.groupId] : []
    const officeId = manager.officeId ?? officeOf(groups)
    return { preferred: [manager.id], groupIds: groups, officeId, reason: `client ${client!.id}'s manager ${manager.id}` }
  }

  const didQueue = didCfg?.queue ?? (didCfg ? cfg.offices.find((o) => o.id === didCfg.officeId)?.fallbackQueue : undefined)
  const fromDid = queueGroups(didQueue)
  if (fromDid.length > 0) return { preferred: [], groupIds: fromDid, officeId: officeOf(fromDid), reason: `DID ${f.did} → queue ${didQueue}` }

  const fromDefault = queueGroups(cfg.callbacks.defaultQueue)
  if (fromDefault.length > 0) return { preferred: [], groupIds: fromDefault, officeId: officeOf(fromDefault), reason: `callbacks.defaultQueue ${cfg.callbacks.defaultQueue}` }
  return null
}

/** DIDs are configured with or without '+'; calls store them as delivered. */
function didConfig(cfg: SwitchboardFile, did: string) {
  const digits = did.replace(/^\+/, '')
  return cfg.dids[did] ?? cfg.dids[digits] ?? cfg.dids[`+${digits}`]
}
