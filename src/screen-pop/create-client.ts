import { randomUUID } from 'node:crypto'
import type { Pool } from '../db/pool.ts'
import { withTransaction } from '../db/pool.ts'
import { normalizePhone } from '../crm/phone.ts'
import { DIRECTORY_CHANNEL } from '../crm/import.ts'
import type { Client, CounterpartyKind, DirectorySnapshot, Segment } from '../crm/directory.ts'
import { SwitchboardError, ValidationError } from '../errors.ts'

export interface NewClient {
  name: string
  segment?: Segment
  kind?: CounterpartyKind
  /** any notation; stored as E.164 */
  phone: string
  attributes?: Record<string, unknown>
}

export class PhoneTakenError extends SwitchboardError {
  constructor(phone: string, clientId: string) {
    super('phone_taken', `${phone} already belongs to client ${clientId}`, 409, { phone, clientId })
  }
}

/**
 * "Create client" from the screen pop of an unknown number: the card and its phone in one
 * transaction (a number has one owner: 409 names the owner), then every node's directory
 * reloads through the same NOTIFY the nightly import uses, and this node learns the
 * number at once so the caller's next call is already identified.
 *
 * The id is Switchboard's own (`sb-…`): the nightly import prunes phones only of the
 * clients its file lists, so a card created here survives it until the CRM adopts it.
 */
export async function createClient(pool: Pool, input: NewClient, opts: {
  defaultRegion: string
  /** how routing reads a client without a segment (config routing.unidentifiedSegment) */
  unidentifiedSegment?: Segment
  directory?: () => DirectorySnapshot
}): Promise<{ id: string; phone: string; client: Client }> {
  const name = input.name.trim()
  if (name === '') throw new ValidationError('name must not be blank', { field: 'name' })
  const phone = normalizePhone(input.phone, opts.defaultRegion)
  if (phone === null) throw new ValidationError(`${JSON.stringify(input.phone)} is not a phone number (region ${opts.defaultRegion})`, { field: 'phone' })
  const id = `sb-${randomUUID()}`
  const attributes = input.attributes ?? {}
  await withTransaction(pool, async (db) => {
    const owner = await db.query<{ client_id: string }>('SELECT client_id FROM client_phones WHERE phone = $1', [phone])
    if (owner.rows[0]) throw new PhoneTakenError(phone, owner.rows[0].client_id)
    await db.query('INSERT INTO clients (id, name, segment, kind, attributes) VALUES ($1, $2, $3, $4, $5)',
      [id, name, input.segment ?? null, input.kind ?? 'client', JSON.stringify(attributes)])
    // Two agents creating a card for the same caller at once: the loser gets the 409 too.
    const ins = await db.query('INSERT INTO client_phones (phone, client_id) VALUES ($1, $2) ON CONFLICT (phone) DO NOTHING', [phone, id])
    if (ins.rowCount !== 1) {
      const now = await db.query<{ client_id: string }>('SELECT client_id FROM client_phones WHERE phone = $1', [phone])
      throw new PhoneTakenError(phone, now.rows[0]?.client_id ?? 'unknown')
    }
    await db.query('SELECT pg_notify($1, $2)', [DIRECTORY_CHANNEL, `client:${id}`])
  })
  // The in-memory directory gives everyone a segment: no segment reads as the routing default, as on a reload.
  const client: Client = { id, name, segment: input.segment ?? opts.unidentifiedSegment ?? 'C', kind: input.kind ?? 'client', attributes }
  opts.directory?.().learnPhone(phone, client)
  return { id, phone, client }
}
