import http from 'node:http'
import https from 'node:https'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { addressAllowed, type TargetPolicy } from './targets.ts'

/**
 * One webhook POST: a hard deadline for the whole exchange, redirects never followed
 * (a 3xx is a failed attempt: following it would let a receiver bounce the signed body
 * anywhere), every address the host resolves to checked against the target policy at
 * connect time (DNS rebinding), and at most 4 KiB of the answer read for the log.
 */
export interface PostOutcome {
  ok: boolean
  status: number | null
  /** why it failed: 'timeout', 'redirect to …', 'HTTP 503: …', a connection error */
  error: string | null
  durationMs: number
}

const MAX_ANSWER = 4_096

export function postWebhook(url: string, headers: Record<string, string>, body: string, opts: { timeoutMs: number; policy: TargetPolicy }): Promise<PostOutcome> {
  const started = Date.now()
  const done = (ok: boolean, status: number | null, error: string | null): PostOutcome => ({ ok, status, error, durationMs: Date.now() - started })
  let target: URL
  try { target = new URL(url) } catch { return Promise.resolve(done(false, null, 'invalid URL')) }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return Promise.resolve(done(false, null, `protocol ${target.protocol} not allowed`))
  const host = target.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) && !addressAllowed(host, host, opts.policy)) return Promise.resolve(done(false, null, `target ${host} is in a forbidden range`))

  const guardedLookup = (hostname: string, options: object, cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...(options as Record<string, unknown>), all: true }, (err, addresses) => {
      if (err) return cb(err, '')
      const list = addresses as LookupAddress[]
      const refused = list.find((a) => !addressAllowed(hostname, a.address, opts.policy))
      if (refused) return cb(Object.assign(new Error(`target ${hostname} resolves to ${refused.address}, a forbidden range`), { code: 'EFORBIDDENTARGET' }), '')
      if ((options as { all?: boolean }).all) return cb(null, list)
      cb(null, list[0].address, list[0].family)
    })
  }

  return new Promise((resolve) => {
    let settled = false
    const finish = (o: PostOutcome) => { if (!settled) { settled = true; clearTimeout(timer); resolve(o) } }
    const mod = target.protocol === 'https:' ? https : http
    const req = mod.request(target, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'Switchboard-Webhooks/1' },
      lookup: guardedLookup as never,
      agent: false, // one connection per delivery: no pooled socket outlives a deadline
    }, (res) => {
      const status = res.statusCode ?? 0
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => { if (size < MAX_ANSWER) { chunks.push(c); size += c.length } })
      res.on('end', () => {
        const answer = Buffer.concat(chunks).subarray(0, MAX_ANSWER).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 300)
        if (status >= 200 && status < 300) return finish(done(true, status, null))
        if (status >= 300 && status < 400) return finish(done(false, status, `redirect to ${String(res.headers.location ?? '(no location)').slice(0, 200)} not followed`))
        finish(done(false, status, `HTTP ${status}${answer ? `: ${answer}` : ''}`))
      })
      res.on('error', (err) => finish(done(false, status, `answer interrupted: ${err.message}`)))
    })
    const timer = setTimeout(() => {
      finish(done(false, null, `timeout after ${opts.timeoutMs} ms`))
      req.destroy()
    }, opts.timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => finish(done(false, null, err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message)))
    req.end(body)
  })
}
