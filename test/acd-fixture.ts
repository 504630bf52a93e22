import type { Test } from 'tap'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import { startCallHarness, type CallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import type { SimCall } from './support/fs-simulator.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'
import type { QueueConfig, SwitchboardFile } from '../src/config/switchboard-file.ts'

// Shared by the ACD wire tests (acd-queue, acd-overflow): the wire simulator dials in, the
// real CallService queues the caller in Postgres, the dispatcher offers agents, the
// simulator's phones answer (or not). timeScale 0.05: 20 script seconds are one real second.
export const DID = '+74950000077'
export const employees: Employee[] = [1, 2, 3, 4].map((n) => ({ id: `a${n}`, name: `Агент ${n}`, role: 'agent' as const, groupId: 'tg', extension: `200${n}` }))
employees.push({ id: 'o1', name: 'Overflow', role: 'agent', groupId: 'tg2', extension: '2101' })
export const clients: ClientInput[] = [
  { id: 'cA', name: 'Key account', segment: 'A', kind: 'client', phones: ['+79160000001'] },
  { id: 'cB', name: 'Small shop', segment: 'B', kind: 'client', phones: ['+79160000002'] },
  { id: 'cV', name: 'VIP person', segment: 'B', kind: 'client', phones: ['+79160000003'], attributes: { vip: true } },
]

export function queue(p: Partial<QueueConfig> & { id: string }): QueueConfig {
  return {
    name: p.id, strategy: 'longest-idle', groupIds: ['tg'], agentTimeoutSec: 2, maxWaitSec: 30, maxLength: 50, overflow: { action: 'callback' },
    wrapUpSec: 0, priorityRules: [], vipPriority: 100, callbackPriority: 50, stickyFallback: 'longest-idle',
    announcePosition: false, announceExpectedWait: false, announceIntervalSec: 30, positionPrompt: 'pos.wav', expectedWaitPrompt: 'ewt.wav',
    musicOnHold: 'moh.wav', ...p,
  }
}

export function acdFixture(db: TestDatabase) {
  async function harness(t: Test, q: Partial<QueueConfig>, opts: { ready?: string[]; extra?: QueueConfig[]; node?: string; fresh?: boolean; tweak?: (c: SwitchboardFile) => void } = {}): Promise<CallHarness> {
    if (opts.fresh !== false) await db.pool.query(`DELETE FROM queue_calls; DELETE FROM acd_queue_cursor; UPDATE agent_presence SET state = 'offline', reason = NULL, call_uuid = NULL, wrap_up_until = NULL`)
    const h = await startCallHarness(db, {
      employees, clients, ready: opts.ready ?? [], timeScale: 0.05, node: opts.node,
      configure: (cfg) => {
        cfg.csat.enabled = false
        cfg.routing.repeatCaller.enabled = false
        cfg.acd.pollIntervalMs = 200
        cfg.groups.push({ id: 'tg', name: 'Test group', officeId: 'msk' }, { id: 'tg2', name: 'Overflow group', officeId: 'msk' })
        cfg.queues.push(queue({ id: 'tq', ...q }), ...(opts.extra ?? []))
        cfg.dids[DID] = { source: 'acd-test', noIvr: true, queue: 'tq', officeId: 'msk' }
        opts.tweak?.(cfg)
      },
    })
    t.teardown(() => h.close())
    return h
  }
  const call = (h: CallHarness, caller: string, extra: Parameters<CallHarness['sim']['call']>[0] = {}): SimCall =>
    h.sim.call({ callerIdNumber: caller, destination: DID, ...extra })
  async function cdr(uuid: string) {
    return waitFor(`CDR of ${uuid}`, async () => (await db.pool.query('SELECT * FROM calls WHERE uuid = $1 AND ended_at IS NOT NULL', [uuid])).rows[0], 20_000, 50)
  }
  async function offers(uuids: string[]) {
    return (await db.pool.query('SELECT * FROM acd_offers WHERE call_uuid = ANY($1::uuid[]) ORDER BY id', [uuids])).rows
  }
  async function waiting(n: number) {
    await waitFor(`${n} callers waiting`, async () => (await db.pool.query(`SELECT count(*)::int AS n FROM queue_calls WHERE state = 'waiting'`)).rows[0].n === n, 10_000, 20)
  }
  return { harness, call, cdr, offers, waiting }
}

export const answers = (ms = 20, talkMs = 2000) => ({ answerAfterMs: ms, hangupAfterMs: talkMs })
export const targets = (m: Record<string, object>) => m as Record<string, { answerAfterMs?: number; hangupAfterMs?: number; noAnswer?: boolean }>
export { startTestDatabase, startCallHarness, waitFor }
export type { SimCall, CallHarness }
