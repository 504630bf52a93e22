import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, readdir, rename, rm, stat, statfs, writeFile, access } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { assertSafeKey, type ByteRange, type ObjectInfo, type ObjectStore } from './object-store.ts'

/**
 * Filesystem object store: `<root>/<key>` plus `<root>/<key>.meta.json`. Writes go to a
 * temporary file first and are renamed into place, so a crash never leaves a half
 * object under the real key (the same atomicity S3 gives us).
 */
const STALE_TMP_MS = 3_600_000

export class FsObjectStore implements ObjectStore {
  readonly kind = 'filesystem' as const
  constructor(private readonly root: string) {}

  async init(): Promise<void> {
    const tmp = path.join(this.root, '.tmp')
    await mkdir(tmp, { recursive: true })
    // Uploads cut short by a killed process leave their temporary file behind; the
    // recording itself is still in the spool and will be uploaded again. An hour is far
    // longer than any upload, so nothing in flight is touched.
    const cutoff = Date.now() - STALE_TMP_MS
    for (const name of await readdir(tmp)) {
      const file = path.join(tmp, name)
      const st = await stat(file).catch(() => null)
      if (st && st.mtimeMs < cutoff) await rm(file, { force: true })
    }
  }

  async ping(): Promise<void> {
    await access(this.root)
    await statfs(this.root)
  }

  async put(key: string, body: Readable, size: number, metadata: Record<string, string>, contentType: string): Promise<void> {
    const file = this.fileOf(key)
    await mkdir(path.dirname(file), { recursive: true })
    const tmp = path.join(this.root, '.tmp', randomUUID())
    try {
      await pipeline(body, createWriteStream(tmp, { flags: 'wx' }))
      const written = (await stat(tmp)).size
      if (written !== size) throw new Error(`size mismatch writing ${key}: expected ${size}, got ${written}`)
      const meta = { ...lowerKeys(metadata), 'content-type': contentType }
      await writeFile(`${tmp}.meta`, JSON.stringify(meta))
      await rename(`${tmp}.meta`, `${file}.meta.json`)
      await rename(tmp, file)
    } finally {
      await rm(tmp, { force: true })
      await rm(`${tmp}.meta`, { force: true })
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const file = this.fileOf(key)
    try {
      const st = await stat(file)
      const metadata = JSON.parse(await readFile(`${file}.meta.json`, 'utf8')) as Record<string, string>
      return { key, size: st.size, etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`, lastModified: st.mtime, metadata }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.fileOf(key)
    await access(file)
    return createReadStream(file, range ? { start: range.start, end: range.end } : {})
  }

  async delete(key: string): Promise<void> {
    const file = this.fileOf(key)
    await rm(file, { force: true })
    await rm(`${file}.meta.json`, { force: true })
  }

  // A plain filesystem has no object lock: Switchboard's own legal_hold flag protects the file.
  async setLegalHold(): Promise<boolean> { return false }
  async setRetention(): Promise<boolean> { return false }
  async presignedGetUrl(): Promise<string | null> { return null }

  private fileOf(key: string): string {
    assertSafeKey(key)
    return path.join(this.root, key)
  }
}

function lowerKeys(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k.toLowerCase(), v]))
}
