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
  if (typeof raw === 'string') {
    if (E164_RE.test(raw)) return raw
    const fast = defaultRegion === 'RU' || defaultRegion === 'ru' ? russianNationalFast(raw) : undefined
    if (fast !== undefined) return fast
  }
  return parsePhone(raw, defaultRegion)?.e164 ?? null
}

/**
 * The common Russian notations without libphonenumber (~17 µs a number, most of a 1 M-row
 * import's Node time): digits with spaces, brackets, dashes or dots only, and then exactly
 *   8 or 7 + 10 digits whose first is 3, 4, 8 or 9  (8 (916) 123-45-67, 74951234567)
 *   10 digits whose first is 3, 4 or 9               (916 123 45 67)
 * → '+7' + the 10 digits. These are the shapes where libphonenumber (region RU) gives
 * exactly that, always (test/crm-phone-fastpath.test.ts compares the two over a large
 * random sample of these shapes and their neighbours). Anything else — 810… (the
 * international prefix), 8 0…, other lengths, extensions, letters — returns undefined and
 * goes to libphonenumber.
 */
export function russianNationalFast(raw: string): string | undefined {
  const n = raw.length
  if (n < 10 || n > 40) return undefined
  let digits = ''
  for (let i = 0; i < n; i++) {
    const c = raw.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (digits.length === 11) return undefined
      digits += raw[i]
    } else if (c !== 32 && c !== 40 && c !== 41 && c !== 45 && c !== 46) return undefined // space ( ) - .
  }
  if (digits.length === 11) {
    const lead = digits.charCodeAt(0)
    const area = digits.charCodeAt(1)
    if ((lead === 56 || lead === 55) && (area === 51 || area === 52 || area === 56 || area === 57)) return `+7${digits.slice(1)}` // 8/7 then 3/4/8/9
    return undefined
  }
  if (digits.length === 10) {
    const area = digits.charCodeAt(0)
    if (area === 51 || area === 52 || area === 57) return `+7${digits}` // 3/4/9
  }
  return undefined
}
