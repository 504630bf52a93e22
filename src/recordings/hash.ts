/**
 * SHA-256 of recordings: of a whole file (streamed, constant memory), or of the bytes
 * flowing through a pipe (hash while uploading, so the file is read once).
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** Streaming SHA-256 of a file, as lowercase hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path, { highWaterMark: 256 * 1024 }), async function (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk)
  })
  return hash.digest('hex')
}

/**
 * A pass-through stream that hashes and counts what flows through it:
 * `pipeline(createReadStream(f), h, upload)`, then `h.digestHex()` and `h.bytes`.
 * The digest is available once the stream has ended (also via the `digest` promise,
 * which rejects if the stream errors or is destroyed before its end).
 */
export class HashingStream extends Transform {
  readonly algorithm = 'sha256'
  bytes = 0
  readonly digest: Promise<string>
  #hash: Hash = createHash('sha256')
  #hex: string | undefined
  #resolve!: (hex: string) => void

  constructor() {
    super()
    let reject!: (e: Error) => void
    this.digest = new Promise<string>((resolve, rej) => {
      this.#resolve = resolve
      reject = rej
    })
    this.digest.catch(() => {}) // a rejection nobody awaits is not an unhandled one
    this.once('error', (e: Error) => reject(e))
    this.once('close', () => {
      if (this.#hex === undefined) reject(new Error('HashingStream closed before the end of its input'))
    })
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk)
    this.bytes += chunk.length
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    this.#hex = this.#hash.digest('hex')
    this.#resolve(this.#hex)
    cb()
  }

  /** The hex digest; throws if the stream has not ended yet. */
  digestHex(): string {
    if (this.#hex === undefined) throw new Error('HashingStream: digest requested before the stream ended')
    return this.#hex
  }
}

export function createHashingStream(): HashingStream {
  return new HashingStream()
}

/** SHA-256 of everything a readable stream yields (e.g. an object read back from the store). */
export async function sha256Stream(source: AsyncIterable<Buffer | string>): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of source) hash.update(chunk)
  return hash.digest('hex')
}
