// Minimal typings for yazl / yauzl (the parts Switchboard uses); the packages ship none.
declare module 'yazl' {
  import type { Readable } from 'node:stream'
  interface EntryOptions { mtime?: Date; mode?: number; compress?: boolean; size?: number; forceZip64Format?: boolean }
  export class ZipFile {
    outputStream: Readable
    addReadStream(stream: Readable, metadataPath: string, options?: EntryOptions): void
    addBuffer(buffer: Buffer, metadataPath: string, options?: EntryOptions): void
    end(options?: { forceZip64Format?: boolean; comment?: string }, cb?: (size: number) => void): void
    on(event: 'error', fn: (err: Error) => void): this
  }
}

declare module 'yauzl' {
  import type { Readable } from 'node:stream'
  export interface Entry { fileName: string; uncompressedSize: number; compressedSize: number }
  export interface ZipFile {
    entryCount: number
    eachEntry(): AsyncIterable<Entry>
    openReadStreamPromise(entry: Entry): Promise<Readable>
    close(): void
  }
  export function openPromise(path: string, options?: { autoClose?: boolean; strictFileNames?: boolean; validateEntrySizes?: boolean }): Promise<ZipFile>
  const yauzl: { openPromise: typeof openPromise }
  export default yauzl
}
