import path from 'node:path'
import type { EnvConfig } from '../../config/env.ts'
import type { Logger } from '../../log.ts'
import { FsObjectStore } from './fs-store.ts'
import { S3ObjectStore } from './s3-store.ts'
import type { ObjectStore } from './object-store.ts'

export type { ObjectStore, ObjectInfo, ByteRange } from './object-store.ts'

/** S3 when S3_ENDPOINT is set, else the filesystem under DATA_DIR/objects. */
export function createObjectStore(env: EnvConfig, log: Logger): ObjectStore {
  if (env.S3_ENDPOINT && env.S3_ACCESS_KEY && env.S3_SECRET_KEY) {
    return new S3ObjectStore({ endpoint: env.S3_ENDPOINT, accessKey: env.S3_ACCESS_KEY, secretKey: env.S3_SECRET_KEY, bucket: env.S3_BUCKET, region: env.S3_REGION }, log)
  }
  return new FsObjectStore(path.resolve(env.DATA_DIR, 'objects'))
}
