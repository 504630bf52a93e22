/**
 * HTTP Range (RFC 9110 §14) for one representation of `size` bytes. Supported:
 * `bytes=a-b`, `bytes=a-`, `bytes=-n` (suffix). A multi-range request (`bytes=0-1,5-9`)
 * is answered with the whole representation (200) — allowed by the RFC and what audio
 * players never need; documented in the route description.
 */
export type RangeResult =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' }

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' }
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header)
  if (!m) return { kind: 'full' } // unknown unit: ignore the header (RFC 9110 §14.2)
  const specs = m[1].split(',').map((s) => s.trim()).filter(Boolean)
  if (specs.length !== 1) {
    // syntactically valid multi-range → full body; anything malformed → ignored too
    return { kind: 'full' }
  }
  const spec = /^(\d{0,15})-(\d{0,15})$/.exec(specs[0])
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' }
  if (spec[1] === '') {
    const n = Number(spec[2])
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(spec[1])
  const end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1)
  if (spec[2] !== '' && Number(spec[2]) < start) return { kind: 'full' } // invalid spec: ignore
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'partial', start, end }
}

/** Content type from the object key's extension, else from the codec. */
export function audioContentType(objectKey: string, codec: string | null): string {
  const ext = objectKey.slice(objectKey.lastIndexOf('.') + 1).toLowerCase()
  const byExt: Record<string, string> = { opus: 'audio/ogg', ogg: 'audio/ogg', oga: 'audio/ogg', mp3: 'audio/mpeg', wav: 'audio/wav' }
  if (byExt[ext]) return byExt[ext]
  if (codec === 'opus' || codec === 'vorbis') return 'audio/ogg'
  if (codec === 'mp3') return 'audio/mpeg'
  if (codec?.startsWith('pcm_')) return 'audio/wav'
  return 'application/octet-stream'
}

/** If-None-Match / If-Range comparison (strong for If-Range, weak for If-None-Match). */
export function etagMatches(header: string, etag: string, weak: boolean): boolean {
  if (header.trim() === '*') return true
  const strip = (t: string) => (weak ? t.replace(/^W\//, '') : t)
  return header.split(',').map((t) => t.trim()).some((t) => (!weak && t.startsWith('W/') ? false : strip(t) === strip(etag)))
}
