import S3rver from 's3rver'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { freePort } from '../../src/db/embedded.ts'

export interface TestS3 {
  endpoint: string
  accessKey: string
  secretKey: string
  bucket: string
  /** Take the server down (outage) and bring it back on the same port and data. */
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

/** A real S3 HTTP server (s3rver) on 127.0.0.1, with its files in a temp dir. */
export async function startTestS3(bucket = 'recordings'): Promise<TestS3> {
  const directory = await mkdtemp(path.join(tmpdir(), 'sb-s3rver-'))
  const port = await freePort()
  let server: S3rver | null = null
  const start = async () => {
    server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] })
    const addr = (await server.run()) as AddressInfo
    if (addr.port !== port) throw new Error('s3rver did not bind the expected port')
  }
  const stop = async () => {
    if (server) { await server.close(); server = null }
  }
  await start()
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    bucket,
    start,
    stop,
    close: async () => { await stop(); await rm(directory, { recursive: true, force: true }) },
  }
}
