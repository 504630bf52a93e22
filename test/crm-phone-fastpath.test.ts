import t from 'tap'
import { normalizePhone, parsePhone, russianNationalFast } from '../src/crm/phone.ts'

/**
 * The import's fast path for Russian national notations must give exactly what
 * libphonenumber gives. Property test: a large seeded random sample of the shapes it
 * takes AND their neighbours (other lengths, other leading digits, 810…, separators
 * anywhere, letters), each compared with libphonenumber directly (`parsePhone`).
 */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = s
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const SEPARATORS = [' ', '-', '(', ')', '.', '  ', ' (', ') ']

function sample(rnd: () => number): string {
  const int = (n: number) => Math.floor(rnd() * n)
  const len = 9 + int(4) // 9..12 digits: the taken lengths 10, 11 and both neighbours
  let digits = ''
  // leading digits biased to the interesting ones: 7, 8 (national prefix), 81 (810 = international prefix), 3/4/9
  const lead = ['7', '8', '9', '3', '4', '81', '80', '0', '1', '2', '5', '6', '70', '75', '88'][int(15)]
  digits = lead
  while (digits.length < len) digits += String(int(10))
  digits = digits.slice(0, len)
  // separators at random places, sometimes none; now and then a character the fast path refuses
  let out = ''
  for (const d of digits) {
    if (rnd() < 0.25) out += SEPARATORS[int(SEPARATORS.length)]
    out += d
  }
  const r = rnd()
  if (r < 0.02) out += ' доб. 12'
  else if (r < 0.04) out = `+${out}`
  else if (r < 0.05) out += 'x'
  return out
}

t.test('fast path == libphonenumber (region RU) over 600,000 random numbers of its shapes and their neighbours', async (t) => {
  const rnd = prng(20261123)
  let taken = 0
  const mismatches: string[] = []
  for (let i = 0; i < 600_000; i++) {
    const raw = sample(rnd)
    const fast = russianNationalFast(raw)
    if (fast === undefined) continue
    taken++
    const slow = parsePhone(raw, 'RU')?.e164 ?? null
    if (slow !== fast && mismatches.length < 20) mismatches.push(`${JSON.stringify(raw)}: fast ${fast}, libphonenumber ${slow}`)
  }
  t.same(mismatches, [], 'no number where the fast path and libphonenumber disagree')
  t.ok(taken > 30_000, `the sample exercises the fast path (${taken} numbers took it)`)
})

t.test('normalizePhone with the fast path equals libphonenumber on every sample, taken or not', async (t) => {
  const rnd = prng(7)
  const mismatches: string[] = []
  for (let i = 0; i < 30_000; i++) {
    const raw = sample(rnd)
    const got = normalizePhone(raw, 'RU')
    const want = /^\+[1-9][0-9]{6,14}$/.test(raw) ? raw : parsePhone(raw, 'RU')?.e164 ?? null
    if (got !== want && mismatches.length < 20) mismatches.push(`${JSON.stringify(raw)}: ${got} vs ${want}`)
  }
  t.same(mismatches, [])
})

t.test('what the fast path refuses goes to libphonenumber', async (t) => {
  for (const raw of ['810 49 30 123456', '8 10 495 123 45 67', '80123456789', '8 (916) 123-45-67 доб. 5', '916 123 45 6', '+7 916 123 45 67', '8916123456712', 'abc']) {
    t.equal(russianNationalFast(raw), undefined, `${raw}: not taken`)
  }
  t.equal(russianNationalFast('8 (916) 123-45-67'), '+79161234567')
  t.equal(russianNationalFast('74951234567'), '+74951234567')
  t.equal(russianNationalFast('495.123.45.67'), '+74951234567')
  t.equal(normalizePhone('8 (916) 123-45-67', 'DE'), parsePhone('8 (916) 123-45-67', 'DE')?.e164 ?? null, 'other regions never take it')
})
