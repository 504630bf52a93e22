import type { SwitchboardFile } from './switchboard-file.ts'
/**
 * Config versions over HTTP (admin console, CI):
 *   GET  /api/config                        the active document (supervisor, admin)
 *   GET  /api/config/versions               version history (supervisor, admin)
 *   GET  /api/config/versions/:version      one version with its dry-run report
 *   POST /api/config/versions?comment=…     propose: body = the document (admin) → 201
 *                                           validation + dry-run report; 400 names the field
 *   POST /api/config/versions/:version/activate   (admin)
 *   POST /api/config/rollback                      (admin)
 */
import type { FastifyInstance } from 'fastify'
import type { ConfigVersions } from './versions.ts'

export interface ConfigRoutesDeps {
  versions: ConfigVersions
}

const versionInfo = {
  type: 'object',
  properties: {
    version: { type: 'integer' }, author: { type: 'string' }, comment: { type: ['string', 'null'] },
    createdAt: { type: 'string' }, active: { type: 'boolean' },
    activatedAt: { type: ['string', 'null'] }, activatedBy: { type: ['string', 'null'] },
  },
} as const

const dryRun = {
  type: 'object',
  properties: {
    baseline: { type: 'string', enum: ['active', 'file', 'none'] },
    baselineVersion: { type: ['integer', 'null'] },
    calls: { type: 'integer' }, changed: { type: 'integer' }, unchanged: { type: 'integer' }, errors: { type: 'integer' },
    changes: { type: 'array', items: { type: 'object', properties: { before: { type: 'string' }, after: { type: 'string' }, count: { type: 'integer' } } } },
    examples: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          callUuid: { type: 'string' }, caller: { type: ['string', 'null'] }, did: { type: 'string' }, startedAt: { type: 'string' },
          before: { type: 'string' }, after: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const

const activation = {
  type: 'object',
  properties: {
    version: { type: 'integer' }, previousVersion: { type: ['integer', 'null'] },
    changedPaths: { type: 'array', items: { type: 'string' } }, changed: { type: 'boolean' },
  },
} as const

const document = { type: 'object', additionalProperties: true, description: 'the switchboard config document (see config/switchboard.example.yaml)' } as const
const versionParam = { type: 'object', required: ['version'], properties: { version: { type: 'integer', minimum: 1 } } } as const
const tags = ['config']

export function configRoutes(deps: ConfigRoutesDeps) {
  const { versions } = deps
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/api/config', {
      config: { roles: ['supervisor', 'admin'] },
      schema: {
        tags, summary: 'The active routing / IVR / queue config',
        response: { 200: { type: 'object', properties: { version: { type: ['integer', 'null'] }, source: { type: 'string', enum: ['db', 'file'] }, document } } },
      },
    }, async (req) => {
      const a = await versions.loadActive()
      return { version: a.version, source: a.source, document: req.principal?.role === 'admin' ? a.config : redactSecrets(a.config) }
    })

    app.get('/api/config/versions', {
      config: { roles: ['supervisor', 'admin'] },
      schema: {
        tags, summary: 'Config version history, newest first',
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
        response: { 200: { type: 'object', properties: { versions: { type: 'array', items: versionInfo } } } },
      },
    }, async (req) => {
      const { limit } = req.query as { limit: number }
      return { versions: await versions.list(limit) }
    })

    app.get('/api/config/versions/:version', {
      config: { roles: ['supervisor', 'admin'] },
      schema: {
        tags, summary: 'One config version with its document and dry-run report', params: versionParam,
        response: { 200: { type: 'object', properties: { ...versionInfo.properties, document, dryRun: { anyOf: [dryRun, { type: 'null' }] } } } },
      },
    }, async (req) => {
      const v = await versions.get((req.params as { version: number }).version)
      return req.principal?.role === 'admin' ? v : { ...v, document: redactSecrets(v.document as SwitchboardFile) }
    })

    app.post('/api/config/versions', {
      config: { roles: ['admin'] },
      schema: {
        tags, summary: 'Propose a config version: validate and dry-run it against recent calls (not activated)',
        querystring: { type: 'object', additionalProperties: false, properties: { comment: { type: 'string', maxLength: 2000 } } },
        body: document,
        response: {
          201: {
            type: 'object',
            properties: { version: { type: 'integer' }, valid: { type: 'boolean' }, changedPaths: { type: 'array', items: { type: 'string' } }, dryRun },
          },
        },
      },
    }, async (req, reply) => {
      const { comment } = req.query as { comment?: string }
      const result = await versions.propose(req.body, req.principal!.userId, comment)
      return reply.code(201).send(result)
    })

    app.post('/api/config/versions/:version/activate', {
      config: { roles: ['admin'] },
      schema: { tags, summary: 'Activate a config version (audited)', params: versionParam, response: { 200: activation } },
    }, async (req) => versions.activate((req.params as { version: number }).version, req.principal!.userId, { ip: req.ip }))

    app.post('/api/config/rollback', {
      config: { roles: ['admin'] },
      schema: { tags, summary: 'Return to the previously active config version (audited)', response: { 200: activation } },
    }, async (req) => versions.rollback(req.principal!.userId, { ip: req.ip }))
  }
}

/**
 * Supervisors may read the config (to see queues and routes) but not the webhook signing
 * secrets written inline in it: with one they could forge deliveries to the CRM. Admins,
 * who write config versions, see the document as it is.
 */
export function redactSecrets<T>(doc: T): T {
  const copy = structuredClone(doc) as { webhooks?: { endpoints?: Array<{ secret?: string }> } }
  for (const e of copy.webhooks?.endpoints ?? []) if (e.secret !== undefined) e.secret = '(redacted)'
  return copy as T
}
