import t from 'tap'
import { normalizePhone, parsePhone, isE164 } from '../src/crm/phone.ts'
import { PhoneIndex, e164Key } from '../src/crm/phone-index.ts'

t.test('normalizePhone: Russian notations → E.164', async t => {
  const cases: Array<[string | null | undefined, string, string | null]> = [
    ['8 495 123-45-67', 'RU', '+74951234567'],
    ['84951234567', 'RU', '+74951234567'],
    ['74951234567', 'RU', '+74951234567'],
    ['+7 (495) 123-45-67', 'RU', '+74951234567'],
    ['+74951234567', 'RU', '+74951234567'],
    ['495 123 45 67', 'RU', '+74951234567'],
    ['8 (916) 123-45-67', 'RU', '+79161234567'],
    ['+7 (495) 748-05-75 | доб. 3053', 'RU', '+74957480575'],
    ['+7 495 123 45 67 ext. 12', 'RU', '+74951234567'],
    ['8-800-555-35-35', 'RU', '+78005553535'],
    ['+49 30 123456', 'RU', '+4930123456'],
    ['030 123456', 'DE', '+4930123456'],
    ['123', 'RU', null],
    ['', 'RU', null],
    ['не номер', 'RU', null],
    [null, 'RU', null],
    [undefined, 'RU', null],
    ['1'.repeat(80), 'RU', null],
  ]
  for (const [raw, region, want] of cases) t.equal(normalizePhone(raw, region), want, String(raw))
})

t.test('parsePhone keeps the extension', async t => {
  t.same(parsePhone('+7 (495) 123-45-67 доб. 3053', 'RU'), { e164: '+74951234567', ext: '3053' })
  t.same(parsePhone('8 495 123-45-67', 'RU'), { e164: '+74951234567', ext: null })
  t.equal(parsePhone('xx', 'RU'), null)
  t.ok(isE164('+74951234567'))
  t.notOk(isE164('74951234567'))
})

t.test('PhoneIndex: build, lookup, duplicates, rejected, overlay, compact', async t => {
  const idx = PhoneIndex.build([
    { e164: '+74951234567', clientId: 'c1' },
    { e164: '+79161234567', clientId: 'c1' },
    { e164: '+73832000000', clientId: 'c2' },
    { e164: '+74951234567', clientId: 'c3' }, // duplicate: first wins
    { e164: '84951234567', clientId: 'c4' }, // not E.164: rejected
  ])
  t.equal(idx.lookup('+74951234567'), 'c1')
  t.equal(idx.lookup('+79161234567'), 'c1')
  t.equal(idx.lookup('+73832000000'), 'c2')
  t.equal(idx.lookup('+73832000001'), undefined)
  t.equal(idx.lookup('garbage'), undefined)
  t.equal(idx.size, 3)
  t.match(idx.stats(), { phones: 3, duplicates: 1, rejected: 1, overlay: 0, bytes: 36 })

  t.ok(idx.upsert('+73832000001', 'c9'))
  t.notOk(idx.upsert('bad', 'c9'))
  t.equal(idx.lookup('+73832000001'), 'c9')
  t.ok(idx.upsert('+74951234567', 'c2'), 're-point')
  t.equal(idx.lookup('+74951234567'), 'c2')
  t.ok(idx.remove('+79161234567'))
  t.notOk(idx.remove('+70000000000'))
  t.notOk(idx.remove('x'))
  t.equal(idx.lookup('+79161234567'), undefined)
  t.equal(idx.size, 3)

  const c = idx.compact()
  t.equal(c.lookup('+73832000001'), 'c9')
  t.equal(c.lookup('+74951234567'), 'c2')
  t.equal(c.lookup('+79161234567'), undefined)
  t.equal(c.stats().overlay, 0)
  t.equal(c.size, 3)
  t.equal(PhoneIndex.empty().lookup('+74951234567'), undefined)
  t.ok(Number.isNaN(e164Key('74951234567')))
  t.equal(e164Key('+999999999999999'), 999999999999999, '15 digits are exact in a double')
})

t.test('PhoneIndex agrees with a Map on random data', async t => {
  const map = new Map<string, string>()
  const entries = []
  let seed = 42
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  for (let i = 0; i < 20000; i++) {
    const e164 = `+7${9000000000 + (rnd() % 999999999)}`
    const id = `c${i % 5000}`
    if (!map.has(e164)) map.set(e164, id)
    entries.push({ e164, clientId: id })
  }
  const idx = PhoneIndex.build(entries)
  let mismatches = 0
  for (const [k, v] of map) if (idx.lookup(k) !== v) mismatches++
  for (let i = 0; i < 5000; i++) {
    const probe = `+7${8000000000 + (rnd() % 999999999)}`
    if (idx.lookup(probe) !== map.get(probe)) mismatches++
  }
  t.equal(mismatches, 0)
  t.equal(idx.size, map.size)
})
