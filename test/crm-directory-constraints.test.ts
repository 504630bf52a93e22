// The CRM references enforced by statement-level triggers (migration 0011, for the import's
// speed) instead of row-level foreign keys: the same guarantees for every writer —
// missing parents rejected (23503), ON DELETE CASCADE / SET NULL, referenced ids frozen,
// and a parent a concurrent transaction references cannot be deleted under it.
import t from 'tap'
import { startTestDatabase, type TestDatabase } from './support/db.ts'
import type { PoolClient } from '../src/db/pool.ts'

let db: TestDatabase
t.before(async () => {
  db = await startTestDatabase()
  await db.pool.query(`INSERT INTO employees (id, name, role) VALUES ('m1', 'Manager 1', 'manager'), ('m2', 'Manager 2', 'manager')`)
})
t.teardown(async () => { await db?.close() })

const code = async (p: Promise<unknown>): Promise<string | undefined> => {
  try { await p; return undefined } catch (err) { return (err as { code?: string }).code }
}
const phonesOf = async (id: string) => (await db.pool.query('SELECT phone FROM client_phones WHERE client_id = $1', [id])).rowCount
async function tx(): Promise<PoolClient> { const c = await db.pool.connect(); await c.query('BEGIN'); return c }
/** Resolves once `pid` waits on a lock (the statement under test is blocked, not finished). */
async function waitingOnLock(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const r = await db.pool.query<{ w: string | null }>('SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1', [pid])
    if (r.rows[0]?.w === 'Lock') return true
    await new Promise((res) => setTimeout(res, 25))
  }
  return false
}
const pidOf = async (c: PoolClient) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid

t.test('a phone needs an existing client; a client needs an existing manager', async (t) => {
  t.equal(await code(db.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74950000001', 'nobody')`)), '23503')
  t.equal(await code(db.pool.query(`INSERT INTO clients (id, name, assigned_manager_id) VALUES ('c1', 'C1', 'ghost')`)), '23503')
  await db.pool.query(`INSERT INTO clients (id, name, assigned_manager_id) VALUES ('c1', 'C1', 'm1'), ('c0', 'C0', NULL)`)
  await db.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74950000001', 'c1'), ('+74950000002', 'c1')`)
  t.equal(await code(db.pool.query(`UPDATE client_phones SET client_id = 'nobody' WHERE phone = '+74950000001'`)), '23503', 'moving a phone to a missing client')
  t.equal(await code(db.pool.query(`UPDATE clients SET assigned_manager_id = 'ghost' WHERE id = 'c1'`)), '23503', 'assigning a missing manager')
  // a client and its phones in one statement each, one transaction: the import's case
  const c = await tx()
  await c.query(`INSERT INTO clients (id, name, assigned_manager_id) VALUES ('c2', 'C2', 'm2')`)
  await c.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74950000003', 'c2')`)
  await c.query('COMMIT'); c.release()
  t.equal(await phonesOf('c2'), 1)
})

t.test('deleting a client deletes its phones; deleting an employee unassigns their clients', async (t) => {
  await db.pool.query(`INSERT INTO clients (id, name, assigned_manager_id) VALUES ('d1', 'D1', 'm2')`)
  await db.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74951000001', 'd1'), ('+74951000002', 'd1')`)
  await db.pool.query(`DELETE FROM clients WHERE id = 'd1'`)
  t.equal(await phonesOf('d1'), 0)
  await db.pool.query(`INSERT INTO employees (id, name, role) VALUES ('gone', 'Gone', 'manager')`)
  await db.pool.query(`INSERT INTO clients (id, name, assigned_manager_id) VALUES ('d2', 'D2', 'gone')`)
  await db.pool.query(`DELETE FROM employees WHERE id = 'gone'`)
  t.equal((await db.pool.query(`SELECT assigned_manager_id FROM clients WHERE id = 'd2'`)).rows[0].assigned_manager_id, null)
})

t.test('a referenced id cannot change; an unreferenced one can', async (t) => {
  t.equal(await code(db.pool.query(`UPDATE clients SET id = 'c1-new' WHERE id = 'c1'`)), '23503')
  t.equal(await code(db.pool.query(`UPDATE employees SET id = 'm1-new' WHERE id = 'm1'`)), '23503')
  await db.pool.query(`UPDATE clients SET id = 'c0-new' WHERE id = 'c0'`)
  t.equal((await db.pool.query(`SELECT 1 FROM clients WHERE id = 'c0-new'`)).rowCount, 1)
})

t.test('concurrent writers: no phone outlives its client', async (t) => {
  await db.pool.query(`INSERT INTO clients (id, name) VALUES ('x1', 'X1'), ('x2', 'X2')`)
  // A adds a phone to a committed client and stays open; B's delete of the client waits
  // for A, then removes the phone A committed.
  const a = await tx()
  await a.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74952000001', 'x1')`)
  const b = await tx()
  const bPid = await pidOf(b)
  const del = b.query(`DELETE FROM clients WHERE id = 'x1'`)
  t.ok(await waitingOnLock(bPid), 'the delete waits for the transaction that references the client')
  await a.query('COMMIT'); a.release()
  await del
  await b.query('COMMIT'); b.release()
  t.equal(await phonesOf('x1'), 0, 'the committed phone went with its client')

  // B deletes first and stays open; A's phone for that client waits, then fails.
  const b2 = await tx()
  await b2.query(`DELETE FROM clients WHERE id = 'x2'`)
  const a2 = await tx()
  const aPid = await pidOf(a2)
  const ins = code(a2.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74952000002', 'x2')`))
  t.ok(await waitingOnLock(aPid), 'the insert waits for the delete')
  await b2.query('COMMIT'); b2.release()
  t.equal(await ins, '23503', 'and is rejected once the client is gone')
  await a2.query('ROLLBACK'); a2.release()
  t.equal(await phonesOf('x2'), 0)
})

t.test("the import's per-transaction skip of the phone check does not outlive its transaction", async (t) => {
  const c = await db.pool.connect()
  try {
    await c.query(`BEGIN; SET LOCAL switchboard.crm_batch_references = 'checked'`)
    await c.query(`INSERT INTO clients (id, name) VALUES ('i1', 'I1')`)
    await c.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74953000001', 'i1')`)
    await c.query('COMMIT')
    t.equal(await code(c.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74953000002', 'nobody')`)), '23503', 'checked again on the same connection')
  } finally { c.release() }
  t.equal(await phonesOf('i1'), 1)
})
