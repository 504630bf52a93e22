// Pure logic of the web console (no browser): the player's silence skipping, speeds and
// waveform peaks, the reading of the statistics report, and role capabilities.
import t from 'tap'
import { insideSilence, peaksFromMetrics, peaksOfSamples, silencesOf, skipSilenceTarget, stepSpeed } from '../src/web/playback.ts'
import { rowsOfReport } from '../src/web/stats-report.ts'
import { can, homeOf } from '../src/web/roles.ts'
import { matchRoute } from '../src/web/router.ts'
import { bytes, clock, dateTime, duration, isoToLocalInput, localInputToIso, num, percent, time } from '../src/web/format.ts'

t.test('silence spans: sorted, short and malformed ones dropped', async (t) => {
  const m = { silences: [{ startMs: 40_000, endMs: 48_000 }, { startMs: 6000, endMs: 14_000 }, { startMs: 20_000, endMs: 20_500 }, { startMs: Number.NaN, endMs: 1 }] }
  t.same(silencesOf(m), [{ startMs: 6000, endMs: 14_000 }, { startMs: 40_000, endMs: 48_000 }])
  t.same(silencesOf(null), [])
  t.same(silencesOf({ silences: 'nope' as unknown as [] }), [])
})

t.test('skip silence: inside → its end; before → the next one\'s end; after the last → null', async (t) => {
  const s = [{ startMs: 6000, endMs: 14_000 }, { startMs: 40_000, endMs: 48_000 }]
  const cases: Array<[number, number | null]> = [[0, 14_000], [7000, 14_000], [13_800, 48_000], [14_000, 48_000], [30_000, 48_000], [47_900, null], [60_000, null]]
  for (const [at, want] of cases) t.equal(skipSilenceTarget(s, at), want, `from ${at} ms`)
  t.equal(insideSilence(s, 7000), 14_000, 'auto-skip inside a silence')
  t.equal(insideSilence(s, 13_700), null, 'not for the last half second of it')
  t.equal(insideSilence(s, 20_000), null, 'not while someone talks')
})

t.test('speed steps are clamped', async (t) => {
  t.equal(stepSpeed(1, 1), 1.25)
  t.equal(stepSpeed(1, -1), 0.75)
  t.equal(stepSpeed(2, 1), 2)
  t.equal(stepSpeed(0.5, -1), 0.5)
  t.equal(stepSpeed(1.1, 1), 1.25, 'an odd rate restarts from 1×')
})

t.test('waveform peaks: talk-span outline and real samples', async (t) => {
  const outline = peaksFromMetrics({ channels: [{ talkMs: 5000, silenceMs: 5000, talk: [{ startMs: 0, endMs: 5000 }] }, { talkMs: 0, silenceMs: 10_000, talk: [] }] }, 10_000, 10)
  t.same(outline[0], [0.6, 0.6, 0.6, 0.6, 0.6, 0.02, 0.02, 0.02, 0.02, 0.02])
  t.same(outline[1], new Array(10).fill(0.02))
  t.same(peaksFromMetrics(null, 1000, 3, 2), [[0.02, 0.02, 0.02], [0.02, 0.02, 0.02]], 'no metrics: flat')
  const samples = [Float32Array.from([0.1, -0.5, 0.2, 0.05, -0.9, 0.3]), Float32Array.from([0, 0, 0, 0, 0, 1])]
  t.same(peaksOfSamples(samples, 3), [[0.5, 0.2, 0.9], [0, 0, 1]])
  t.same(peaksOfSamples([Float32Array.from([0.25])], 100), [[0.25]], 'fewer samples than points')
})

t.test('stats report rows: the issue 11 shape and tolerated variants', async (t) => {
  const report = { groupBy: 'hour', rows: [{ key: '2026-11-23T14:00', label: '2026-11-23T14:00', offered: 10, answered: 8, abandoned: 2, serviceLevelPct: 75, asaSec: 12.5, ahtSec: 190, csatAvg: 8.4 }] }
  t.same(rowsOfReport(report), [{ key: '2026-11-23T14:00', label: '14:00', offered: 10, answered: 8, abandoned: 2, serviceLevelPct: 75, asaSec: 12.5, ahtSec: 190, csatAvg: 8.4 }])
  t.match(rowsOfReport([{ agentId: 'a1', name: 'Anton', calls: '5', csat: { average: 9 } }]), [{ key: 'a1', label: 'Anton', offered: 5, csatAvg: 9, answered: null }])
  t.same(rowsOfReport({ nothing: true }), [])
  t.same(rowsOfReport(null), [])
  t.same(rowsOfReport({ rows: [null, 3] }), [], 'junk rows skipped')
})

t.test('roles: what each role sees', async (t) => {
  t.ok(can({ role: 'legal' }, 'manageHolds'))
  t.notOk(can({ role: 'admin' }, 'manageHolds'), 'holds are placed by legal only (LEGAL_ONLY)')
  t.ok(can({ role: 'admin' }, 'viewHolds'))
  t.notOk(can({ role: 'qa' }, 'viewHolds'))
  t.notOk(can({ role: 'legal' }, 'qaReview'))
  t.notOk(can({ role: 'agent' }, 'recordings'))
  t.notOk(can(null, 'clientCard'))
  t.equal(homeOf({ role: 'supervisor' }), '/console/live')
  t.equal(homeOf({ role: 'qa' }), '/console/recordings')
  t.equal(homeOf({ role: 'agent' }), '/console/screen-pop')
})

t.test('routes: the deep links handed to the CRM', async (t) => {
  t.match(matchRoute('/console/clients/by-phone/%2B74951234567'), { name: 'clientByPhone', params: { phone: '+74951234567' } })
  t.match(matchRoute('/console/clients/by-phone/+74951234567'), { name: 'clientByPhone', params: { phone: '+74951234567' } })
  t.match(matchRoute('/console/clients/c-1'), { name: 'client', params: { id: 'c-1' } })
  t.match(matchRoute('/console/recordings/abc/'), { name: 'recording', params: { id: 'abc' } })
  t.equal(matchRoute('/console/recordings', '?clientName=Acme').query.get('clientName'), 'Acme')
  t.equal(matchRoute('/console/clients/%E0%A4%A').params.id, '%E0%A4%A', 'a broken escape is kept, not thrown')
  t.equal(matchRoute('/console/nope/x').name, 'notFound')
})

t.test('formatting', async (t) => {
  t.equal(duration(83_456), '1:23')
  t.equal(duration(3_723_000), '1:02:03')
  t.equal(duration(null), '–')
  t.equal(clock(65.25), '1:05.3')
  t.equal(clock(Number.NaN), '0:00.0')
  t.match(dateTime('2026-11-23T10:05:00Z'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/, 'local date and time')
  t.equal(dateTime('not a date'), '–')
  t.equal(dateTime(null), '–')
  t.match(time('2026-11-23T10:05:00Z'), /^\d{2}:\d{2}$/)
  t.equal(time(null), '–')
  t.equal(isoToLocalInput(localInputToIso('2026-11-23T14:05')), '2026-11-23T14:05', 'datetime-local round trip')
  t.equal(localInputToIso(''), undefined)
  t.equal(localInputToIso('garbage'), undefined)
  t.equal(isoToLocalInput(null), '')
  t.equal(percent(1, 4), '25%')
  t.equal(percent(1, 0), '–')
  t.equal(num(8.44, 1), '8.4')
  t.equal(num('8'), '–')
  t.same([bytes(null), bytes(512), bytes(2048), bytes(3 * 1024 * 1024)], ['–', '512 B', '2.0 kB', '3.0 MB'])
})
