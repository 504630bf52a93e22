// The FreeSWITCH config we ship: well-formed XML, and the dialplan points at our ESL port.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_ESL_PORT } from '../src/esl/defaults.ts'

const ROOT = new URL('../freeswitch/', import.meta.url).pathname

function xmlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? xmlFiles(p) : n.endsWith('.xml') ? [p] : []
  })
}

/**
 * Tiny strict well-formedness check (no parser in node_modules is meant for this):
 * one root, tags nest and close, attributes quoted and unique, no stray '<' or '&'.
 * Returns an error message or null.
 */
export function checkWellFormed(xml: string): string | null {
  let i = 0
  const stack: string[] = []
  let roots = 0
  const name = /^[A-Za-z_:][-A-Za-z0-9_.:]*/
  const textOk = (s: string) => !/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s)
  if (xml.startsWith('<?xml')) {
    const e = xml.indexOf('?>')
    if (e < 0) return 'unterminated XML declaration'
    i = e + 2
  }
  while (i < xml.length) {
    const lt = xml.indexOf('<', i)
    const text = xml.slice(i, lt < 0 ? xml.length : lt)
    if (!textOk(text)) return `bad entity in text near ${JSON.stringify(text.slice(0, 40))}`
    if (stack.length === 0 && text.trim()) return `text outside the root: ${JSON.stringify(text.trim().slice(0, 40))}`
    if (lt < 0) break
    if (xml.startsWith('<!--', lt)) {
      const e = xml.indexOf('-->', lt + 4)
      if (e < 0) return 'unterminated comment'
      if (xml.slice(lt + 4, e).includes('--')) return 'comment contains "--"'
      i = e + 3
      continue
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const e = xml.indexOf(']]>', lt)
      if (e < 0) return 'unterminated CDATA'
      i = e + 3
      continue
    }
    if (xml.startsWith('<?', lt)) {
      const e = xml.indexOf('?>', lt)
      if (e < 0) return 'unterminated processing instruction'
      i = e + 2
      continue
    }
    const gt = xml.indexOf('>', lt)
    if (gt < 0) return 'unterminated tag'
    const tag = xml.slice(lt + 1, gt)
    if (tag.includes('<')) return `'<' inside tag ${JSON.stringify(tag.slice(0, 40))}`
    if (tag.startsWith('/')) {
      const n = tag.slice(1).trim()
      const open = stack.pop()
      if (open !== n) return `</${n}> closes <${open ?? 'nothing'}>`
    } else {
      const selfClosing = tag.endsWith('/')
      const body = selfClosing ? tag.slice(0, -1) : tag
      const m = name.exec(body)
      if (!m) return `bad tag name in <${tag.slice(0, 40)}>`
      let rest = body.slice(m[0].length)
      const seen = new Set<string>()
      const attr = /^\s+([A-Za-z_:][-A-Za-z0-9_.:]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/
      for (;;) {
        const a = attr.exec(rest)
        if (!a) break
        if (seen.has(a[1])) return `duplicate attribute ${a[1]} in <${m[0]}>`
        if (!textOk(a[3] ?? a[4] ?? '')) return `bad entity in attribute ${a[1]}`
        seen.add(a[1])
        rest = rest.slice(a[0].length)
      }
      if (rest.trim()) return `malformed attributes in <${m[0]}>: ${JSON.stringify(rest.trim().slice(0, 40))}`
      if (stack.length === 0 && ++roots > 1) return 'more than one root element'
      if (!selfClosing) stack.push(m[0])
    }
    i = gt + 1
  }
  if (stack.length) return `unclosed <${stack.at(-1)}>`
  if (roots === 0) return 'no root element'
  return null
}

t.test('the checker itself rejects broken XML', async (t) => {
  t.equal(checkWellFormed('<a><b x="1"/></a>'), null)
  t.match(checkWellFormed('<a><b></a>'), /closes/)
  t.match(checkWellFormed('<a x="1" x="2"/>'), /duplicate/)
  t.match(checkWellFormed('<a x=1/>'), /malformed attributes/)
  t.match(checkWellFormed('<a>AT&T</a>'), /entity/)
  t.match(checkWellFormed('<a/><b/>'), /more than one root/)
  t.match(checkWellFormed('<a><!-- x -- y --></a>'), /--/)
  t.match(checkWellFormed('<a>'), /unclosed/)
})

const files = xmlFiles(ROOT)
t.ok(files.length >= 7, `found ${files.length} XML files`)
for (const f of files) {
  t.test(`well-formed: ${f.slice(ROOT.length)}`, async (t) => {
    t.equal(checkWellFormed(readFileSync(f, 'utf8')), null)
  })
}

t.test('dialplan sends calls to the default ESL port, async full', async (t) => {
  const xml = readFileSync(join(ROOT, 'dialplan/switchboard.xml'), 'utf8')
  const sockets = [...xml.matchAll(/application="socket" data="([^"]+)"/g)].map((m) => m[1])
  t.ok(sockets.length >= 4, 'inbound DID, FMC, internal, outbound')
  for (const s of sockets) {
    const m = /^\$\{switchboard_esl_host\}:(\d+) async full$/.exec(s)
    t.ok(m, `socket target ${s}`)
    t.equal(Number(m?.[1]), DEFAULT_ESL_PORT)
  }
  const vars = readFileSync(join(ROOT, 'vars.xml'), 'utf8')
  t.match(vars, /switchboard_esl_host=/)
  t.match(vars, new RegExp(`switchboard_esl_port=${DEFAULT_ESL_PORT}"`))
  t.match(vars, /\/var\/spool\/switchboard/)
  const es = readFileSync(join(ROOT, 'autoload_configs/event_socket.conf.xml'), 'utf8')
  t.match(es, /name="listen-ip" value="127\.0\.0\.1"/)
  t.match(es, /name="listen-port" value="8021"/)
  t.match(es, /name="password" value="\$\$\{event_socket_password\}"/)
  t.match(es, /name="apply-inbound-acl"/)
})
