/**
 * Where ffmpeg and ffprobe live. Order (DESIGN §5): `FFMPEG_PATH`/`FFPROBE_PATH`, else the
 * binaries found on `PATH` (a distribution's ffmpeg is newer and ~2× faster for Opus), else
 * the static binaries shipped by @ffmpeg-installer/@ffprobe-installer so that
 * `npm install` alone suffices.
 */
import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join } from 'node:path'
import ffmpeg from 'fluent-ffmpeg'
import { SwitchboardError } from '../errors.ts'

export type FfmpegSource = 'env' | 'path' | 'npm'

export interface FfmpegPaths {
  ffmpegPath: string
  ffprobePath: string
  /** where ffmpeg came from (ffprobe is looked up the same way, independently) */
  source: FfmpegSource
  probeSource: FfmpegSource
}

export interface EncoderSupport {
  version: string
  libopus: boolean
  /** ffmpeg's native Opus encoder (experimental; we do not use it) */
  opus: boolean
  libmp3lame: boolean
}

/** ffmpeg/ffprobe cannot be found or lack what the pipeline needs. */
export class FfmpegUnavailableError extends SwitchboardError {
  constructor(message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super('ffmpeg_unavailable', message, 503, details, options)
  }
}

type Env = Record<string, string | undefined>

const require = createRequire(import.meta.url)
const exe = process.platform === 'win32' ? '.exe' : ''

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function findOnPath(name: string, env: Env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name + exe)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

function npmBinary(pkg: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe'): string | undefined {
  try {
    // these packages throw at load time on unsupported platforms: load lazily, inside try
    const mod = require(pkg) as { path?: string }
    return mod.path
  } catch {
    return undefined
  }
}

function resolveOne(tool: 'ffmpeg' | 'ffprobe', env: Env, siblingOf?: string): { path: string; source: FfmpegSource } {
  const envName = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'
  const fromEnv = env[envName]
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new FfmpegUnavailableError(`${envName}=${fromEnv} is not an executable file`, { [envName]: fromEnv })
    }
    return { path: fromEnv, source: 'env' }
  }
  // FFMPEG_PATH=/opt/ffmpeg/bin/ffmpeg given alone: take the ffprobe next to it
  if (siblingOf) {
    const sibling = join(dirname(siblingOf), tool + exe)
    if (isExecutable(sibling)) return { path: sibling, source: 'env' }
  }
  const onPath = findOnPath(tool, env)
  if (onPath) return { path: onPath, source: 'path' }
  const pkg = tool === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe'
  const shipped = npmBinary(pkg)
  if (shipped) {
    if (!isExecutable(shipped)) {
      throw new FfmpegUnavailableError(
        `${tool} shipped by ${pkg} at ${shipped} is not executable by this user (chmod +x it, or set ${envName})`,
        { path: shipped },
      )
    }
    return { path: shipped, source: 'npm' }
  }
  throw new FfmpegUnavailableError(`${tool} not found: set ${envName}, install ${tool} on PATH, or install ${pkg}`, { tool })
}

/** Resolve ffmpeg and ffprobe. Synchronous and cheap (no process is started). */
export function resolveFfmpeg(env: Env = process.env): FfmpegPaths {
  const ff = resolveOne('ffmpeg', env)
  const probe = resolveOne('ffprobe', env, ff.source === 'env' ? ff.path : undefined)
  return { ffmpegPath: ff.path, ffprobePath: probe.path, source: ff.source, probeSource: probe.source }
}

let current: FfmpegPaths | undefined

/** Use these binaries for every later probe/transcode/analysis, and in fluent-ffmpeg's global config. */
export function configureFfmpeg(paths: FfmpegPaths): FfmpegPaths {
  current = paths
  ffmpeg.setFfmpegPath(paths.ffmpegPath)
  ffmpeg.setFfprobePath(paths.ffprobePath)
  return paths
}

/** The configured binaries; resolves from process.env on first use. */
export function ffmpegPaths(): FfmpegPaths {
  return current ?? configureFfmpeg(resolveFfmpeg(process.env))
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new FfmpegUnavailableError(`cannot run ${file}: ${e.message}`, { file }, { cause: e }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new FfmpegUnavailableError(`${file} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim().slice(-500)}`, { file }))
    })
  })
}

/**
 * Check that ffmpeg has the encoders the pipeline uses (libopus, libmp3lame) and that
 * ffprobe runs. Rejects with FfmpegUnavailableError naming what is missing.
 */
export async function checkEncoders(paths: FfmpegPaths = ffmpegPaths(), timeoutMs = 10_000): Promise<EncoderSupport> {
  const [encoders, version] = await Promise.all([
    run(paths.ffmpegPath, ['-hide_banner', '-encoders'], timeoutMs),
    run(paths.ffmpegPath, ['-hide_banner', '-version'], timeoutMs),
    run(paths.ffprobePath, ['-hide_banner', '-version'], timeoutMs),
  ])
  const has = (name: string) => new RegExp(`^\\s*A\\S*\\s+${name}\\s`, 'm').test(encoders)
  const support: EncoderSupport = {
    version: /ffmpeg version (\S+)/.exec(version)?.[1] ?? 'unknown',
    libopus: has('libopus'),
    opus: has('opus'),
    libmp3lame: has('libmp3lame'),
  }
  const missing = (['libopus', 'libmp3lame'] as const).filter((k) => !support[k])
  if (missing.length > 0) {
    throw new FfmpegUnavailableError(
      `ffmpeg at ${paths.ffmpegPath} (${paths.source}, version ${support.version}) lacks encoder(s) ${missing.join(', ')}; ` +
        'use a build with --enable-libopus --enable-libmp3lame (set FFMPEG_PATH)',
      { ffmpegPath: paths.ffmpegPath, missing },
    )
  }
  return support
}
