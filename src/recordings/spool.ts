import { constants } from 'node:fs'
import { mkdir, readFile, readdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * The recording spool: the directory FreeSWITCH writes WAV files into and Switchboard
 * drains. Each recording is `<id>.wav` plus a sidecar `<id>.json` written by Switchboard
 * *before* recording starts, so that after any crash the spool alone says which call,
 * leg, agent and client a file belongs to. Files leave the spool only after the stored
 * object has been verified (or into `quarantine/`, never deleted, when the audio is broken).
 *
 * A sidecar holds one JSON document per line, each the whole sidecar at that moment; the
 * last complete line is the current one. Changes are appended, never rewritten: a crash
 * in the middle of a write leaves at most a torn last line, which `read` skips (the line
 * before it stays the truth), and no change costs a new file and a rename (creating a
 * file is by far the most expensive thing a call does to the spool's file system). A
 * sidecar written as a single document without a newline (older versions) reads the same.
 */
export interface SpoolSidecar {
  recordingId: string
  callUuid: string | null
  legUuid: string | null
  direction: 'inbound' | 'outbound' | 'internal' | 'fmc'
  caller: string | null
  callee: string | null
  did: string | null
  clientId: string | null
  agentId: string | null
  queueId: string | null
  segment: 'A' | 'B' | 'C' | null
  stereo: boolean
  startedAt: string
  stoppedAt: string | null
  /** recording paused (card data): offsets from start, so QA sees the gap */
  pausedSpans: Array<{ startMs: number; endMs: number | null }>
  /** the caller was on hold (music) during a consultation: offsets from start; kept in the row's metrics */
  holdSpans?: Array<{ startMs: number; endMs: number }>
}

export interface SpoolEntry {
  id: string
  wavPath: string
  ageMs: number
  bytes: number
}

const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Append to a sidecar that exists; never create one (O_APPEND writes land at the end, whole). */
const APPEND_EXISTING = constants.O_WRONLY | constants.O_APPEND

/** JSON.stringify never puts a raw newline inside a document, so one line is one whole sidecar. */
function sidecarLine(sidecar: SpoolSidecar): string {
  return JSON.stringify(sidecar) + '\n'
}

/** The last line that is a whole sidecar; a torn line (a crash mid-write) does not parse and is skipped. */
export function lastCompleteSidecar(text: string): SpoolSidecar | null {
  let end = text.length
  while (end > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1
    const line = text.slice(start, end).trim()
    end = start - 1
    if (!line) continue
    try {
      const doc = JSON.parse(line) as SpoolSidecar
      if (doc && typeof doc === 'object' && typeof doc.recordingId === 'string') return doc
    } catch { /* torn: look at the line before */ }
  }
  return null
}

export class Spool {
  readonly quarantineDir: string
  readonly workDir: string
  constructor(readonly dir: string) {
    this.quarantineDir = path.join(dir, 'quarantine')
    this.workDir = path.join(dir, '.work')
  }

  async init(): Promise<void> {
    await mkdir(this.quarantineDir, { recursive: true })
    await mkdir(this.workDir, { recursive: true })
  }

  static isRecordingId(id: string): boolean { return ID_PATTERN.test(id) }

  wavPath(id: string): string { return path.join(this.dir, `${this.checked(id)}.wav`) }
  sidecarPath(id: string): string { return path.join(this.dir, `${this.checked(id)}.json`) }
  workPath(id: string, ext: string): string { return path.join(this.workDir, `${this.checked(id)}.${ext}`) }

  /**
   * Write the sidecar of a recording about to start; returns the WAV path to give
   * FreeSWITCH. Written straight under its name, created exclusively (no temporary file
   * and rename): no WAV can exist before this returns (FreeSWITCH gets the path only
   * then), so a write torn by a crash sits beside no recording and nothing reads it.
   */
  async open(sidecar: SpoolSidecar): Promise<string> {
    await writeFile(this.sidecarPath(sidecar.recordingId), sidecarLine(sidecar), { flag: 'wx' })
    return this.wavPath(sidecar.recordingId)
  }

  async read(id: string): Promise<SpoolSidecar | null> {
    let text: string
    try {
      text = await readFile(this.sidecarPath(id), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    return lastCompleteSidecar(text) // null for a torn first write: treated like a WAV without one
  }

  /**
   * Change a sidecar (no-op when it is gone); returns what was written, or null. `patch`
   * may be a function of the current sidecar, so that a caller deriving the change from it
   * reads the file once, not twice. `known`: the sidecar as this process last wrote it (the
   * call keeps it), so it is not read back: the file is only checked to still be there
   * (the pipeline may have taken the quiet WAV of a long call already: then nothing is
   * written, the append never creates the file).
   */
  async update(id: string, patch: Partial<SpoolSidecar> | ((current: SpoolSidecar) => Partial<SpoolSidecar>), known?: SpoolSidecar): Promise<SpoolSidecar | null> {
    const current = known ?? await this.read(id)
    if (!current) return null
    const change = typeof patch === 'function' ? patch(current) : patch
    if (Object.keys(change).length === 0) return current // nothing to write
    const next = { ...current, ...change }
    try {
      // The leading newline ends a line a crash may have torn, so this document is never glued to it.
      await writeFile(this.sidecarPath(id), '\n' + sidecarLine(next), { flag: APPEND_EXISTING })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    return next
  }

  /**
   * A recording FreeSWITCH did not start (its `uuid_record`/`conference record` was refused
   * or the channel was gone): the sidecar goes, unless a WAV exists after all — then it
   * stays and the scanner stores the file as always. The scanner looks for WAVs, so without
   * this every refused start left a sidecar in the spool for good. Returns whether it went.
   */
  async discardUnstarted(id: string): Promise<boolean> {
    try {
      await stat(this.wavPath(id))
      return false
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    await rm(this.sidecarPath(id), { force: true })
    return true
  }

  /**
   * Recordings waiting to be stored: WAVs whose sidecar says stopped, or which have not
   * changed for `quietMs` (the call's Switchboard died before it could say so).
   */
  async pending(quietMs: number, now = Date.now()): Promise<SpoolEntry[]> {
    const names = await readdir(this.dir)
    const out: SpoolEntry[] = []
    for (const name of names) {
      if (!name.endsWith('.wav')) continue
      const id = name.slice(0, -4)
      if (!Spool.isRecordingId(id)) continue
      let st
      try { st = await stat(path.join(this.dir, name)) } catch { continue }
      const sidecar = await this.read(id)
      const stopped = sidecar?.stoppedAt != null
      const ageMs = now - st.mtimeMs
      if (stopped || ageMs >= quietMs) out.push({ id, wavPath: path.join(this.dir, name), ageMs, bytes: st.size })
    }
    return out.sort((a, b) => b.ageMs - a.ageMs)
  }

  /** Move a broken recording aside with the reason; nothing is ever deleted. */
  async quarantine(id: string, reason: string, detail: string): Promise<string> {
    const target = path.join(this.quarantineDir, `${id}.wav`)
    await rename(this.wavPath(id), target).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    await rename(this.sidecarPath(id), path.join(this.quarantineDir, `${id}.json`)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    await writeFile(path.join(this.quarantineDir, `${id}.reason.json`), JSON.stringify({ reason, detail, at: new Date().toISOString() }, null, 2))
    return target
  }

  /**
   * Only after the stored object is verified. Work files go first (including `.part-*`
   * files of a transcode killed with its process) and the WAV last: the WAV is what the
   * scanner looks for, so a crash half-way through leaves something that is found and
   * cleaned up again rather than files nobody will ever look at.
   */
  async remove(id: string): Promise<void> {
    const prefix = `${this.checked(id)}.`
    const work = await readdir(this.workDir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return [] as string[]; throw err })
    for (const name of work) if (name.startsWith(prefix)) await rm(path.join(this.workDir, name), { force: true })
    await rm(this.sidecarPath(id), { force: true })
    await rm(this.wavPath(id), { force: true })
  }

  async disk(): Promise<{ freeBytes: number; totalBytes: number; freePercent: number }> {
    const s = await statfs(this.dir)
    const totalBytes = s.blocks * s.bsize
    const freeBytes = s.bavail * s.bsize
    return { freeBytes, totalBytes, freePercent: totalBytes > 0 ? (freeBytes / totalBytes) * 100 : 0 }
  }

  private checked(id: string): string {
    if (!Spool.isRecordingId(id)) throw new Error(`not a recording id: ${JSON.stringify(id)}`)
    return id
  }
}
