import * as Minio from 'minio'
import type { Readable } from 'node:stream'
import type { Logger } from '../../log.ts'
import { assertSafeKey, type ByteRange, type ObjectInfo, type ObjectStore } from './object-store.ts'

export interface S3Settings {
  endpoint: string // http(s)://host:port
  accessKey: string
  secretKey: string
  bucket: string
  region: string
}

/**
 * Any S3 server through the minio client, written against the generic S3 API only
 * (Object Lock included), never MinIO admin features: operators may run Ceph RGW,
 * SeaweedFS, Garage or AWS instead (DESIGN.md §6).
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const
  private readonly client: Minio.Client
  private objectLock: boolean | undefined

  constructor(private readonly s: S3Settings, private readonly log: Logger) {
    const url = new URL(s.endpoint)
    this.client = new Minio.Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
      useSSL: url.protocol === 'https:',
      accessKey: s.accessKey,
      secretKey: s.secretKey,
      region: s.region,
      pathStyle: true,
    })
  }

  async init(): Promise<void> {
    if (!(await this.client.bucketExists(this.s.bucket))) {
      // Compose creates the bucket with object lock (storage/); this is the fallback for a bare server.
      await this.client.makeBucket(this.s.bucket, this.s.region)
      this.log.info({ bucket: this.s.bucket }, 'created bucket (without object lock: create it with storage/init to get WORM protection)')
    }
  }

  async ping(): Promise<void> {
    await this.client.bucketExists(this.s.bucket)
  }

  async put(key: string, body: Readable, size: number, metadata: Record<string, string>, contentType: string): Promise<void> {
    assertSafeKey(key)
    await this.client.putObject(this.s.bucket, key, body, size, { ...metadata, 'Content-Type': contentType })
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    assertSafeKey(key)
    try {
      const st = await this.client.statObject(this.s.bucket, key)
      const metadata: Record<string, string> = {}
      for (const [k, v] of Object.entries(st.metaData ?? {})) metadata[k.toLowerCase().replace(/^x-amz-meta-/, '')] = String(v)
      return { key, size: st.size, etag: `"${st.etag}"`, lastModified: st.lastModified, metadata }
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'NotFound' || code === 'NoSuchKey') return null
      throw err
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key)
    if (!range) return this.client.getObject(this.s.bucket, key)
    return this.client.getPartialObject(this.s.bucket, key, range.start, range.end - range.start + 1)
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key)
    await this.client.removeObject(this.s.bucket, key)
  }

  async setLegalHold(key: string, on: boolean): Promise<boolean> {
    if (!(await this.supportsObjectLock())) return false
    await this.client.setObjectLegalHold(this.s.bucket, key, { status: on ? 'ON' : 'OFF' } as never)
    return true
  }

  async setRetention(key: string, until: Date): Promise<boolean> {
    if (!(await this.supportsObjectLock())) return false
    await this.client.putObjectRetention(this.s.bucket, key, { mode: 'GOVERNANCE', retainUntilDate: until.toISOString() } as never)
    return true
  }

  async presignedGetUrl(key: string, expirySec: number): Promise<string | null> {
    assertSafeKey(key)
    return this.client.presignedGetObject(this.s.bucket, key, expirySec)
  }

  /** Object Lock is a bucket property; servers without it (s3rver, some RGW setups) degrade to Switchboard's own flags. */
  private async supportsObjectLock(): Promise<boolean> {
    if (this.objectLock === undefined) {
      try {
        const cfg: unknown = await this.client.getObjectLockConfig(this.s.bucket)
        this.objectLock = (cfg as { objectLockEnabled?: string }).objectLockEnabled === 'Enabled'
      } catch (err) {
        this.objectLock = false
        this.log.info({ bucket: this.s.bucket, err: (err as Error).message }, 'object store has no S3 Object Lock: legal hold and retention are enforced by Switchboard only')
      }
    }
    return this.objectLock
  }
}
