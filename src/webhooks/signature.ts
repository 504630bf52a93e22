import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * The webhook signature, in the style receivers know from Stripe/GitHub:
 *   X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
 * The timestamp is inside the MAC so a captured request cannot be replayed later with a
 * fresh time; receivers should refuse a `t` older than a few minutes and deduplicate on
 * X-Switchboard-Delivery.
 */
export const SIGNATURE_HEADER = 'x-switchboard-signature'

export function signatureOf(secret: string, unixSec: number, body: string): string {
  return createHmac('sha256', secret).update(`${unixSec}.${body}`, 'utf8').digest('hex')
}

export function signatureHeader(secret: string, unixSec: number, body: string): string {
  return `t=${unixSec},v1=${signatureOf(secret, unixSec, body)}`
}

/** Receiver side (tests, README example): true when the header matches the body and is fresh enough. */
export function verifySignatureHeader(secret: string, header: string, body: string, opts: { toleranceSec?: number; nowSec?: number } = {}): boolean {
  const parts = new Map(header.split(',').map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const }))
  const t = Number(parts.get('t'))
  const v1 = parts.get('v1')
  if (!Number.isInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - t) > (opts.toleranceSec ?? 300)) return false
  return timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(signatureOf(secret, t, body), 'hex'))
}
