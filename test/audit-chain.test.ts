import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { audit, AuditBatcher, AuditBacklogError, canonicalJson, verifyAuditChain, GENESIS_HASH, entryHashOk, auditEntriesById } from '../src/recordings/access/audit.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())
const { pool } = db

t.test('canonical JSON sorts keys at every depth', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}')
  t.equal(canonicalJson('x"y'), '"x\\"y"')
})

t.test('an empty chain verifies', async (t) => {
  t.same(await verifyAuditChain(pool), { ok: true, checked: 0, headId: null })
})

t.test('concurrent writers keep one linear chain', async (t) => {
  // 300 appends from 20 parallel workers on separate connections
  await Promise.all(Array.from({ length: 20 }, (_, w) => (async () => {
    for (let i = 0; i < 15; i++) await audit(pool, { actor: `worker-${w}`, action: 'play', subject: `s-${i}`, ip: '127.0.0.1', details: { i, w, nested: { b: [1, 2], a: 'é ünïcode ✓' } } })
  })()))
  const v = await verifyAuditChain(pool, 37) // small batches cross page boundaries
  t.same(v.ok, true)
  t.equal(v.checked, 300)
  const rows = (await pool.query('SELECT id, prev_hash, hash FROM audit_log ORDER BY id')).rows
  t.equal(rows[0].prev_hash, GENESIS_HASH)
  for (let i = 1; i < rows.length; i++) if (rows[i].prev_hash !== rows[i - 1].hash) t.fail(`link broken at ${rows[i].id}`)
  t.equal(new Set(rows.map((r) => r.prev_hash)).size, 300, 'no fork: every prev_hash used once')
  const [one] = await auditEntriesById(pool, [rows[5].id])
  t.ok(entryHashOk(one), 'an entry alone recomputes its hash (offline excerpt check)')
})

async function withSnapshot(fn: () => Promise<void>): Promise<void> {
  await pool.query('CREATE TEMP TABLE IF NOT EXISTS snap AS SELECT * FROM audit_log WITH NO DATA')
  await pool.query('DELETE FROM snap')
  await pool.query('INSERT INTO snap SELECT * FROM audit_log')
  const head = (await pool.query('SELECT * FROM audit_chain_head')).rows[0]
  try { await fn() } finally {
    const c = await pool.connect()
    try {
      await c.query('BEGIN'); await c.query('DELETE FROM audit_log'); await c.query('INSERT INTO audit_log SELECT * FROM snap')
      await c.query('UPDATE audit_chain_head SET last_id = $1, hash = $2, entries = $3', [head.last_id, head.hash, head.entries]); await c.query('COMMIT')
    } finally { c.release() }
  }
}

t.test('detects an edited row', async (t) => {
  const ids = (await pool.query('SELECT id FROM audit_log ORDER BY id')).rows.map((r) => Number(r.id))
  const victim = ids[100]
  await withSnapshot(async () => {
    await pool.query(`UPDATE audit_log SET actor = 'someone-else' WHERE id = $1`, [victim])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: victim, reason: 'hash_mismatch' })
  })
  await withSnapshot(async () => {
    await pool.query(`UPDATE audit_log SET details = details || '{"i": 999}' WHERE id = $1`, [victim])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: victim, reason: 'hash_mismatch' }, 'details edited')
  })
  await withSnapshot(async () => {
    await pool.query(`UPDATE audit_log SET at = at + interval '1 second' WHERE id = $1`, [victim])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: victim }, 'time edited')
  })
  await withSnapshot(async () => {
    // an attacker who also recomputes the row's own hash still breaks the next link
    const { rows } = await pool.query('SELECT * FROM audit_log WHERE id = $1', [victim])
    const { chainHash, entryBody } = await import('../src/recordings/access/audit.ts')
    const e = rows[0]
    const forged = chainHash(e.prev_hash, entryBody({ at: e.at.toISOString(), actor: 'forger', action: e.action, recordingId: e.recording_id, subject: e.subject, ip: e.ip, details: e.details }))
    await pool.query(`UPDATE audit_log SET actor = 'forger', hash = $2 WHERE id = $1`, [victim, forged])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: ids[101], reason: 'broken_link' })
  })
  t.match(await verifyAuditChain(pool), { ok: true }, 'restored')
})

t.test('detects a deleted row, a reordering and a truncated tail', async (t) => {
  const ids = (await pool.query('SELECT id FROM audit_log ORDER BY id')).rows.map((r) => Number(r.id))
  await withSnapshot(async () => {
    await pool.query('DELETE FROM audit_log WHERE id = $1', [ids[50]])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: ids[51], reason: 'broken_link' })
  })
  await withSnapshot(async () => {
    // swap the contents of two neighbouring rows (ids stay)
    const a = (await pool.query('SELECT * FROM audit_log WHERE id = $1', [ids[10]])).rows[0]
    const b = (await pool.query('SELECT * FROM audit_log WHERE id = $1', [ids[11]])).rows[0]
    const set = 'UPDATE audit_log SET at = $2, actor = $3, action = $4, subject = $5, details = $6, prev_hash = $7, hash = $8 WHERE id = $1'
    await pool.query(set, [ids[10], b.at, b.actor, b.action, b.subject, b.details, b.prev_hash, b.hash])
    await pool.query(set, [ids[11], a.at, a.actor, a.action, a.subject, a.details, a.prev_hash, a.hash])
    t.match(await verifyAuditChain(pool), { ok: false, firstBadId: ids[10], reason: 'broken_link' })
  })
  await withSnapshot(async () => {
    await pool.query('DELETE FROM audit_log WHERE id >= $1', [ids[295]])
    t.match(await verifyAuditChain(pool), { ok: false, reason: 'tail_truncated' })
  })
  await withSnapshot(async () => {
    await pool.query(`INSERT INTO audit_log (actor, action, details) VALUES ('sneaky', 'play', '{}')`)
    t.match(await verifyAuditChain(pool), { ok: false, reason: 'missing_hash' }, 'a row inserted around audit_append')
  })
  t.match(await verifyAuditChain(pool), { ok: true, checked: 300 })
  await audit(pool, { actor: 'after', action: 'search' })
  t.match(await verifyAuditChain(pool), { ok: true, checked: 301 }, 'the chain continues after the restore')
})

t.test('batched appends (group commit) extend the same chain, interleaved with single appends', async (t) => {
  const before = (await verifyAuditChain(pool)).checked
  let calls = 0
  const counting = { query: ((...args: Parameters<typeof pool.query>) => { calls++; return pool.query(...args) }) as typeof pool.query }
  const batcher = new AuditBatcher(counting, { maxBatch: 64 })
  const single = Array.from({ length: 10 }, (_, i) => audit(pool, { actor: 'single', action: 'view', subject: `s${i}` }))
  const batched = Array.from({ length: 200 }, (_, i) => batcher.append({ actor: `b-${i % 7}`, action: 'play', recordingId: null, ip: '10.0.0.1', details: { i, range: i % 2 ? 'bytes=0-1' : null, s: 'é\u0000' } }))
  const results = await Promise.all(batched)
  await Promise.all(single)
  t.ok(calls >= 4 && calls < 200, `${calls} round trips for 200 entries`)
  t.equal(new Set(results.map((r) => r.id)).size, 200, 'each caller gets its own entry')
  const entries = await auditEntriesById(pool, results.map((r) => r.id))
  t.same(entries.map((e) => (e.details as { i: number }).i), Array.from({ length: 200 }, (_, i) => i), 'chained in the order appended')
  t.ok(entries.every((e, i) => e.hash === results[i].hash && entryHashOk(e)))
  t.match(await verifyAuditChain(pool), { ok: true, checked: before + 210 })
  t.same(await new AuditBatcher(pool).append({ actor: 'x', action: 'search' }).then((r) => typeof r.id), 'number')
  t.match(await verifyAuditChain(pool), { ok: true, checked: before + 211 })
})

t.test('a failing batch rejects its callers; a full backlog refuses at once', async (t) => {
  const broken = new AuditBatcher({ query: (async () => { throw new Error('db down') }) as unknown as typeof pool.query })
  await t.rejects(broken.append({ actor: 'x', action: 'play' }), /db down/)
  const tiny = new AuditBatcher(pool, { maxPending: 2 })
  const a = tiny.append({ actor: 'x', action: 'play' })
  const b = tiny.append({ actor: 'x', action: 'play' })
  t.throws(() => tiny.append({ actor: 'x', action: 'play' }), AuditBacklogError)
  await Promise.all([a, b])
  t.match(await verifyAuditChain(pool), { ok: true })
})
