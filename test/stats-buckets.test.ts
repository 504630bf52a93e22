import t from 'tap'
import { DateTime } from 'luxon'
import { timeBuckets, sumRows } from '../src/stats/report.ts'

// Report days and hours are bucket bounds computed once per report (src/stats/report.ts
// timeBuckets) and looked up per row by width_bucket in Postgres; the totals row is the sum
// of the groups' additive figures (sumRows).

const local = (iso: string, tz: string) => DateTime.fromISO(iso, { zone: tz }).toJSDate()

t.test('days and hours in a zone without DST', async (t) => {
  const tz = 'Europe/Moscow'
  const days = timeBuckets(local('2026-11-01', tz), local('2026-11-04', tz), tz, 'day')
  t.same(days.labels, ['2026-11-01', '2026-11-02', '2026-11-03'])
  t.same(days.starts.map((d) => d.toISOString()), ['2026-10-31T21:00:00.000Z', '2026-11-01T21:00:00.000Z', '2026-11-02T21:00:00.000Z'])
  const hours = timeBuckets(local('2026-11-20T09:30', tz), local('2026-11-20T12:00', tz), tz, 'hour')
  t.same(hours.labels, ['2026-11-20T09:00', '2026-11-20T10:00', '2026-11-20T11:00'], 'a range starting mid-hour: that hour first')
  t.equal(hours.starts[0].toISOString(), local('2026-11-20T09:30', tz).toISOString(), 'its bucket starts at `from`')
})

t.test('DST: a 23-hour and a 25-hour day, the repeated hour is one bucket', async (t) => {
  const tz = 'Europe/Berlin'
  const spring = timeBuckets(local('2026-03-29', tz), local('2026-03-30', tz), tz, 'hour')
  t.equal(spring.labels.length, 23)
  t.notOk(spring.labels.includes('2026-03-29T02:00'), 'the skipped hour does not exist')
  const autumn = timeBuckets(local('2026-10-25', tz), local('2026-10-26', tz), tz, 'hour')
  t.equal(autumn.labels.length, 24, 'labels as a local clock shows them')
  t.equal(new Set(autumn.labels).size, 24)
  const i = autumn.labels.indexOf('2026-10-25T02:00')
  t.equal((autumn.starts[i + 1].getTime() - autumn.starts[i].getTime()) / 3_600_000, 2, '02:00 covers both real hours')
  const days = timeBuckets(local('2026-10-24', tz), local('2026-10-27', tz), tz, 'day')
  t.same(days.starts.slice(1).map((d, j) => (d.getTime() - days.starts[j].getTime()) / 3_600_000), [24, 25], 'the 25-hour day')
  for (const b of [spring, autumn, days]) t.ok(b.starts.every((d, j) => j === 0 || d > b.starts[j - 1]), 'ascending bounds (width_bucket needs them)')
})

t.test('sumRows: counts and sums added, arrays element-wise, null only when every group is null', async (t) => {
  t.equal(sumRows([]), undefined)
  const total = sumRows([
    { k: 'a', n: 2, s: '1.5', hold: null, dist: [1, 0, 2], none: null },
    { k: 'b', n: 3, s: '2.25', hold: 7, dist: ['1', '4', '0'], none: null },
  ])
  t.same(total, { k: null, n: 5, s: 3.75, hold: 7, dist: [2, 4, 2], none: null })
})
