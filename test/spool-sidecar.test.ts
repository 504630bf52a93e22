import t from 'tap'
import { randomUUID } from 'node:crypto'
import { appendFile, readFile, rm, writeFile, readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { lastCompleteSidecar, type SpoolSidecar } from '../src/recordings/spool.ts'
import { tempSpool } from './support/pipeline.ts'

const sidecar = (over: Partial<SpoolSidecar> = {}): SpoolSidecar => ({
  recordingId: randomUUID(), callUuid: randomUUID(), legUuid: randomUUID(), direction: 'inbound',
  caller: '+74951234567', callee: '7001', did: '+74951112233', clientId: 'c1', agentId: null, queueId: null, segment: 'B',
  stereo: true, startedAt: new Date().toISOString(), stoppedAt: null, pausedSpans: [], ...over,
})

t.test('a sidecar is created once, exclusively, and changed by appending whole documents', async (t) => {
  const spool = await tempSpool()
  t.teardown(() => rm(spool.dir, { recursive: true, force: true }))
  const s = sidecar()
  const wav = await spool.open(s)
  t.equal(wav, spool.wavPath(s.recordingId))
  await t.rejects(spool.open(s), { code: 'EEXIST' }, 'a second open of the same recording never overwrites the first sidecar')
  t.same(await spool.read(s.recordingId), s)

  const stopped = await spool.update(s.recordingId, { stoppedAt: '2026-11-23T10:00:00.000Z', agentId: 'mgr-1' }, s)
  t.match(stopped, { stoppedAt: '2026-11-23T10:00:00.000Z', agentId: 'mgr-1', clientId: 'c1' })
  t.same(await spool.read(s.recordingId), stopped, 'the last line is the current sidecar')
  const lines = (await readFile(spool.sidecarPath(s.recordingId), 'utf8')).split('\n').filter((l) => l !== '')
  t.equal(lines.length, 2, 'two whole documents, one per line')
  t.same(JSON.parse(lines[0]), s, 'the first document is left as it was written')

  // Without the call's copy: read back from the file.
  const paused = await spool.update(s.recordingId, (cur) => ({ pausedSpans: [...cur.pausedSpans, { startMs: 1, endMs: 2 }] }))
  t.same(paused?.pausedSpans, [{ startMs: 1, endMs: 2 }])
  t.equal(paused?.agentId, 'mgr-1', 'derived from the current (last) document')

  const before = await readFile(spool.sidecarPath(s.recordingId), 'utf8')
  t.same(await spool.update(s.recordingId, () => ({}), paused!), paused, 'an empty change…')
  t.equal(await readFile(spool.sidecarPath(s.recordingId), 'utf8'), before, '…writes nothing')
  t.same((await readdir(spool.dir)).filter((n) => !n.startsWith(s.recordingId) && n !== 'quarantine' && n !== '.work'), [], 'no temporary files left beside it')
})

t.test('a write torn by a crash leaves the previous document the truth', async (t) => {
  const spool = await tempSpool()
  t.teardown(() => rm(spool.dir, { recursive: true, force: true }))
  const s = sidecar()
  await spool.open(s)
  const line = JSON.stringify({ ...s, stoppedAt: '2026-11-23T10:00:00.000Z', agentId: 'mgr-9' })
  for (const cut of [1, 20, Math.floor(line.length / 2), line.length - 1]) {
    await writeFile(spool.sidecarPath(s.recordingId), JSON.stringify(s) + '\n' + line.slice(0, cut))
    t.same(await spool.read(s.recordingId), s, `torn after ${cut} of ${line.length} characters → the first document`)
  }
  await appendFile(spool.sidecarPath(s.recordingId), '\0\0\0\0\n') // a power loss may leave zeros where the data should be
  t.same(await spool.read(s.recordingId), s)

  // After the crash, the next change appended behind a torn line still reads as the current document.
  await writeFile(spool.sidecarPath(s.recordingId), JSON.stringify(s) + '\n' + line.slice(0, 30))
  const after = await spool.update(s.recordingId, { agentId: 'mgr-7' })
  t.equal(after?.agentId, 'mgr-7')
  t.same(await spool.read(s.recordingId), after, 'not glued to the torn line')

  await writeFile(spool.sidecarPath(s.recordingId), JSON.stringify(s).slice(0, 40))
  t.equal(await spool.read(s.recordingId), null, 'a torn first (and only) write: treated like a WAV without a sidecar')
  await writeFile(spool.sidecarPath(s.recordingId), JSON.stringify(s))
  t.same(await spool.read(s.recordingId), s, 'a single document without a newline (older versions) reads as before')
})

t.test('an update never brings back a sidecar that is gone', async (t) => {
  const spool = await tempSpool()
  t.teardown(() => rm(spool.dir, { recursive: true, force: true }))
  const s = sidecar()
  await spool.open(s)
  await spool.remove(s.recordingId) // the pipeline stored the quiet WAV of a long call already
  t.equal(await spool.update(s.recordingId, { stoppedAt: new Date().toISOString() }, s), null, 'with the call\'s copy')
  t.equal(await spool.update(s.recordingId, { stoppedAt: new Date().toISOString() }), null, 'without it')
  t.notOk(existsSync(spool.sidecarPath(s.recordingId)), 'no sidecar was created')
})

t.test('lastCompleteSidecar ignores blank lines and documents that are not sidecars', async (t) => {
  const s = sidecar()
  t.same(lastCompleteSidecar(`${JSON.stringify(s)}\n\n[1,2]\n"x"\nnull\n`), s)
  t.equal(lastCompleteSidecar(''), null)
  t.equal(lastCompleteSidecar('\n\n'), null)
})

t.test('a recording FreeSWITCH did not start leaves no sidecar behind; one whose WAV exists keeps it', async (t) => {
  const spool = await tempSpool()
  t.teardown(() => rm(spool.dir, { recursive: true, force: true }))
  const unstarted = sidecar()
  await spool.open(unstarted)
  t.equal(await spool.discardUnstarted(unstarted.recordingId), true)
  t.notOk(existsSync(spool.sidecarPath(unstarted.recordingId)), 'the sidecar went')
  const started = sidecar()
  const wav = await spool.open(started)
  await writeFile(wav, 'RIFF')
  t.equal(await spool.discardUnstarted(started.recordingId), false, 'a WAV exists: FreeSWITCH did start it')
  t.ok(existsSync(spool.sidecarPath(started.recordingId)), 'so the sidecar stays for the scanner')
})

t.test('a leg recording refused by FreeSWITCH (no such channel) removes its sidecar; the call goes on', async (t) => {
  const { startServerWithSimulator } = await import('./support/esl-harness.ts')
  const { startLegRecording } = await import('../src/calls/steps/record.ts')
  const { silentLogger } = await import('../src/log.ts')
  const spool = await tempSpool()
  t.teardown(() => rm(spool.dir, { recursive: true, force: true }))
  const { h, sim } = await startServerWithSimulator(t)
  const call = sim.call({})
  const channel = await h.nextChannel()
  await channel.answer()
  const state = { uuid: channel.uuid, direction: 'inbound', caller: '+74951234567', did: '+74951112233', clientId: null, queueId: null, segment: null, sidecars: new Map(), recordingIds: [] as string[] }
  const ctx = { channel, state, log: silentLogger(), deps: { spool, config: () => ({ recording: { stereo: true, recordInternal: true } }), recordings: { mayStartOptionalRecording: () => true } } }
  // uuid_record on a leg FreeSWITCH does not know: `-ERR No such channel!`.
  const r = await startLegRecording(ctx as never, randomUUID(), randomUUID(), 'mgr-1')
  t.equal(r, null, 'not started')
  t.same(state.recordingIds, [], 'nothing handed to the pipeline')
  t.same((await readdir(spool.dir)).filter((n) => n.endsWith('.json')), [], 'no sidecar left in the spool')
  t.equal(await channel.playback('still-here.wav'), 'FILE PLAYED', 'the call goes on')
  await channel.hangup()
  await call.done
})
