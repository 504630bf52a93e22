import t from 'tap'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parse } from 'yaml'
import { EnvSchema, readEnvConfig } from '../src/config/env.ts'
import { ROOT } from './support/process.ts'

interface Service {
  image?: string
  build?: unknown
  environment?: Record<string, string>
  volumes?: string[]
  ports?: string[]
  healthcheck?: unknown
  depends_on?: Record<string, { condition: string }>
}

t.test('compose.yaml wires the real stack consistently with the config schema', async (t) => {
  const compose = parse(await readFile(path.join(ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> }
  const s = compose.services
  t.same(Object.keys(s).sort(), ['freeswitch', 'minio', 'minio-init', 'postgres', 'switchboard'], 'services')
  for (const name of ['postgres', 'minio', 'freeswitch', 'switchboard']) t.ok(s[name].healthcheck, `${name} has a healthcheck`)

  const env = s.switchboard.environment!
  const known = new Set(Object.keys(EnvSchema.properties))
  for (const key of Object.keys(env)) t.ok(known.has(key), `${key} is a variable the config schema knows`)
  const cfg = readEnvConfig(env)   // throws, naming the variable, if compose sets a bad value
  t.equal(cfg.HOST, '0.0.0.0', 'listens on all interfaces inside the container')
  t.ok(s.switchboard.ports!.includes(`${cfg.PORT}:${cfg.PORT}`), 'HTTP port published')
  t.ok(s.switchboard.ports!.includes(`${cfg.ESL_PORT}:${cfg.ESL_PORT}`), 'ESL port published')
  t.match(cfg.DATABASE_URL, /@postgres:5432\//, 'uses the compose Postgres')
  t.equal(cfg.S3_ENDPOINT, 'http://minio:9000', 'uses the compose MinIO')
  t.equal(cfg.S3_ACCESS_KEY, s['minio-init'].environment!.S3_ACCESS_KEY, 'the init job creates the user Switchboard uses')
  t.equal(cfg.S3_BUCKET, s['minio-init'].environment!.S3_BUCKET, 'and the bucket')
  t.equal(s.switchboard.depends_on!['minio-init'].condition, 'service_completed_successfully')

  const spoolOf = (svc: Service) => svc.volumes!.find((v) => v.endsWith(`:${cfg.SPOOL_DIR}`))
  t.ok(spoolOf(s.switchboard), 'switchboard mounts the spool')
  t.equal(spoolOf(s.freeswitch)?.split(':')[0], spoolOf(s.switchboard)?.split(':')[0], 'FreeSWITCH writes into the same spool volume')
  const pgVolume = s.postgres.volumes![0].split(':')[0]
  t.not(pgVolume, spoolOf(s.switchboard)!.split(':')[0], 'recordings and Postgres never share a volume')
  t.not(pgVolume, s.minio.volumes![0].split(':')[0])
  for (const v of ['pgdata', 'objects', 'spool', 'sbdata']) t.ok(v in compose.volumes, `volume ${v} declared`)

  const init = await readFile(path.join(ROOT, 'storage', 'init-minio.sh'), 'utf8')
  t.match(init, /mb --with-lock/, 'bucket created with object lock')
  t.match(init, /version enable/, 'versioning')
  const policy = JSON.parse(await readFile(path.join(ROOT, 'storage', 'switchboard-policy.json'), 'utf8')) as { Statement: Array<{ Action: string[] }> }
  const actions = policy.Statement.flatMap((st) => st.Action)
  t.notOk(actions.some((a) => a === 's3:*' || a.startsWith('admin:')), 'least privilege: no wildcard or admin actions')
  t.ok(actions.includes('s3:PutObjectLegalHold'), 'may set legal hold')
})
