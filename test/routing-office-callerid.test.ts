import t from 'tap'
import { officeOpenAt, officeStatusAt, mergeCalendars } from '../src/routing/office-hours.ts'
import { chooseCallerId } from '../src/routing/caller-id.ts'
import { baseConfig } from './routing-fixture.ts'

const cal = { holidays: ['2025-01-01'], shortDays: [{ date: '2024-12-31', hours: '10:00-14:00' }], workdays: [{ date: '2024-12-28', hours: '09:00-18:00' }] }
const vvo = { tz: 'Asia/Vladivostok', hours: { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' } }
const cc = { tz: 'Asia/Yekaterinburg', hours: { mon: '00:00-24:00', tue: '00:00-24:00', wed: '00:00-24:00', thu: '00:00-24:00', fri: '00:00-24:00', sat: '00:00-24:00', sun: '00:00-24:00' } }

t.test('officeOpenAt table', async t => {
  const rows: Array<[string, object, string, boolean]> = [
    ['VVO Tue 31 Dec 10:00 short day open', vvo, '2024-12-31T00:00:00Z', true],
    ['VVO Tue 31 Dec 14:00 short day closed', vvo, '2024-12-31T04:00:00Z', false],
    ['VVO New Year holiday (Wed)', vvo, '2025-01-01T02:00:00Z', false],
    ['VVO working Saturday 28 Dec', vvo, '2024-12-28T00:00:00Z', true],
    ['VVO ordinary Saturday', vvo, '2025-01-04T00:00:00Z', false],
    ['VVO Thursday 2 Jan 09:00', vvo, '2025-01-01T23:00:00Z', true],
    ['24/7 at local midnight of 1 Jan', cc, '2024-12-31T19:00:00Z', false], // holiday closes even the 24/7 office in this calendar
    ['24/7 at 23:59 on 31 Dec (short day applies to it too)', cc, '2024-12-31T18:59:00Z', false],
    ['24/7 at local midnight of 2 Jan', cc, '2025-01-01T19:00:00Z', true],
    ['24/7 Sunday 23:59', cc, '2025-01-05T18:59:00Z', true],
    ['24/7 Sunday 00:00', cc, '2025-01-04T19:00:00Z', true],
  ]
  for (const [name, office, iso, open] of rows) t.equal(officeOpenAt(office as any, cal, new Date(iso)), open, name)
})

t.test('officeStatusAt details and calendar merge', async t => {
  t.match(officeStatusAt(vvo, cal, new Date('2024-12-31T04:30:00Z')), { open: false, dayType: 'short', hours: '10:00-14:00', local: '2024-12-31 14:30 tue', localDate: '2024-12-31' })
  t.match(officeStatusAt(vvo, cal, new Date('2024-12-28T00:00:00Z')), { open: true, dayType: 'transferred-workday' })
  t.match(officeStatusAt(cc, cal, new Date('2025-01-05T10:00:00Z')), { open: true, dayType: 'regular', hours: '00:00-24:00' })
  t.throws(() => officeStatusAt({ ...vvo, tz: 'Mars/Olympus' }, cal, new Date()), RangeError)
  const merged = mergeCalendars(cal, { holidays: ['2025-01-01', '2025-07-02'], shortDays: [{ date: '2024-12-31', hours: '10:00-12:00' }], workdays: [] })
  t.same(merged.holidays, ['2025-01-01', '2025-07-02'])
  t.same(merged.shortDays, [{ date: '2024-12-31', hours: '10:00-12:00' }], 'office entry wins')
  t.equal(mergeCalendars(cal, undefined), cal)
})

t.test('chooseCallerId by region / prefix (seed 001)', async t => {
  const cfg = baseConfig()
  const rows: Array<[string, string | null, string, { clientRegion?: string } | undefined, { callerId: string; dial: string; rule: string | null }]> = [
    ['Novosibirsk landline', '+73831234567', '+73831234567', undefined, { callerId: '+73832000000', dial: '+73831234567', rule: 'nsk' }],
    ['longest prefix wins', '+73832012345', '+73832012345', undefined, { callerId: '+73832000099', dial: '+73832012345', rule: 'nsk-city' }],
    ['legacy dialled prefix stripped', '+74951234567', '0384951234567', undefined, { callerId: '+74951230001', dial: '84951234567', rule: 'legacy-03' }],
    ['short number is not a prefix use', null, '0312', undefined, { callerId: '+74951230000', dial: '0312', rule: null }],
    ['mobile of a Yekaterinburg client', '+79121234567', '89121234567', { clientRegion: 'екатеринбург ' }, { callerId: '+73432000000', dial: '89121234567', rule: 'region-ekb' }],
    ['geographic prefix beats client region', '+73831234567', '+73831234567', { clientRegion: 'Екатеринбург' }, { callerId: '+73832000000', dial: '+73831234567', rule: 'nsk' }],
    ['unknown region → default', '+79121234567', '89121234567', { clientRegion: 'Тюмень' }, { callerId: '+74951230000', dial: '89121234567', rule: null }],
  ]
  for (const [name, callee, dialled, opts, want] of rows) t.match(chooseCallerId(callee, dialled, cfg, opts), want, name)
  t.equal(chooseCallerId('+73831234567', '+73831234567', { callerId: undefined }), null, 'not configured')
  t.match(chooseCallerId('+73831234567', 'x', cfg)!.reason, /matches \+7383/)
})
