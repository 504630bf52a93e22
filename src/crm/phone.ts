/**
 * Phone numbers are normalised to E.164 at the edge (libphonenumber-js) and nowhere else.
 * Russian inputs such as '8 495 123-45-67', '74951234567', '+7 (495) 123-45-67 доб. 3053'
 * all become '+74951234567'; the extension is returned separately by `parsePhone`.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'

export interface ParsedPhone {
  e164: string
  ext: string | null
}

const E164_RE = /^\+[1-9][0-9]{6,14}$/

/** True for a string already in E.164 form ('+' then 7–15 digits). Cheap: no metadata. */
export function isE164(s: string): boolean {
  return E164_RE.test(s)
}

/** Parse a raw number (any common notation, optional extension) in `defaultRegion`. */
export function parsePhone(raw: string | null | undefined, defaultRegion: string): ParsedPhone | null {
  if (typeof raw !== 'string') return null
  // Separators seen in exported address books ('| доб. 3053', '; ext 12') confuse the parser.
  const cleaned = raw.replace(/[|;,]/g, ' ').trim()
  if (cleaned === '' || cleaned.length > 64) return null
  const parsed = parsePhoneNumberFromString(cleaned, defaultRegion.toUpperCase() as CountryCode)
  if (!parsed || !parsed.isPossible()) return null
  const e164 = parsed.number
  if (!E164_RE.test(e164)) return null
  return { e164, ext: parsed.ext ?? null }
}

/** E.164 string or null. Extensions are dropped: the index is keyed by the line number. */
export function normalizePhone(raw: string | null | undefined, defaultRegion: string): string | null {
  if (typeof raw === 'string' && E164_RE.test(raw)) return raw
  return parsePhone(raw, defaultRegion)?.e164 ?? null
}
