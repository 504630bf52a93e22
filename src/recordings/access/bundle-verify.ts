import { createHash } from 'node:crypto'
import yauzl from 'yauzl'
import { entryHashOk, type AuditEntry } from './audit.ts'
import { MANIFEST } from './export-bundle.ts'

/**
 * Offline check of an export bundle: every file listed in manifest.sha256 is present and
 * hashes to the listed value, nothing unlisted is in the zip, every audio file matches the
 * SHA-256 Switchboard recorded when it stored the recording (metadata.json), and every
 * audit entry's hash recomputes from its content and prev_hash.
 */
export interface BundleVerdict {
  ok: boolean
  files: Array<{ name: string; expected: string | null; actual: string; ok: boolean }>
  problems: string[]
  auditEntries: number
}

export async function verifyBundle(zipPath: string): Promise<BundleVerdict> {
  const problems: string[] = []
  const hashes = new Map<string, string>()
  const contents = new Map<string, Buffer>()
  const zip = await yauzl.openPromise(zipPath, { strictFileNames: true, validateEntrySizes: true })
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue
      if (hashes.has(entry.fileName)) problems.push(`duplicate entry ${entry.fileName}`)
      const h = createHash('sha256')
      const keep = entry.fileName === MANIFEST || entry.fileName === 'metadata.json' || entry.fileName === 'audit.json'
      const chunks: Buffer[] = []
      for await (const chunk of await zip.openReadStreamPromise(entry)) {
        h.update(chunk as Buffer)
        if (keep) chunks.push(chunk as Buffer)
      }
      hashes.set(entry.fileName, h.digest('hex'))
      if (keep) contents.set(entry.fileName, Buffer.concat(chunks))
    }
  } finally {
    zip.close()
  }

  const manifestText = contents.get(MANIFEST)?.toString('utf8')
  const expected = new Map<string, string>()
  if (manifestText === undefined) problems.push(`${MANIFEST} is missing`)
  else {
    for (const line of manifestText.split('\n')) {
      if (line === '') continue
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
      if (!m) { problems.push(`malformed manifest line: ${JSON.stringify(line.slice(0, 120))}`); continue }
      expected.set(m[2], m[1])
    }
  }
  const files: BundleVerdict['files'] = []
  for (const [name, actual] of hashes) {
    if (name === MANIFEST) continue
    const exp = expected.get(name) ?? null
    const ok = exp === actual
    files.push({ name, expected: exp, actual, ok })
    if (exp === null) problems.push(`${name} is not listed in the manifest`)
    else if (!ok) problems.push(`${name}: sha256 ${actual} differs from the manifest's ${exp}`)
  }
  for (const name of expected.keys()) if (!hashes.has(name)) problems.push(`${name} is listed in the manifest but missing`)

  // audio vs the hash recorded at storage time
  const metaText = contents.get('metadata.json')?.toString('utf8')
  if (metaText === undefined) problems.push('metadata.json is missing')
  else {
    try {
      const meta = JSON.parse(metaText) as { recordings?: Array<{ id: string; file: string | null; sha256: string | null }> }
      for (const r of meta.recordings ?? []) {
        if (!r.file) continue
        const actual = hashes.get(r.file)
        if (!actual) problems.push(`audio of recording ${r.id} (${r.file}) is missing`)
        else if (actual !== r.sha256) problems.push(`audio of recording ${r.id} does not match the SHA-256 recorded at storage (${r.sha256})`)
      }
    } catch { problems.push('metadata.json is not valid JSON') }
  }

  let auditEntries = 0
  const auditText = contents.get('audit.json')?.toString('utf8')
  if (auditText === undefined) problems.push('audit.json is missing')
  else {
    try {
      const a = JSON.parse(auditText) as { entries?: AuditEntry[]; bundleEntry?: AuditEntry | null }
      for (const e of [...(a.entries ?? []), ...(a.bundleEntry ? [a.bundleEntry] : [])]) {
        auditEntries++
        if (!entryHashOk(e)) problems.push(`audit entry ${e.id} does not match its hash`)
      }
    } catch { problems.push('audit.json is not valid JSON') }
  }
  return { ok: problems.length === 0, files, problems, auditEntries }
}
