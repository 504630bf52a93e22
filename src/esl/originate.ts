/**
 * The `originate` command of FreeSWITCH's mod_commands, as text: build it, read its
 * answer, and parse it back (the simulator and tests read what we sent). No I/O.
 *
 *   originate {origination_uuid=…,switchboard_direction=outbound}user/1001 &socket(10.0.0.5:8084 async full)
 *
 * Its answer (the api body, or the BACKGROUND_JOB body of a bgapi) is `+OK <uuid>` once the
 * called leg answered, or `-ERR <HANGUP_CAUSE>` (NO_ANSWER, USER_BUSY, SUBSCRIBER_ABSENT…).
 */

export interface OriginateSpec {
  /** Dial string of the first leg: `user/1001`, `sofia/gateway/fmc/+7913…`. */
  endpoint: string
  /** Channel variables of the new leg (`{k=v,…}`). */
  vars: Record<string, string>
  /** The application the answered leg runs: `socket` with `host:port async full`, or `park`. */
  app: { name: string; arg: string }
}

export type OriginateResult = { ok: true; uuid: string } | { ok: false; cause: string; reply: string }

/**
 * A variable value as FreeSWITCH's `{}` block reads it: commas separate variables (escaped
 * `\,`), and the whole command is split on spaces, so a value with spaces is quoted in
 * single quotes (which therefore may not appear inside; they are dropped).
 */
export function quoteVarValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  let v = value.replace(/[\u0000-\u001f\u007f{}']/g, '').replace(/,/g, '\\,')
  if (/\s/.test(v)) v = `'${v}'`
  return v
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

export function originateCommand(spec: OriginateSpec): string {
  const vars = Object.entries(spec.vars).map(([k, v]) => {
    if (!VAR_NAME.test(k)) throw new RangeError(`invalid channel variable name ${JSON.stringify(k)}`)
    return `${k}=${quoteVarValue(v)}`
  })
  if (/\s/.test(spec.endpoint) || spec.endpoint === '') throw new RangeError(`invalid endpoint ${JSON.stringify(spec.endpoint)}`)
  const block = vars.length > 0 ? `{${vars.join(',')}}` : ''
  return `originate ${block}${spec.endpoint} &${spec.app.name}(${spec.app.arg})`
}

/** `&socket(host:port async full)` for the address FreeSWITCH should dial back. */
export function socketApp(address: string): OriginateSpec['app'] {
  return { name: 'socket', arg: `${address} async full` }
}

/** The answer of originate: `+OK <uuid>` or `-ERR <CAUSE>` (anything else is a failure with the text as cause). */
export function parseOriginateReply(body: string): OriginateResult {
  const text = body.trim()
  const ok = /^\+OK\s+([0-9a-fA-F-]{36})/.exec(text)
  if (ok) return { ok: true, uuid: ok[1] }
  const err = /^-(?:ERR|USAGE:?)\s*([A-Z_]+)?/.exec(text)
  return { ok: false, cause: err?.[1] ?? 'NORMAL_TEMPORARY_FAILURE', reply: text }
}

/** Parse the arguments of `originate` back into its parts (what FreeSWITCH does with our command). */
export function parseOriginateArgs(args: string): (OriginateSpec & { extension?: string }) | null {
  let rest = args.trim()
  const vars: Record<string, string> = {}
  if (rest.startsWith('{')) {
    let i = 1
    let key = ''
    let value = ''
    let inKey = true
    let quoted = false
    const flush = () => {
      if (key) vars[key] = value
      key = ''
      value = ''
      inKey = true
    }
    for (; i < rest.length; i++) {
      const c = rest[i]
      if (!inKey && c === '\\' && rest[i + 1] === ',') { value += ','; i++; continue }
      if (!inKey && c === "'") { quoted = !quoted; continue }
      if (!quoted && c === '}') break
      if (!quoted && c === ',') { flush(); continue }
      if (inKey && c === '=') { inKey = false; continue }
      if (inKey) key += c
      else value += c
    }
    if (i >= rest.length) return null
    flush()
    rest = rest.slice(i + 1)
  }
  const sp = rest.indexOf(' ')
  if (sp <= 0) return null
  const endpoint = rest.slice(0, sp)
  const target = rest.slice(sp + 1).trim()
  const app = /^&([a-z_]+)\((.*)\)$/.exec(target)
  if (app) return { endpoint, vars, app: { name: app[1], arg: app[2] } }
  // `originate <dial> <extension>` (dialplan transfer) — kept for completeness.
  if (target) return { endpoint, vars, app: { name: '', arg: '' }, extension: target.split(' ')[0] }
  return null
}
