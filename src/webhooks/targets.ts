import { isIP } from 'node:net'

/**
 * Which addresses a webhook may be sent to. A webhook URL is configured by an admin but
 * the delivery runs inside the PBX network: without a rule, a URL pointing at
 * 127.0.0.1, the metadata service (169.254.169.254) or an internal host would turn the
 * delivery worker into a proxy into that network (SSRF). So loopback, private, link-local,
 * CGNAT, multicast and reserved ranges are forbidden unless the config allows them —
 * all at once (`allowPrivateTargets`) or one by one (`allowList`: CIDRs or host names).
 * Checked twice: on the configured URL (IP literals, `localhost`) when the config is
 * validated, and on every address a host name resolves to when a delivery connects
 * (a public name resolving to a private address is refused too).
 */
export interface TargetPolicy { allowPrivateTargets: boolean; allowList: readonly string[] }

interface Cidr { family: 4 | 6; bits: bigint; prefix: number }

const FORBIDDEN_CIDRS = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', '64:ff9b::/96', '100::/64', '2001:db8::/32', 'fc00::/7', 'fe80::/10', 'ff00::/8',
].map((c) => parseCidr(c)!)

function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } | null {
  const fam = isIP(ip)
  if (fam === 4) {
    const parts = ip.split('.').map(Number)
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) }
  }
  if (fam === 6) {
    let s = ip.toLowerCase()
    const zone = s.indexOf('%')
    if (zone >= 0) s = s.slice(0, zone)
    // embedded IPv4 (::ffff:10.0.0.1)
    const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/)
    if (v4) {
      const n = ipToBigInt(v4[1])!.value
      s = s.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
    }
    const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined]
    const h = head ? head.split(':') : []
    const t = tail !== undefined ? (tail ? tail.split(':') : []) : []
    const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
    if (groups.length !== 8) return null
    return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n) }
  }
  return null
}

export function parseCidr(text: string): Cidr | null {
  const [addr, len] = text.split('/')
  const ip = ipToBigInt(addr)
  if (!ip) return null
  const max = ip.family === 4 ? 32 : 128
  const prefix = len === undefined ? max : Number(len)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (len !== undefined && !/^[0-9]{1,3}$/.test(len))) return null
  return { family: ip.family, bits: ip.value, prefix }
}

function inCidr(ip: { family: 4 | 6; value: bigint }, c: Cidr): boolean {
  if (ip.family !== c.family) return false
  const width = BigInt(ip.family === 4 ? 32 : 128)
  const shift = width - BigInt(c.prefix)
  return ip.value >> shift === c.bits >> shift
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it carries. */
function unmap(ip: { family: 4 | 6; value: bigint }): { family: 4 | 6; value: bigint } {
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn }
  return ip
}

export function isForbiddenAddress(address: string): boolean {
  const ip = ipToBigInt(address)
  if (!ip) return true
  const u = unmap(ip)
  return FORBIDDEN_CIDRS.some((c) => inCidr(u, c))
}

/** A host-name or CIDR entry of the allow-list is well-formed. */
export function allowListEntryProblem(entry: string): string | null {
  if (entry.includes('/') || isIP(entry)) return parseCidr(entry) ? null : `${JSON.stringify(entry)} is not a valid CIDR or IP address`
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(entry) ? null : `${JSON.stringify(entry)} is not a host name, IP address or CIDR`
}

function allowedByList(hostOrIp: string, policy: TargetPolicy): boolean {
  const host = hostOrIp.toLowerCase().replace(/\.$/, '')
  const ip = ipToBigInt(host)
  for (const entry of policy.allowList) {
    if (entry.includes('/') || isIP(entry)) {
      const c = parseCidr(entry)
      if (c && ip && (inCidr(unmap(ip), c) || inCidr(ip, c))) return true
    } else if (entry.toLowerCase().replace(/\.$/, '') === host) {
      return true
    }
  }
  return false
}

/** May a connection go to `address` (an IP) that `host` (as written in the URL) resolved to? */
export function addressAllowed(host: string, address: string, policy: TargetPolicy): boolean {
  if (!isForbiddenAddress(address)) return true
  return policy.allowPrivateTargets || allowedByList(address, policy) || allowedByList(host, policy)
}

/**
 * Config-time check of one webhook URL: http(s) only, no credentials in it, and an IP
 * literal (or `localhost`) in a forbidden range must be allowed explicitly. Host names
 * are checked again on every connection, after DNS.
 */
export function webhookUrlProblem(raw: string, policy: TargetPolicy): string | null {
  let url: URL
  try { url = new URL(raw) } catch { return `${JSON.stringify(raw)} is not a URL` }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `only http and https URLs are allowed (got ${url.protocol.replace(/:$/, '')})`
  if (url.username || url.password) return 'credentials in the URL are not allowed (use the signing secret)'
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host)) {
    if (!addressAllowed(host, host, policy)) return `${host} is in a forbidden (private, loopback, link-local or reserved) range; allow it in webhooks.allowList or set webhooks.allowPrivateTargets`
    return null
  }
  const lower = host.toLowerCase()
  if ((lower === 'localhost' || lower.endsWith('.localhost')) && !policy.allowPrivateTargets && !allowedByList(lower, policy)) {
    return `${host} is a loopback name; allow it in webhooks.allowList or set webhooks.allowPrivateTargets`
  }
  return null
}
