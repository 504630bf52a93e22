/**
 * Fault suite — Postgres down mid-call. Conversations are running (own managers answered,
 * recordings on) when the embedded Postgres is stopped; it stays down for a while (8 s in the
 * short form, 30 s in the full one) while those callers talk and then hang up, and while new
 * callers arrive. Nothing may fail for a caller: conversations end normally (no error hangup
 * from Switchboard), new callers are answered and routed from the in-memory directory. When
 * Postgres returns, every call gets its CDR and every recording is stored — without a
 * restart. Figures: `# FAULTS pg-outage: …`.
 *
 * The other outages of the fault issue are in their own files: the object store down mid-load
 * (recordings-outage.test.ts), the live CRM lookup hanging (calls-live-lookup.test.ts), a
 * nearly full spool disk (recordings-disk.test.ts).
 */
import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { size, figures, sleep } from './support/faults.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'

const OUTAGE_MS = size(8_000, 30_000)
const TALKING = size(4, 10)
const ARRIVING = size(3, 10)
const AT = '2026-11-23T09:00:00Z'

const employees: Employee[] = Array.from({ length: TALKING + ARRIVING }, (_, i) => ({
  id: `mgr-${i}`, name: `Менеджер ${i}`, role: 'manager' as const, groupId: 'sales-1', extension: String(2000 + i),
}))
const clients: ClientInput[] = employees.map((e, i) => ({
  id: `c-${i}`, name: `Клиент ${i}`, segment: 'B' as const, kind: 'client' as const, assignedManagerId: e.id, phones: [`+7495555${String(i).padStart(4, '0')}`],
}))

const db = await startTestDatabase()
t.teardown(() => db.close())

t.test(`Postgres down ${OUTAGE_MS / 1000} s mid-call: callers unaffected, CDRs and recordings written when it returns`, { timeout: 280_000 }, async (t) => {
  // Real time (timeScale 1): the outage is a real Postgres stop of OUTAGE_MS.
  const h = await startCallHarness(db, { employees, clients, ready: employees.map((e) => e.id), at: AT, timeScale: 1 })
  t.teardown(() => h.close())
  const bridgeTargets = Object.fromEntries(employees.map((e) => [`user/${e.extension}`, { answerAfterMs: 500 }]))

  // Conversations that are running when Postgres goes away, and end during the outage.
  const talking = Array.from({ length: TALKING }, (_, i) => h.sim.call({
    callerIdNumber: `8495555${String(i).padStart(4, '0')}`, destination: '+74951230000',
    hangupAtMs: 3_000 + OUTAGE_MS / 2, bridgeTargets,
  }))
  await sleep(2_500)
  await db.stopServer()
  const downAt = Date.now()
  // New callers while it is down: known clients, routed from memory.
  await sleep(1_000)
  const arriving = Array.from({ length: ARRIVING }, (_, k) => {
    const i = TALKING + k
    return h.sim.call({ callerIdNumber: `8495555${String(i).padStart(4, '0')}`, destination: '+74951230000', hangupAtMs: 4_000, bridgeTargets })
  })
  const results = await Promise.all([...talking, ...arriving].map((c) => c.done))
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)))
  await db.restart()
  const upAt = Date.now()

  const uuids = results.map((r) => r.uuid)
  const failedForCaller = results.filter((r) => r.commands.some((c) => /NORMAL_TEMPORARY_FAILURE|DESTINATION_OUT_OF_ORDER/.test(c.headers['execute-app-arg'] ?? c.line)))
  const answeredBySwitchboard = results.filter((r) => r.commands.some((c) => c.headers['execute-app-name'] === 'answer')).length
  const bridgedDuringOutage = results.slice(TALKING).filter((r) => r.commands.some((c) => c.headers['execute-app-name'] === 'bridge')).length

  const settle = async (count: () => Promise<number>, want: number, ms: number) => {
    const until = Date.now() + ms
    let n = await count().catch(() => 0)
    while (n < want && Date.now() < until) { await sleep(250); n = await count().catch(() => 0) }
    return n
  }
  const cdrs = await settle(async () => (await db.pool.query('SELECT 1 FROM calls WHERE uuid = ANY($1::uuid[]) AND ended_at IS NOT NULL', [uuids])).rowCount!, uuids.length, 60_000)
  const cdrAfterMs = Date.now() - upAt
  const expectedRecordings = results.reduce((n, r) => n + r.recordings.filter((x) => x.written).length, 0)
  const stored = await settle(async () => Number((await db.pool.query(
    `SELECT count(*) AS n FROM recordings WHERE call_uuid = ANY($1::uuid[]) AND state = 'stored'`, [uuids])).rows[0]!.n), expectedRecordings, 120_000)
  const talkingCdrs = await db.pool.query<{ outcome: string; agent_id: string | null }>('SELECT outcome, agent_id FROM calls WHERE uuid = ANY($1::uuid[])', [uuids.slice(0, TALKING)])

  t.comment(figures('pg-outage', {
    outage_s: OUTAGE_MS / 1000, calls: results.length, talking_at_outage: TALKING, arriving_during_outage: ARRIVING,
    answered: answeredBySwitchboard, bridged_during_outage: bridgedDuringOutage, failed_for_caller: failedForCaller.length,
    cdr_written: cdrs, cdr_after_return_ms: cdrAfterMs, recordings_expected: expectedRecordings, recordings_stored: stored,
  }))
  t.equal(failedForCaller.length, 0, 'no caller got an error hangup from Switchboard')
  t.equal(answeredBySwitchboard, results.length, 'every caller was answered, including those who called during the outage')
  t.equal(cdrs, uuids.length, 'every call has its CDR once Postgres is back')
  t.ok(talkingCdrs.rows.every((r) => r.outcome === 'answered' && r.agent_id), 'the conversations cut by nothing: answered and attributed')
  t.ok(expectedRecordings >= TALKING, `recordings were made (${expectedRecordings})`)
  t.equal(stored, expectedRecordings, 'every recording stored after the outage, without a restart')
})
