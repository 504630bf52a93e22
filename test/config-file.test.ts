import t from 'tap'
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { readFileSync } from 'node:fs'
import {
  validateSwitchboardFile, loadSwitchboardFile, missingPromptFiles, jsonPointerToPath,
} from '../src/config/switchboard-file.ts'
import { ConfigError } from '../src/errors.ts'

const examplePath = fileURLToPath(new URL('../config/switchboard.example.yaml', import.meta.url))
const example = () => parseYaml(readFileSync(examplePath, 'utf8')) as any

function minimal(): any {
  return {
    offices: [{ id: 'msk', name: 'Moscow', tz: 'Europe/Moscow', hours: { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00' } }],
    queues: [{ id: 'sales', name: 'Sales' }, { id: 'production', name: 'P' }, { id: 'finance', name: 'F' }],
  }
}

t.test('the shipped example validates and gets defaults', async t => {
  const cfg = await loadSwitchboardFile(examplePath)
  t.equal(cfg.defaultRegion, 'RU')
  t.equal(cfg.routing.managerRingSec, 30)
  t.equal(cfg.routing.kindRoutes.supplier, 'production')
  t.equal(cfg.queues.find(q => q.id === 'production')!.strategy, 'round-robin')
  t.equal(cfg.queues.find(q => q.id === 'sales-nsk')!.maxLength, 50, 'default maxLength')
  t.equal(cfg.offices.find(o => o.id === 'msk')!.calendar.holidays.length, 0, 'office calendar defaults to empty')
  t.equal(cfg.dids['+74951230002'].ivrMenu, 'main')
  t.equal(cfg.ivr[0].options['4'].target, 'suppliers')
  t.equal(cfg.csat.scale, 10)
})

t.test('minimal config gets every default', async t => {
  const input = minimal()
  const cfg = validateSwitchboardFile(input)
  t.equal(cfg.defaultRegion, 'RU')
  t.same(cfg.routing.segmentPriority, { A: 10, B: 5, C: 0 })
  t.same(cfg.routing.kindRoutes, { unknown: 'sales', supplier: 'production', other: 'finance' })
  t.equal(cfg.routing.afterHours.createCallback, true)
  t.equal(cfg.routing.repeatCaller.enabled, true)
  t.same(cfg.recording, {
    format: 'opus', bitrateKbps: 24, stereo: true, recordInternal: true, formatPolicies: [],
    pipeline: { concurrency: 2, quietSec: 120, scanIntervalSec: 30, maxRetryDelaySec: 60, spoolWarnFreePercent: 15, spoolCriticalFreePercent: 5 },
  })
  t.equal(cfg.stats.serviceLevelSec, 20)
  t.equal(cfg.stats.minCountedTalkSec, 15)
  t.same(cfg.gateways, { outbound: 'trunk', fmc: 'fmc', numberFormat: 'e164', ringSec: 60 })
  t.same(cfg.fmc, { destinationFrom: 'request-uri', rejectCause: 'CALL_REJECTED', mobileFirst: [] })
  t.equal(cfg.queues[0].strategy, 'longest-idle')
  t.equal(input.routing, undefined, 'input is not mutated')
})

t.test('JSON loads too; unknown extension and unreadable file are ConfigErrors', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'sbcfg-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'c.json'), JSON.stringify(minimal()))
  t.equal((await loadSwitchboardFile(join(dir, 'c.json'))).offices[0].id, 'msk')
  await writeFile(join(dir, 'c.toml'), 'x = 1')
  await t.rejects(loadSwitchboardFile(join(dir, 'c.toml')), { code: 'config_invalid', message: /unsupported extension/ })
  await t.rejects(loadSwitchboardFile(join(dir, 'missing.yaml')), { code: 'config_invalid', message: /cannot read/ })
  await writeFile(join(dir, 'bad.yaml'), 'offices: [ {')
  await t.rejects(loadSwitchboardFile(join(dir, 'bad.yaml')), { message: /cannot parse/ })
  const bad = minimal(); bad.queues[0].strategy = 'random'
  await writeFile(join(dir, 'bad2.yaml'), JSON.stringify(bad))
  await t.rejects(loadSwitchboardFile(join(dir, 'bad2.yaml')), { message: /bad2\.yaml: queues\[0\]\.strategy: must be one of/ })
})

t.test('jsonPointerToPath', async t => {
  t.equal(jsonPointerToPath('/queues/1/strategy'), 'queues[1].strategy')
  t.equal(jsonPointerToPath('/dids/+7495/officeId'), 'dids["+7495"].officeId')
  t.equal(jsonPointerToPath(''), '(root)')
})

type Case = [name: string, mutate: (c: any) => void, path: string | RegExp]
const bad: Case[] = [
  ['bad strategy', c => { c.queues[1].strategy = 'random' }, /^queues\[1\]\.strategy: must be one of longest-idle, round-robin, ring-all, sticky/],
  ['unknown top-level field', c => { c.colour = 'red' }, /^colour: unknown field/],
  ['unknown nested field', c => { c.routing = { managerRingSecs: 30 } }, /^routing\.managerRingSecs: unknown field/],
  ['invalid tz', c => { c.offices[0].tz = 'Europe/Mordor' }, /^offices\[0\]\.tz: .*not a valid IANA/],
  ['bad hours format', c => { c.offices[0].hours.mon = '9-18' }, /^offices\[0\]\.hours\.mon: must be one of 'HH:mm-HH:mm', closed/],
  ['hours end before start', c => { c.offices[0].hours.tue = '18:00-09:00' }, /^offices\[0\]\.hours\.tue: .*end must be after start/],
  ['missing weekday', c => { delete c.offices[0].hours.wed }, /^offices\[0\]\.hours\.wed/],
  ['impossible holiday date', c => { c.calendar = { holidays: ['2025-02-30'] } }, /^calendar\.holidays\[0\]: .*not a calendar date/],
  ['bad holiday format', c => { c.offices[0].calendar = { holidays: ['01.01.2025'] } }, /^offices\[0\]\.calendar\.holidays\[0\]: must be 'YYYY-MM-DD'/],
  ['short day without hours', c => { c.calendar = { shortDays: [{ date: '2025-03-07' }] } }, /^calendar\.shortDays\[0\]\.hours/],
  ['no offices', c => { c.offices = [] }, /^offices: /],
  ['duplicate queue', c => { c.queues.push({ id: 'sales', name: 'again' }) }, /^queues\[3\]\.id: duplicate id "sales"/],
  ['did → unknown menu', c => { c.dids = { '+74951230000': { source: 's', officeId: 'msk', ivrMenu: 'nope' } } }, /^dids\["\+74951230000"\]\.ivrMenu: unknown IVR menu "nope"/],
  ['did → unknown office', c => { c.dids = { '+74951230000': { source: 's', officeId: 'spb' } } }, /^dids\["\+74951230000"\]\.officeId: unknown office "spb"/],
  ['did → unknown queue', c => { c.dids = { '+74951230000': { source: 's', officeId: 'msk', queue: 'x' } } }, /\.queue: unknown queue "x"/],
  ['did key not a number', c => { c.dids = { 'sales-line': { source: 's', officeId: 'msk' } } }, /^dids\["sales-line"\]: unknown field/],
  ['did same digits twice', c => { c.dids = { '+74951230000': { source: 's', officeId: 'msk' }, '74951230000': { source: 't', officeId: 'msk' } } }, /same number/],
  ['did without source', c => { c.dids = { '+74951230000': { officeId: 'msk' } } }, /^dids\["\+74951230000"\]\.source/],
  ['ivr option → unknown queue', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { label: 'x', action: 'queue', target: 'nope' } } }] }, /^ivr\[0\]\.options\["1"\]\.target: unknown queue "nope"/],
  ['ivr option → unknown menu', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '2': { label: 'x', action: 'menu', target: 'sub' } } }] }, /^ivr\[0\]\.options\["2"\]\.target: unknown IVR menu "sub"/],
  ['ivr option bad action', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { label: 'x', action: 'dance' } } }] }, /^ivr\[0\]\.options\["1"\]\.action: must be one of queue, menu, route, extension, hangup/],
  ['ivr queue option without target', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { label: 'x', action: 'queue' } } }] }, /^ivr\[0\]\.options\["1"\]\.target: required for action queue/],
  ['ivr option key not a digit', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '12': { label: 'x', action: 'hangup' } } }] }, /^ivr\[0\]\.options\["12"\]: unknown field/],
  ['ivr without label', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { action: 'hangup' } } }] }, /^ivr\[0\]\.options\["1"\]\.label/],
  ['ivr default → unknown menu', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { label: 'x', action: 'hangup' } }, defaultAction: { action: 'menu', target: 'zz' } }] }, /^ivr\[0\]\.defaultAction\.target: unknown IVR menu/],
  ['ivr extension not digits', c => { c.ivr = [{ id: 'm', prompt: 'p.wav', options: { '1': { label: 'x', action: 'extension', target: 'bob' } } }] }, /^ivr\[0\]\.options\["1"\]\.target: extension must be/],
  ['queue overflow → unknown queue', c => { c.queues[0].overflow = { action: 'queue', target: 'ghost' } }, /^queues\[0\]\.overflow\.target: unknown queue "ghost"/],
  ['queue overflow into itself', c => { c.queues[0].overflow = { action: 'queue', target: 'sales' } }, /^queues\[0\]\.overflow\.target: a queue cannot overflow into itself/],
  ['queue unknown group', c => { c.queues[0].groupIds = ['g'] }, /^queues\[0\]\.groupIds\[0\]: unknown group "g"/],
  ['negative maxLength', c => { c.queues[2].maxLength = 0 }, /^queues\[2\]\.maxLength: /],
  ['kind route → missing queue (default production)', c => { c.queues = c.queues.filter((q: any) => q.id !== 'production') }, /^routing\.kindRoutes\.supplier: unknown queue "production"/],
  ['segment queue unknown', c => { c.routing = { segmentQueues: { C: 'cc' } } }, /^routing\.segmentQueues\.C: unknown queue "cc"/],
  ['bad segment key', c => { c.routing = { segmentPriority: { D: 1 } } }, /^routing\.segmentPriority\.D: unknown field/],
  ['blacklist queue treatment without queue', c => { c.routing = { blacklist: { enabled: true, treatment: 'queue' } } }, /^routing\.blacklist\.queue: required/],
  ['blacklist bad treatment', c => { c.routing = { blacklist: { treatment: 'shout' } } }, /^routing\.blacklist\.treatment: must be one of reject, queue/],
  ['holiday queue unknown', c => { c.routing = { afterHours: { holidayQueue: 'q' } } }, /^routing\.afterHours\.holidayQueue: unknown queue/],
  ['webhook bad url', c => { c.routing = { decisionWebhook: { url: 'ftp://x' } } }, /^routing\.decisionWebhook\.url: must be http\(s\) URL/],
  ['default office unknown', c => { c.routing = { defaultOfficeId: 'spb' } }, /^routing\.defaultOfficeId: unknown office/],
  ['caller id not E.164', c => { c.callerId = { default: '84951234567' } }, /^callerId\.default: must be E\.164/],
  ['caller id rule unknown field', c => { c.callerId = { default: '+74951234567', rules: [{ prefix: '+7383', callerId: '+73830000000' }] } }, /^callerId\.rules\[0\]\.prefix: unknown field/],
  ['recording format', c => { c.recording = { format: 'flac' } }, /^recording\.format: must be one of opus, mp3, wav/],
  ['fmc destination from a variable without its name', c => { c.fmc = { destinationFrom: 'variable' } }, /^fmc\.variable: required when destinationFrom is variable/],
  ['fmc destination source unknown', c => { c.fmc = { destinationFrom: 'to-header' } }, /^fmc\.destinationFrom: must be one of request-uri, diversion, history-info, variable/],
  ['gateway name with a slash', c => { c.gateways = { outbound: 'trunk/evil' } }, /^gateways\.outbound: must be carrier gateway/],
  ['retention below minimum', c => { c.retention = { minimumDays: 90, policies: [{ callKind: 'internal', days: 30 }] } }, /^retention\.policies\[0\]\.days: 30 is below/],
  ['retention default below minimum', c => { c.retention = { minimumDays: 400 } }, /^retention\.defaultDays: 365 is below/],
  ['retention policy unknown queue', c => { c.retention = { policies: [{ queue: 'zz', days: 400 }] } }, /^retention\.policies\[0\]\.queue: unknown queue/],
  ['csat scale', c => { c.csat = { scale: 11 } }, /^csat\.scale: /],
  ['office fallback queue unknown', c => { c.offices[0].fallbackQueue = 'x' }, /^offices\[0\]\.fallbackQueue: unknown queue/],
  ['group office unknown', c => { c.groups = [{ id: 'g', name: 'G', officeId: 'x' }] }, /^groups\[0\]\.officeId: unknown office/],
  ['defaultRegion lower case', c => { c.defaultRegion = 'ru' }, /^defaultRegion: /],
]

t.test('bad configs are rejected with the field path', async t => {
  for (const [name, mutate, expected] of bad) {
    const c = minimal()
    mutate(c)
    try {
      validateSwitchboardFile(c)
      t.fail(`${name}: accepted`)
    } catch (err) {
      t.type(err, ConfigError, name)
      t.match((err as Error).message, expected, name)
    }
  }
})

t.test('the example breaks where expected when a referenced queue is removed', async t => {
  const c = example()
  c.queues = c.queues.filter((q: any) => q.id !== 'callcentre')
  t.throws(() => validateSwitchboardFile(c), { message: /callcentre/ })
  t.throws(() => validateSwitchboardFile(null), { message: /must be an object/ })
  t.throws(() => validateSwitchboardFile([]), ConfigError)
})

t.test('prompt files are checked only against a prompts dir', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'sbprompts-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cfg = validateSwitchboardFile(example())
  const missing = await missingPromptFiles(cfg, dir)
  const paths = missing.map(m => m.path)
  t.ok(paths.includes('ivr[0].prompt'))
  t.ok(paths.includes('routing.afterHours.prompt'))
  t.ok(paths.includes('csat.prompt'))
  t.ok(paths.includes('queues[0].musicOnHold'))
  await mkdir(join(dir, 'ivr'))
  await mkdir(join(dir, 'moh'))
  for (const f of ['ivr/main.wav', 'ivr/invalid.wav', 'ivr/suppliers.wav', 'after-hours.wav', 'csat.wav', 'moh/default.wav']) await writeFile(join(dir, f), 'RIFF')
  t.same(await missingPromptFiles(cfg, dir), [])
  const tone = validateSwitchboardFile({ ...minimal(), ivr: [{ id: 'm', prompt: 'tone_stream://%(200,0,800)', options: { '1': { label: 'x', action: 'hangup' } } }] })
  t.notOk((await missingPromptFiles(tone, dir)).some(p => p.path === 'ivr[0].prompt'), 'tones are not files')
})
