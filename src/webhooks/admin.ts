import type { Pool } from '../db/pool.ts'
import { NotFoundError } from '../errors.ts'
import { audit } from '../recordings/access/audit.ts'

/** What admins see of the outbox: deliveries (newest first), one with its event, and redelivery. */
export type DeliveryState = 'pending' | 'delivered' | 'dead'

export interface DeliveryView {
  id: string
  eventId: string
  eventType: string
  endpointId: string
  format: string
  state: DeliveryState
  attempts: number
  nextAttemptAt: string | null
  lastAttemptAt: string | null
  lastStatus: number | null
  lastError: string | null
  deliveredAt: string | null
  deadAt: string | null
  createdAt: string
  occurredAt: string
  data?: unknown
}

interface Row {
  id: string; event_id: string; type: string; endpoint_id: string; format: string; state: DeliveryState; attempts: number
  next_attempt_at: Date; last_attempt_at: Date | null; last_status: number | null; last_error: string | null
  delivered_at: Date | null; dead_at: Date | null; created_at: Date; occurred_at: Date; data?: unknown
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)
function toView(r: Row): DeliveryView {
  return {
    id: r.id, eventId: r.event_id, eventType: r.type, endpointId: r.endpoint_id, format: r.format, state: r.state, attempts: r.attempts,
    nextAttemptAt: r.state === 'pending' ? iso(r.next_attempt_at) : null, lastAttemptAt: iso(r.last_attempt_at), lastStatus: r.last_status,
    lastError: r.last_error, deliveredAt: iso(r.delivered_at), deadAt: iso(r.dead_at), createdAt: r.created_at.toISOString(), occurredAt: r.occurred_at.toISOString(),
    ...(r.data !== undefined ? { data: r.data } : {}),
  }
}

const COLUMNS = `d.id, d.event_id, e.type, d.endpoint_id, d.format, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status,
  d.last_error, d.delivered_at, d.dead_at, d.created_at, e.occurred_at`

export async function listDeliveries(pool: Pool, f: { state?: DeliveryState; endpointId?: string; eventType?: string; limit?: number; before?: string }): Promise<{ items: DeliveryView[]; next: string | null }> {
  const limit = f.limit ?? 50
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, v: unknown) => { params.push(v); where.push(sql.replace('?', `$${params.length}`)) }
  if (f.state) add('d.state = ?', f.state)
  if (f.endpointId) add('d.endpoint_id = ?', f.endpointId)
  if (f.eventType) add('e.type = ?', f.eventType)
  if (f.before) {
    // keyset cursor: "<created_at ISO>|<id>"
    const [at, id] = f.before.split('|')
    params.push(at, id)
    where.push(`(d.created_at, d.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`)
  }
  params.push(limit + 1)
  const rows = (await pool.query<Row>(
    `SELECT ${COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY d.created_at DESC, d.id DESC LIMIT $${params.length}`, params)).rows
  const more = rows.length > limit
  const items = rows.slice(0, limit).map(toView)
  const last = items[items.length - 1]
  return { items, next: more && last ? `${last.createdAt}|${last.id}` : null }
}

export async function getDelivery(pool: Pool, id: string): Promise<DeliveryView> {
  const r = (await pool.query<Row>(`SELECT ${COLUMNS}, e.data FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1`, [id])).rows[0]
  if (!r) throw new NotFoundError('webhook delivery', id)
  return toView(r)
}

/**
 * Send one delivery again (a dead letter after the receiver was fixed, or a delivered one
 * the receiver lost): back to pending with a fresh set of attempts, due now, under the
 * same delivery id (receivers that already processed it deduplicate). Audited.
 */
export async function redeliver(pool: Pool, id: string, who: { actor: string; ip?: string }): Promise<DeliveryView> {
  const r = await pool.query(
    `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL, locked_by = NULL,
            dead_at = NULL, redelivered_by = $2 WHERE id = $1 RETURNING id, state`, [id, who.actor])
  if (!r.rowCount) throw new NotFoundError('webhook delivery', id)
  const view = await getDelivery(pool, id)
  await audit(pool, { actor: who.actor, action: 'webhook.redeliver', subject: `webhook_delivery:${id}`, ip: who.ip, details: { endpointId: view.endpointId, eventType: view.eventType } })
  return view
}
