/**
 * Builds the web console (src/web) into dist/web with esbuild: one ES module bundle and one
 * stylesheet with content hashes in their names (served immutable for a year), and
 * index.html naming them (served no-cache). `npm run build:web`; run by `pretest` and
 * `prestart`, and by the console plugin on server start when dist/web is missing.
 *
 * Safe when several processes build at once (parallel test files): hashed files have the
 * same content whoever writes them, and every file is written to a temporary name and
 * renamed into place. Only the CLI prunes stale assets (nothing is serving yet then).
 */
import { build } from 'esbuild'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const WEB_SRC = path.join(ROOT, 'src', 'web')
export const WEB_DIST = path.join(ROOT, 'dist', 'web')

export interface BuiltWeb { outDir: string; js: string; css: string | null; assets: string[]; ms: number }

export async function buildWeb(opts: { outDir?: string; minify?: boolean; prune?: boolean } = {}): Promise<BuiltWeb> {
  const started = Date.now()
  const outDir = opts.outDir ?? WEB_DIST
  const assetsDir = path.join(outDir, 'assets')
  await mkdir(assetsDir, { recursive: true })
  const result = await build({
    entryPoints: { main: path.join(WEB_SRC, 'main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // evergreen browsers of the last ~2 years: what QA, legal and supervisors use
    target: ['chrome115', 'firefox115', 'safari16.4', 'edge115'],
    minify: opts.minify ?? true,
    sourcemap: 'linked',
    legalComments: 'none',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    outdir: assetsDir,
    metafile: true,
    write: false,
    logLevel: 'silent',
  })
  // each file written under a temporary name and renamed into place: a server loading
  // dist/web while another process builds never reads a half-written bundle
  for (const f of result.outputFiles) {
    const tmpFile = `${f.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    await writeFile(tmpFile, f.contents)
    await rename(tmpFile, f.path)
  }
  const outputs = result.outputFiles.map((f) => path.basename(f.path))
  const js = outputs.find((f) => /^main-[A-Z0-9]+\.js$/i.test(f))
  const css = outputs.find((f) => /^main-[A-Z0-9]+\.css$/i.test(f)) ?? null
  if (!js) throw new Error(`esbuild produced no main bundle (outputs: ${outputs.join(', ')})`)
  const template = await readFile(path.join(WEB_SRC, 'index.html'), 'utf8')
  const html = template
    .replace('%MAIN_JS%', `/console/assets/${js}`)
    .replace('%MAIN_CSS%', css ? `/console/assets/${css}` : '')
  const tmp = path.join(outDir, `.index.html.${process.pid}.${Math.random().toString(36).slice(2)}`)
  await writeFile(tmp, html)
  await rename(tmp, path.join(outDir, 'index.html'))
  if (opts.prune) {
    for (const f of await readdir(assetsDir)) if (!outputs.includes(f)) await rm(path.join(assetsDir, f), { force: true })
  }
  return { outDir, js, css, assets: outputs, ms: Date.now() - started }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildWeb({ prune: true }).then((b) => {
    process.stdout.write(`web console built in ${b.ms} ms → ${path.relative(ROOT, b.outDir)} (${b.assets.join(', ')})\n`)
  }, (err: unknown) => {
    process.stderr.write(`web console build failed: ${err instanceof Error ? err.message : String(err)}\n`)
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } }> }).errors ?? []
    for (const e of errors) process.stderr.write(`  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}\n`)
    process.exit(1)
  })
}
