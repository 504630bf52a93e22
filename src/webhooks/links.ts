import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Pool } from '../db/pool.ts'
import type { LinksConfig } from '../config/switchboard-file.ts'
import { SwitchboardError } from '../errors.ts'
import { sharedSecret } from './secrets.ts'

/**
 * Stable console URLs (the web console serves these paths) and short-lived signed
 * download links. Deep links are pure string building from `links.publicBaseUrl`, so a
 * CRM can also build them itself: /console/clients/:id, /console/clients/by-phone/:e164,
 * /console/recordings/:id.
 */
export function baseUrlOf(cfg: Pick<LinksConfig, 'publicBaseUrl'>): string {
  return cfg.publicBaseUrl.replace(/\/+$/, '')
}

export const consoleLinks = {
  client: (cfg: Pick<LinksConfig, 'publicBaseUrl'>, clientId: string) => `${baseUrlOf(cfg)}/console/clients/${encodeURIComponent(clientId)}`,
  clientByPhone: (cfg: Pick<LinksConfig, 'publicBaseUrl'>, e164: string) => `${baseUrlOf(cfg)}/console/clients/by-phone/${encodeURIComponent(e164)}`,
  recording: (cfg: Pick<LinksConfig, 'publicBaseUrl'>, recordingId: string) => `${baseUrlOf(cfg)}/console/recordings/${encodeURIComponent(recordingId)}`,
}

/** Path of the public, signature-checked audio route (see http/plugins/webhooks.ts). */
export const SIGNED_AUDIO_PATH = '/api/links/recordings/:id/audio'
const SUBJECT_RE = /^[A-Za-z0-9_.:@-]{1,128}$/

export class LinkSecretMissingError extends SwitchboardError {
  constructor(env: string) { super('link_secret_missing', `links.signingSecretEnv names ${env}, which is not set or shorter than 16 characters`, 500) }
}

export interface SignedLink { url: string; expiresAt: string }
export type LinkVerdict = 'ok' | 'bad_signature' | 'expired'

/**
 * Signed download links: HMAC-SHA256 over (recording id, expiry, who it was issued to)
 * with a server key — from the env var `links.signingSecretEnv` names, else a key made
 * once and shared by every node through Postgres. Anyone holding the URL may fetch the
 * audio until it expires, so the lifetime is short (15 min by default) and every fetch is
 * audited under the subject the link was issued to (e.g. `webhook:crm`).
 */
export class LinkSigner {
  private key: Promise<string> | null = null
  private keySource: string | undefined

  constructor(private readonly deps: { pool: Pick<Pool, 'query'>; links: () => LinksConfig; env?: NodeJS.ProcessEnv }) {}

  private secret(): Promise<string> {
    const envName = this.deps.links().signingSecretEnv
    if (this.key === null || this.keySource !== envName) {
      this.keySource = envName
      if (envName) {
        const v = (this.deps.env ?? process.env)[envName]
        if (!v || v.length < 16) { this.key = null; return Promise.reject(new LinkSecretMissingError(envName)) }
        this.key = Promise.resolve(v)
      } else {
        const p = sharedSecret(this.deps.pool, 'link_signing_key')
        p.catch(() => { if (this.key === p) this.key = null }) // retry on the next call after a DB error
        this.key = p
      }
    }
    return this.key
  }

  private static mac(key: string, id: string, exp: number, by: string): string {
    return createHmac('sha256', key).update(`recording-audio\n${id}\n${exp}\n${by}`, 'utf8').digest('hex')
  }

  async recordingAudio(recordingId: string, issuedTo: string, now = Date.now()): Promise<SignedLink> {
    if (!SUBJECT_RE.test(issuedTo)) throw new Error(`invalid link subject ${JSON.stringify(issuedTo)}`)
    const cfg = this.deps.links()
    const exp = Math.floor(now / 1000) + cfg.downloadTtlSec
    const sig = LinkSigner.mac(await this.secret(), recordingId, exp, issuedTo)
    const path = SIGNED_AUDIO_PATH.replace(':id', encodeURIComponent(recordingId))
    const q = new URLSearchParams({ exp: String(exp), by: issuedTo, sig })
    return { url: `${baseUrlOf(cfg)}${path}?${q.toString()}`, expiresAt: new Date(exp * 1000).toISOString() }
  }

  /** Signature first (a tampered expiry is a bad signature, not an expired link), then expiry. */
  async verify(recordingId: string, exp: number, by: string, sig: string, now = Date.now()): Promise<LinkVerdict> {
    if (!/^[0-9a-f]{64}$/.test(sig) || !SUBJECT_RE.test(by) || !Number.isSafeInteger(exp)) return 'bad_signature'
    const expected = Buffer.from(LinkSigner.mac(await this.secret(), recordingId, exp, by), 'hex')
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return 'bad_signature'
    return exp * 1000 <= now ? 'expired' : 'ok'
  }
}
