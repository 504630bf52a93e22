import type { FastifyInstance } from 'fastify'
import { Readable } from 'node:stream'
import { Type, type Static } from '@sinclair/typebox'
import type { Pool } from '../../db/pool.ts'
import type { Logger } from '../../log.ts'
import type { ObjectStore } from '../../recordings/store/object-store.ts'
import { SwitchboardError } from '../../errors.ts'
import { audit } from '../../recordings/access/audit.ts'
import { audioKeyOf, getAudioFacts } from '../../recordings/access/recordings.ts'
import { audioContentType } from '../../recordings/access/range.ts'
import { actorOf, limitUrlLength, UUID_PATTERN } from '../../recordings/access/http-common.ts'
import { getDelivery, listDeliveries, redeliver } from '../../webhooks/admin.ts'
import { SIGNED_AUDIO_PATH, type LinkSigner } from '../../webhooks/links.ts'
import { WEBHOOK_EVENTS } from '../../config/switchboard-file.ts'

export interface WebhooksRoutesDeps {
  pool: Pool
  store: ObjectStore
  log: Logger
  signer: LinkSigner
  /** a redelivery is due now: wake this node's delivery worker */
  onRedeliver?: () => void
}

export class BadLinkSignatureError extends SwitchboardError {
  constructor() { super('link_signature_invalid', 'the download link is not valid (altered or not issued by this server)', 403) }
}
export class LinkExpiredError extends SwitchboardError {
  constructor(at: string) { super('link_expired', `the download link expired at ${at}`, 410) }
}

const IdParams = Type.Object({ id: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false })
const ADMIN = ['admin'] as const
const ListQuery = Type.Object({
  state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')])),
  endpoint: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' })),
  event: Type.Optional(Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e)))),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  before: Type.Optional(Type.String({ pattern: `^[0-9T:.Z-]{10,40}\\|[0-9a-fA-F-]{36}$` })),
}, { additionalProperties: false })
const LinkQuery = Type.Object({
  exp: Type.Integer({ minimum: 0, maximum: 99_999_999_999 }),
  by: Type.String({ minLength: 1, maxLength: 128 }),
  sig: Type.String({ minLength: 1, maxLength: 128 }),
}, { additionalProperties: false })

/** Webhook outbox administration (admin) and the public, signature-checked download link. */
export function webhooksRoutes(deps: WebhooksRoutesDeps) {
  return async function webhooksPlugin(app: FastifyInstance): Promise<void> {
    limitUrlLength(app)

    app.get<{ Querystring: Static<typeof ListQuery> }>('/api/webhooks/deliveries', {
      config: { roles: ADMIN },
      schema: { tags: ['webhooks'], summary: 'Webhook deliveries, newest first (state pending / delivered / dead); `next` is the cursor for `before`', querystring: ListQuery },
    }, async (req) => listDeliveries(deps.pool, { state: req.query.state, endpointId: req.query.endpoint, eventType: req.query.event, limit: req.query.limit, before: req.query.before }))

    app.get<{ Querystring: Omit<Static<typeof ListQuery>, 'state'> }>('/api/webhooks/dead-letters', {
      config: { roles: ADMIN },
      schema: { tags: ['webhooks'], summary: 'Deliveries that failed maxAttempts times (dead letters), newest first', querystring: Type.Omit(ListQuery, ['state']) },
    }, async (req) => listDeliveries(deps.pool, { state: 'dead', endpointId: req.query.endpoint, eventType: req.query.event, limit: req.query.limit, before: req.query.before }))

    app.get<{ Params: Static<typeof IdParams> }>('/api/webhooks/deliveries/:id', {
      config: { roles: ADMIN }, schema: { tags: ['webhooks'], summary: 'One delivery with its event data and last error', params: IdParams },
    }, async (req) => getDelivery(deps.pool, req.params.id))

    app.post<{ Params: Static<typeof IdParams> }>('/api/webhooks/deliveries/:id/redeliver', {
      config: { roles: ADMIN },
      schema: { tags: ['webhooks'], summary: 'Send a delivery again (fresh attempts, same delivery id); audited', params: IdParams },
    }, async (req, reply) => {
      const view = await redeliver(deps.pool, req.params.id, { actor: actorOf(req), ip: req.ip })
      deps.onRedeliver?.()
      return reply.code(202).send(view)
    })

    // Public on purpose: the CRM follows this link from a webhook without a Switchboard
    // token. The HMAC signature (recording, expiry, subject) is the credential: checked
    // before anything is read; altered → 403, expired → 410. Every fetch is audited under
    // the subject the link was issued to, before the first byte is sent.
    app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LinkQuery> }>(SIGNED_AUDIO_PATH, {
      config: { roles: 'public' },
      schema: { tags: ['recordings'], summary: 'Recording audio through a short-lived signed link (from webhooks); no bearer token', params: IdParams, querystring: LinkQuery, security: [] },
    }, async (req, reply) => {
      const { exp, by, sig } = req.query
      const verdict = await deps.signer.verify(req.params.id, exp, by, sig)
      if (verdict === 'bad_signature') throw new BadLinkSignatureError()
      if (verdict === 'expired') throw new LinkExpiredError(new Date(exp * 1000).toISOString())
      const rec = await getAudioFacts(deps.pool, req.params.id)
      const key = audioKeyOf(rec)
      const info = await deps.store.stat(key)
      if (!info) throw new SwitchboardError('audio_missing', `the audio object of recording ${rec.id} is missing from the store`, 404)
      const ext = key.includes('.') ? key.slice(key.lastIndexOf('.')) : ''
      reply.type(audioContentType(key, rec.codec)).header('Content-Length', info.size).header('Cache-Control', 'private, no-store')
        .header('ETag', rec.sha256 ? `"${rec.sha256}"` : info.etag)
        .header('Content-Disposition', `attachment; filename="recording-${rec.id}${ext}"`)
      // HEAD: headers only (an empty stream keeps our Content-Length); nothing read, nothing to audit
      if (req.method === 'HEAD') return reply.send(Readable.from([]))
      await audit(deps.pool, { actor: by, action: 'download_link', recordingId: rec.id, ip: req.ip, details: { expiresAt: new Date(exp * 1000).toISOString(), bytes: info.size } })
      return reply.send(await deps.store.get(key))
    })
  }
}
