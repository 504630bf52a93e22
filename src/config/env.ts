import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError } from '../errors.ts'

/**
 * Process settings read from the environment. The names are fixed by DESIGN.md §5 so
 * that operators, compose.yaml and the tests agree. Everything about call handling
 * (offices, queues, IVR, routing, recording policy) lives in the switchboard config file.
 */
const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))

export const EnvSchema = Type.Object({
  PORT: Port,
  HOST: Type.String({ minLength: 1 }),
  ESL_PORT: Port,
  ESL_HOST: Type.String({ minLength: 1 }),
  /** host:port FreeSWITCH dials back for calls Switchboard originates (`&socket(…)`); default ESL_HOST:<listening port>. */
  ESL_ADVERTISE_ADDR: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:\\[\\]-]+:[0-9]{1,5}$' })),
  /** Unset: no inbound ESL client (features that originate calls answer 503). */
  FS_ESL_HOST: Type.Optional(Type.String({ minLength: 1 })),
  FS_ESL_PORT: Port,
  FS_ESL_PASSWORD: Type.String(),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ minLength: 1 }),
  SPOOL_DIR: Type.String({ minLength: 1 }),
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  S3_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  S3_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  S3_BUCKET: Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9.-]+[a-z0-9]$' }),
  S3_REGION: Type.String({ minLength: 1 }),
  SWITCHBOARD_CONFIG: Type.Optional(Type.String({ minLength: 1 })),
  SWITCHBOARD_ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  LOG_LEVEL: LogLevel,
  FFMPEG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  FFPROBE_PATH: Type.Optional(Type.String({ minLength: 1 })),
  NODE_NAME: Type.String({ minLength: 1 }),
}, { additionalProperties: false })

export type EnvConfig = Static<typeof EnvSchema>

const INTEGER_KEYS = new Set(['PORT', 'ESL_PORT', 'FS_ESL_PORT'])

/** Read the known keys from `env`, fill defaults, coerce numbers, validate; throws ConfigError naming the variable. */
export function readEnvConfig(env: NodeJS.ProcessEnv): EnvConfig {
  const dataDir = env.DATA_DIR ?? './data'
  const raw: Record<string, unknown> = {
    PORT: '8080', HOST: '127.0.0.1', ESL_PORT: '8084', ESL_HOST: '127.0.0.1',
    FS_ESL_PORT: '8021', FS_ESL_PASSWORD: 'ClueCon',
    DATA_DIR: dataDir, SPOOL_DIR: `${dataDir}/spool`, S3_BUCKET: 'recordings', S3_REGION: 'us-east-1',
    LOG_LEVEL: 'info', NODE_NAME: env.HOSTNAME ?? 'switchboard-1',
  }
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  for (const key of INTEGER_KEYS) {
    const v = raw[key]
    if (typeof v === 'string') raw[key] = /^\d+$/.test(v) ? Number(v) : v
  }
  const errors = [...Value.Errors(EnvSchema, raw)]
  if (errors.length > 0) {
    const lines = errors.map((e) => `${e.path.slice(1) || '(root)'}: ${e.message} (got ${JSON.stringify(e.value)})`)
    throw new ConfigError(`invalid environment: ${lines.join('; ')}`, { errors: lines })
  }
  const cfg = raw as EnvConfig
  const s3Keys = [cfg.S3_ENDPOINT, cfg.S3_ACCESS_KEY, cfg.S3_SECRET_KEY]
  if (s3Keys.some((v) => v !== undefined) && s3Keys.some((v) => v === undefined)) {
    throw new ConfigError('invalid environment: S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY must be set together (or none, for the filesystem store)')
  }
  return cfg
}
