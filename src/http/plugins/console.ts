import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { NotFoundError, SwitchboardError } from '../../errors.ts'
import type { Logger } from '../../log.ts'

/** dist/web of this checkout (scripts/build-web.ts writes it). */
export const CONSOLE_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/web')

export interface ConsoleRoutesDeps {
  log: Logger
  /** built console (default dist/web) */
  dir?: string
  /** build it now when it is missing (a fresh checkout started with `node --import tsx src/main.ts`); default true */
  buildIfMissing?: boolean
}

interface Asset { body: Buffer; type: string; etag: string }

export class ConsoleUnavailableError extends SwitchboardError {
  constructor(reason: string) { super('console_unavailable', `the web console is not built (${reason}): run npm run build:web`, 503) }
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.html': 'text/html; charset=utf-8',
}

/**
 * The page's own policy, replacing helmet's default for the console shell: scripts only
 * from this origin; inline styles allowed because wavesurfer.js draws into a shadow root
 * with a <style> element; media from this origin (the Range-streamed recordings) and
 * blob: (nothing else); no framing. helmet's `upgrade-insecure-requests` is left out, it
 * would break a console reached over plain http on a private network.
 */
export const CONSOLE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
  "media-src 'self' blob:", "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "worker-src 'self' blob:",
].join('; ')

const etagOf = (b: Buffer) => `"${createHash('sha256').update(b).digest('base64url').slice(0, 27)}"`

async function loadConsole(dir: string): Promise<{ index: Asset; assets: Map<string, Asset> }> {
  const html = await readFile(path.join(dir, 'index.html'))
  const assets = new Map<string, Asset>()
  const assetsDir = path.join(dir, 'assets')
  for (const name of existsSync(assetsDir) ? await readdir(assetsDir) : []) {
    const body = await readFile(path.join(assetsDir, name))
    assets.set(name, { body, type: TYPES[path.extname(name)] ?? 'application/octet-stream', etag: etagOf(body) })
  }
  return { index: { body: html, type: TYPES['.html'], etag: etagOf(html) }, assets }
}

/**
 * The web console under /console/: a single-page app, so every /console/* path that is
 * not an asset answers index.html (deep links such as /console/recordings/:id or
 * /console/clients/by-phone/+7… that CRM webhooks hand out). Public, because the shell
 * holds no data: everything shown comes from the role-checked API.
 *
 * The files are read once at start-up into memory (a few hundred kB) — a restart or
 * deployment serves a new build; hashed asset names let browsers cache them for a year.
 */
export function consoleRoutes(deps: ConsoleRoutesDeps) {
  const dir = deps.dir ?? CONSOLE_DIST
  return async function consolePlugin(app: FastifyInstance): Promise<void> {
    let files: Awaited<ReturnType<typeof loadConsole>> | null = null
    let unavailable = ''
    try {
      if (!existsSync(path.join(dir, 'index.html')) && (deps.buildIfMissing ?? true)) {
        const { buildWeb } = await import('../../../scripts/build-web.ts')
        const built = await buildWeb({ outDir: dir })
        deps.log.info({ dir, ms: built.ms }, 'web console was not built: built it now')
      }
      files = await loadConsole(dir)
      deps.log.debug({ dir, assets: files.assets.size }, 'web console loaded')
    } catch (err) {
      unavailable = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${dir} is missing` : 'build failed'
      deps.log.error({ err, dir }, 'web console unavailable: run npm run build:web')
    }

    const send = (req: FastifyRequest, reply: FastifyReply, a: Asset, cache: string): FastifyReply => {
      reply.header('Cache-Control', cache).header('ETag', a.etag).type(a.type)
      const inm = req.headers['if-none-match']
      if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === a.etag)) return reply.code(304).send()
      return reply.send(a.body)
    }

    const shell = async (req: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
      if (!files) throw new ConsoleUnavailableError(unavailable)
      const rest = req.params['*'] ?? ''
      if (rest.startsWith('assets/')) {
        const asset = files.assets.get(rest.slice('assets/'.length))
        if (!asset) throw new NotFoundError('console asset', rest)
        return send(req, reply, asset, 'public, max-age=31536000, immutable')
      }
      reply.header('Content-Security-Policy', CONSOLE_CSP).header('Referrer-Policy', 'same-origin')
      return send(req, reply, files.index, 'no-cache')
    }

    const schema = { tags: ['console'], summary: 'Web console (single-page app; data comes from the role-checked API)', hide: true, security: [] }
    app.get('/console', { config: { roles: 'public' }, schema }, async (_req, reply) => reply.redirect('/console/', 302))
    app.get('/console/', { config: { roles: 'public' }, schema }, shell)
    app.get('/console/*', { config: { roles: 'public' }, schema }, shell)
  }
}
