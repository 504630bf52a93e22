/**
 * CRM over HTTP:
 *   POST /api/crm/import?type=clients|employees   (admin) the nightly export as the body —
 *        CSV (text/csv), JSON Lines (application/x-ndjson) or a JSON array
 *        (application/json) — streamed straight into the importer (never buffered);
 *        answers the import report.
 *   GET  /api/clients/by-phone/:phone             (agent, qa, supervisor, legal, admin)
 *        the client card summary for a number in any notation, or 404.
 *
 * The content-type parsers in this plugin hand the raw request stream to the route, so the
 * size limit is enforced by the importer while it reads (413), and up front from
 * Content-Length. Other plugins keep fastify's JSON parser (encapsulation).
 */
import type { FastifyInstance } from 'fastify'
import type { Readable } from 'node:stream'
import type { Pool } from '../db/pool.ts'
import type { Logger } from '../log.ts'
import type { SwitchboardFile } from '../config/switchboard-file.ts'
import { NotFoundError, ValidationError } from '../errors.ts'
import { normalizePhone } from './phone.ts'
import { ImportTooLargeError, runImport } from './import.ts'

export interface CrmRoutesDeps {
  pool: Pool
  log: Logger
  config: () => SwitchboardFile
  /** Largest import body in bytes (default 512 MiB). */
  maxImportBytes?: number
}

const STREAM_TYPES = ['text/csv', 'application/csv', 'application/json', 'application/x-ndjson', 'application/jsonl', 'application/x-jsonlines', 'text/plain']

const problem = { type: 'object', additionalProperties: true, properties: { code: { type: 'string' }, detail: { type: 'string' }, line: { type: 'integer' } } } as const

const importProblem = {
  type: 'object',
  properties: {
    line: { type: 'integer' }, id: { type: 'string' }, code: { type: 'string' }, field: { type: 'string' },
    value: { type: 'string' }, message: { type: 'string' }, rejected: { type: 'string', enum: ['row', 'phone', 'field'] },
  },
} as const

export const importReportSchema = {
  type: 'object',
  properties: {
    runId: { type: 'integer' },
    kind: { type: 'string', enum: ['clients', 'employees'] },
    format: { type: ['string', 'null'], enum: ['csv', 'jsonl', 'json', null] },
    delimiter: { type: 'string' },
    state: { type: 'string', enum: ['succeeded', 'failed'] },
    rows: { type: 'object', properties: { read: { type: 'integer' }, imported: { type: 'integer' }, rejected: { type: 'integer' } } },
    records: { type: 'integer', description: 'clients / employees upserted (a client whose rows fall in two batches counts twice)' },
    phones: { type: 'object', properties: { imported: { type: 'integer' }, rejected: { type: 'integer' }, reassigned: { type: 'integer' }, removed: { type: 'integer' } } },
    problems: { type: 'array', items: importProblem },
    problemCount: { type: 'integer' },
    reassignments: { type: 'array', items: { type: 'object', properties: { line: { type: 'integer' }, phone: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } } } },
    durationMs: { type: 'integer' },
    rowsPerSec: { type: 'integer' },
  },
} as const

const clientCard = {
  type: 'object',
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, inn: { type: ['string', 'null'] },
    segment: { type: ['string', 'null'] }, kind: { type: 'string' }, region: { type: ['string', 'null'] }, tz: { type: ['string', 'null'] },
    phone: { type: 'string', description: 'the number asked for, in E.164' },
    phones: { type: 'array', items: { type: 'string' } },
    manager: {
      anyOf: [{ type: 'null' }, {
        type: 'object',
        properties: { id: { type: 'string' }, name: { type: 'string' }, extension: { type: ['string', 'null'] }, mobile: { type: ['string', 'null'] }, groupId: { type: ['string', 'null'] } },
      }],
    },
    attributes: { type: 'object', additionalProperties: true },
    updatedAt: { type: 'string' },
  },
} as const

export function crmRoutes(deps: CrmRoutesDeps) {
  const maxBytes = deps.maxImportBytes ?? 512 * 1024 * 1024
  return async (app: FastifyInstance): Promise<void> => {
    // Keep the body as a stream for this plugin's routes (the importer parses it).
    for (const type of ['application/json', 'text/plain']) if (app.hasContentTypeParser(type)) app.removeContentTypeParser(type)
    app.addContentTypeParser(STREAM_TYPES, (_req, payload, done) => done(null, payload))

    app.post('/api/crm/import', {
      bodyLimit: maxBytes,
      config: { roles: ['admin'] },
      schema: {
        tags: ['crm'],
        summary: 'Import the CRM export (clients or employees) from CSV, JSON Lines or a JSON array',
        description: 'Rows are upserted in batches; rejected rows are reported with their line numbers. Import employees before clients.',
        querystring: { type: 'object', additionalProperties: false, properties: { type: { type: 'string', enum: ['clients', 'employees'], default: 'clients' } } },
        consumes: STREAM_TYPES,
        response: { 200: importReportSchema, 400: problem, 409: problem, 413: problem },
      },
    }, async (req) => {
      const { type } = req.query as { type: 'clients' | 'employees' }
      const length = Number(req.headers['content-length'] ?? Number.NaN)
      if (Number.isFinite(length) && length > maxBytes) throw new ImportTooLargeError(maxBytes)
      const body = req.body as Readable | undefined
      if (!body || typeof (body as Readable).on !== 'function') throw new ValidationError('the request body is empty: send the export as text/csv, application/x-ndjson or application/json')
      const cfg = deps.config()
      return runImport(type, body, {
        pool: deps.pool, log: deps.log, defaultRegion: cfg.defaultRegion, config: cfg, maxBytes,
        actor: req.principal?.userId, source: `http:${req.headers['content-type'] ?? ''}`.slice(0, 100),
      })
    })

    app.get('/api/clients/by-phone/:phone', {
      config: { roles: ['agent', 'qa', 'supervisor', 'legal', 'admin'] },
      schema: {
        tags: ['crm'],
        summary: 'Client card summary for a phone number (any notation; normalised with the config defaultRegion)',
        params: { type: 'object', required: ['phone'], properties: { phone: { type: 'string', minLength: 3, maxLength: 64 } } },
        response: { 200: clientCard, 400: problem, 404: problem },
      },
    }, async (req) => {
      const raw = (req.params as { phone: string }).phone
      const e164 = normalizePhone(raw, deps.config().defaultRegion)
      if (e164 === null) throw new ValidationError(`${JSON.stringify(raw)} is not a phone number`, { field: 'phone' })
      const r = await deps.pool.query<{
        id: string; name: string; inn: string | null; segment: string | null; kind: string; region: string | null; tz: string | null
        attributes: Record<string, unknown>; updated_at: Date; phones: string[]
        manager_id: string | null; manager_name: string | null; manager_extension: string | null; manager_mobile: string | null; manager_group: string | null
      }>(
        `SELECT c.id, c.name, c.inn, c.segment, c.kind, c.region, c.tz, c.attributes, c.updated_at,
                ARRAY(SELECT phone FROM client_phones WHERE client_id = c.id ORDER BY phone) AS phones,
                m.id AS manager_id, m.name AS manager_name, m.extension AS manager_extension,
                m.mobile AS manager_mobile, m.group_id AS manager_group
           FROM client_phones p
           JOIN clients c ON c.id = p.client_id
           LEFT JOIN employees m ON m.id = c.assigned_manager_id
          WHERE p.phone = $1`, [e164])
      const c = r.rows[0]
      if (!c) throw new NotFoundError('client with phone', e164)
      return {
        id: c.id, name: c.name, inn: c.inn, segment: c.segment, kind: c.kind, region: c.region, tz: c.tz,
        phone: e164, phones: c.phones, attributes: c.attributes, updatedAt: c.updated_at.toISOString(),
        manager: c.manager_id === null ? null : { id: c.manager_id, name: c.manager_name, extension: c.manager_extension, mobile: c.manager_mobile, groupId: c.manager_group },
      }
    })
  }
}
