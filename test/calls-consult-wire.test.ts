import t from 'tap'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServerWithSimulator, until } from './support/esl-harness.ts'
import { readWavInfo } from './support/esl-wav.ts'
import type { EslEvent } from '../src/esl/event.ts'

// The FreeSWITCH commands attended transfer and conference rely on, at the channel level:
// what the simulator answers must be what FreeSWITCH answers, errors included.
const dir = await mkdtemp(join(tmpdir(), 'sb-consult-wire-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

t.test('bgapi originate: +OK Job-UUID now, BACKGROUND_JOB later (also to a myevents socket), -ERR cause when nobody answers', async (t) => {
  const { h, sim } = await startServerWithSimulator(t, { timeScale: 0.05 })
  sim.call({ bridgeTargets: { 'user/1002': { answerAfterMs: 200 }, 'user/1003': { noAnswer: true }, 'user/1004': { busy: true } } })
  const ch = await h.nextChannel()
  await ch.answer()
  const jobs: EslEvent[] = []
  ch.on('event', (e) => { if (e.name === 'BACKGROUND_JOB') jobs.push(e) })
  t.equal(await ch.bgapi('originate {origination_uuid=11111111-1111-4111-8111-111111111111,originate_timeout=5}user/1002 &park()', { timeoutMs: 5000 }), '+OK 11111111-1111-4111-8111-111111111111\n')
  t.equal(jobs[0].headers['Job-Owner-UUID'], ch.uuid, 'the job names the socket\'s channel as its owner')
  t.equal(jobs[0].headers['Job-Command'], 'originate')
  t.equal(await ch.api('uuid_exists 11111111-1111-4111-8111-111111111111'), 'true', 'the answered leg is parked and alive')
  t.equal(await ch.bgapi('originate {originate_timeout=1}user/1003 &park()', { timeoutMs: 5000 }), '-ERR NO_ANSWER\n')
  t.equal(await ch.bgapi('originate user/1004 &park()', { timeoutMs: 5000 }), '-ERR USER_BUSY\n')
  t.match(await ch.bgapi('originate', { timeoutMs: 5000 }), /^-USAGE/, 'usage error comes as the job result')
  // A leg killed while it rings: the originate reports the cancel.
  const ringing = ch.bgapi('originate {origination_uuid=22222222-2222-4222-8222-222222222222,originate_timeout=5}user/1003 &park()', { timeoutMs: 5000 })
  await until(() => sim.legs.has('22222222-2222-4222-8222-222222222222'))
  t.equal(await ch.api('uuid_kill 22222222-2222-4222-8222-222222222222'), '+OK')
  t.equal(await ringing, '-ERR ORIGINATOR_CANCEL\n')
  t.equal(await ch.api('uuid_exists 22222222-2222-4222-8222-222222222222'), 'false')
})

t.test('uuid_transfer park, uuid_bridge, uuid_record on a leg outside the socket, intercept, uuid_hold events, hupall', async (t) => {
  const { h, sim } = await startServerWithSimulator(t, { timeScale: 0.05 })
  const call = sim.call({ bridgeTargets: { 'user/1001': { answerAfterMs: 100 }, 'user/1002': { answerAfterMs: 100 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  const events: string[] = []
  ch.on('event', (e) => events.push(e.name))
  const bridging = ch.bridge('user/1001', { vars: { switchboard_call_uuid: ch.uuid } })
  const { otherUuid: agent } = (await once(ch, 'bridge'))[0] as { otherUuid: string }
  t.equal(await ch.api(`uuid_setvar ${agent} park_after_bridge true`), '+OK')
  t.equal(await ch.api(`uuid_transfer ${agent} park inline`), '+OK')
  t.match(await bridging, { answered: true }, 'the caller\'s bridge returns; the caller stays')
  t.equal(sim.liveLeg(agent)?.state, 'parked', 'the agent leg lives on, parked')
  t.equal(await ch.api(`uuid_getvar ${agent} switchboard_call_uuid`), ch.uuid, 'dial-string variables are the B-leg\'s')

  t.equal(await ch.api(`uuid_hold ${ch.uuid}`), '+OK Success')
  await t.rejects(ch.api('uuid_hold 99999999-9999-4999-8999-999999999999'), /-ERR Operation failed/)
  const colleague = (await ch.bgapi(`originate {park_after_bridge=true,switchboard_call_uuid=${ch.uuid}}user/1002 &park()`, { timeoutMs: 5000 })).slice(4).trim()
  await t.rejects(ch.api(`uuid_bridge ${agent} 99999999-9999-4999-8999-999999999999`), /-ERR Invalid uuid/)
  t.equal(await ch.api(`uuid_bridge ${agent} ${colleague}`), `+OK ${colleague}`)
  const consultation = join(dir, 'consultation.wav')
  await ch.recordLeg(consultation, { uuid: agent, minSec: 0 })
  await new Promise((r) => setTimeout(r, 100)) // ~2 s
  await ch.stopLegRecording(consultation)
  const info = readWavInfo(readFileSync(consultation))
  t.equal(info.channels, 2, 'stereo: agent left, colleague right')
  t.ok(info.durationMs > 1000, `consultation audio (${Math.round(info.durationMs)} ms)`)

  // Complete: the agent goes, the colleague parks (park_after_bridge) and the caller picks them up.
  t.equal(await ch.api(`uuid_kill ${agent}`), '+OK')
  await until(() => sim.liveLeg(colleague)?.state === 'parked', 2000, 'colleague parked')
  t.equal(await ch.api(`uuid_hold off ${ch.uuid}`), '+OK Success')
  const intercept = ch.execute('intercept', colleague)
  const { otherUuid } = (await once(ch, 'bridge'))[0] as { otherUuid: string }
  t.equal(otherUuid, colleague, 'CHANNEL_BRIDGE names the picked-up leg')
  t.ok(events.includes('CHANNEL_HOLD') && events.indexOf('CHANNEL_UNHOLD') > events.indexOf('CHANNEL_HOLD'), 'hold and unhold reached the socket')
  // The caller hangs up: api_hangup_hook's hupall ends every leg of the call.
  t.equal(await ch.api(`uuid_setvar ${ch.uuid} api_hangup_hook hupall NORMAL_CLEARING switchboard_call_uuid ${ch.uuid}`), '+OK')
  call.hangup()
  await intercept.catch(() => undefined)
  await call.done
  await until(() => sim.legs.size === 0, 2000, 'no legs left')
  t.ok(sim.apiLog.some((e) => e.command === `hupall NORMAL_CLEARING switchboard_call_uuid ${ch.uuid}`), 'the hook ran')
})

t.test('conference: app with add-member/del-member to the member\'s socket, list, record (mono), kick, unknown room', async (t) => {
  const { h, sim } = await startServerWithSimulator(t, { timeScale: 0.05 })
  sim.call({ bridgeTargets: { 'user/1002': { answerAfterMs: 100 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  const maintenance: EslEvent[] = []
  ch.on('event', (e) => { if (e.headers['Event-Subclass'] === 'conference::maintenance') maintenance.push(e) })
  await t.rejects(ch.api('conference nope list'), /-ERR Conference nope not found/)
  const inRoom = ch.execute('conference', 'room-1@default')
  await until(() => maintenance.length === 1)
  t.match(maintenance[0].headers, { Action: 'add-member', 'Conference-Name': 'room-1', 'Member-ID': '1', 'Unique-ID': ch.uuid })
  const path = join(dir, 'room.wav')
  t.equal(await ch.api(`conference room-1 record ${path}`), `+OK Record file ${path}`)
  const colleague = (await ch.bgapi('originate user/1002 &conference(room-1@default)', { timeoutMs: 5000 })).slice(4).trim()
  const list = await ch.api('conference room-1 list')
  t.same(list.split('\n').map((l) => l.split(';')[2]), [ch.uuid, colleague], 'both members listed with their uuids')
  await new Promise((r) => setTimeout(r, 100))
  t.match(await ch.api('conference room-1 kick 1'), /^\+OK kicked 1/)
  await inRoom
  t.equal(maintenance.at(-1)!.headers['Action'], 'del-member', 'leaving reaches the socket too')
  t.equal(await ch.api(`conference room-1 norecord ${path}`), '+OK Stopped recording 1 file(s)')
  t.equal(readWavInfo(readFileSync(path)).channels, 1, 'the room is recorded as one mono mix')
  t.match(await ch.api(`conference room-1 hup all`), /^\+OK hup 2/)
  await until(() => sim.conferences.size === 0 && sim.legs.size === 0, 2000, 'room gone')
})

t.test('transfers config: defaults, and bad values rejected with the field path', async (t) => {
  const { loadSwitchboardFile, validateSwitchboardFile } = await import('../src/config/switchboard-file.ts')
  // The example file itself (not via server.ts: importing the whole server costs seconds).
  const cfg = await loadSwitchboardFile(join(import.meta.dirname, '..', 'config', 'switchboard.example.yaml'))
  t.same(cfg.transfers, { holdMusic: 'local_stream://moh', consultRingSec: 20, conferenceProfile: 'default', legPollMs: 1000 }, 'the example config')
  const raw = JSON.parse(JSON.stringify(cfg)) as Record<string, Record<string, unknown>>
  delete raw.transfers
  t.same(validateSwitchboardFile(raw).transfers.consultRingSec, 20, 'absent section → defaults')
  for (const [field, value, message] of [
    ['holdMusic', 'moh file.wav', /transfers\.holdMusic/],
    ['consultRingSec', 0, /transfers\.consultRingSec/],
    ['conferenceProfile', 'a b', /transfers\.conferenceProfile/],
    ['legPollMs', 5, /transfers\.legPollMs/],
  ] as const) {
    t.throws(() => validateSwitchboardFile({ ...raw, transfers: { [field]: value } }), { message }, `${field}: ${JSON.stringify(value)}`)
  }
})
