import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { DirectorySnapshot, Employee } from '../../crm/directory.ts'
import type { SwitchboardFile } from '../../config/switchboard-file.ts'
import type { PresenceState } from '../../routing/types.ts'
import { normalizePhone } from '../../crm/phone.ts'
import { NotFoundError, ValidationError } from '../../errors.ts'

const ROLES = ['agent', 'supervisor', 'qa', 'admin', 'legal'] as const
const STATES = ['ready', 'not_ready', 'on_call', 'wrap_up', 'offline'] as const

const EmployeeView = {
  type: 'object',
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' },
    groupId: { type: ['string', 'null'] }, groupName: { type: ['string', 'null'] },
    extension: { type: ['string', 'null'] }, mobile: { type: ['string', 'null'] }, officeId: { type: ['string', 'null'] },
    presence: { type: 'string', enum: STATES },
  },
} as const

interface SearchQuery { q?: string; group?: string; extension?: string; mobile?: string; state?: PresenceState; limit?: number }

/**
 * Lower case, ё as е, single spaces: "Пётр  ИВАНОВ" and "петр иванов" are the same search
 * key. Plain toLowerCase: the same as the ru locale for Cyrillic and Latin, ~50× cheaper.
 */
export function nameKey(s: string): string {
  return s.toLowerCase().replace(/ё/g, 'е').replace(/\s+/g, ' ').trim()
}

/** One collator (localeCompare with a locale argument builds one per call). */
const RU = new Intl.Collator('ru')

/** Employees sorted by name with their search keys, built once per directory snapshot. */
const indexes = new WeakMap<DirectorySnapshot, Array<{ e: Employee; key: string }>>()
function indexOf(d: DirectorySnapshot): Array<{ e: Employee; key: string }> {
  let idx = indexes.get(d)
  if (!idx) {
    idx = [...d.employees.values()].map((e) => ({ e, key: nameKey(e.name) }))
    idx.sort((a, b) => RU.compare(a.e.name, b.e.name) || (a.e.id < b.e.id ? -1 : a.e.id > b.e.id ? 1 : 0))
    indexes.set(d, idx)
  }
  return idx
}

/**
 * Employee directory (issue 13, seed 004): find colleagues by name (every word a
 * case-insensitive substring, Cyrillic included), group, extension or mobile (any
 * notation, compared in E.164), with their presence now — the list transfers pick from.
 * Served from the in-memory directory snapshot: no database round trip.
 */
export function employeesRoutes(deps: { directory: () => DirectorySnapshot; presence: (id: string) => PresenceState | undefined; config: () => SwitchboardFile }) {
  const view = (d: DirectorySnapshot, e: Employee) => ({
    id: e.id, name: e.name, role: e.role, groupId: e.groupId ?? null, groupName: (e.groupId && d.groups.get(e.groupId)?.name) || null,
    extension: e.extension ?? null, mobile: e.mobile ?? null, officeId: e.officeId ?? null, presence: deps.presence(e.id) ?? 'offline',
  })
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/api/employees', {
      config: { roles: ROLES },
      schema: {
        tags: ['employees'], summary: 'Find employees by name, group, extension or mobile, with their presence',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 100, description: 'part of the name (every word must match)' },
            group: { type: 'string', minLength: 1, maxLength: 64 },
            extension: { type: 'string', minLength: 1, maxLength: 16 },
            mobile: { type: 'string', minLength: 1, maxLength: 64, description: 'any notation; compared in E.164' },
            state: { type: 'string', enum: STATES },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: EmployeeView }, total: { type: 'integer' } } } },
      },
    }, async (req: FastifyRequest<{ Querystring: SearchQuery }>) => {
      const d = deps.directory()
      const { q, group, extension, state } = req.query
      const limit = req.query.limit ?? 50
      let mobile: string | null = null
      if (req.query.mobile !== undefined) {
        mobile = normalizePhone(req.query.mobile, deps.config().defaultRegion)
        if (!mobile) throw new ValidationError(`mobile ${JSON.stringify(req.query.mobile)} cannot be normalised to E.164 (default region ${deps.config().defaultRegion})`)
      }
      const words = q ? nameKey(q).split(' ').filter(Boolean) : []
      // Exact keys answer from the directory's maps; otherwise one pass over the (small) employee list.
      const candidates = mobile !== null ? [d.employeesByMobile.get(mobile)].filter((e): e is Employee => !!e)
        : extension !== undefined ? [d.employeesByExtension.get(extension)].filter((e): e is Employee => !!e)
          : null
      const items: Array<ReturnType<typeof view>> = []
      let total = 0
      const consider = (e: Employee, key: string) => {
        if (group !== undefined && e.groupId !== group) return
        if (extension !== undefined && e.extension !== extension) return
        if (mobile !== null && e.mobile !== mobile) return
        if (words.length > 0 && !words.every((w) => key.includes(w))) return
        if (state !== undefined && (deps.presence(e.id) ?? 'offline') !== state) return
        total++
        if (items.length < limit) items.push(view(d, e))
      }
      if (candidates) for (const e of candidates) consider(e, nameKey(e.name))
      else for (const { e, key } of indexOf(d)) consider(e, key)
      return { items, total }
    })

    app.get('/api/employees/:id', {
      config: { roles: ROLES },
      schema: {
        tags: ['employees'], summary: 'One employee with their presence',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } },
        response: { 200: EmployeeView },
      },
    }, async (req: FastifyRequest<{ Params: { id: string } }>) => {
      const d = deps.directory()
      const e = d.employees.get(req.params.id)
      if (!e) throw new NotFoundError('employee', req.params.id)
      return view(d, e)
    })
  }
}
