// Stored format per policy (recording.formatPolicies), through the real pipeline with real
// ffmpeg: one call with three recordings (N recordings per call), each matching a
// different policy — Opus/Ogg by default, MP3 for a queue, the original WAV for segment A —
// every one stored, verified, linked to the same call, with the right codec, extension and
// content type, and the QA analysis computed from the one ffmpeg run.
import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomUUID, createHash } from 'node:crypto'
import { buffer } from 'node:stream/consumers'
import { Registry } from 'prom-client'
import { startTestDatabase } from './support/db.ts'
import { tempSpool, spoolRecording, waitFor } from './support/pipeline.ts'
import { FsObjectStore } from '../src/recordings/store/fs-store.ts'
import { RecordingPipeline, DEFAULT_PIPELINE_OPTIONS } from '../src/recordings/pipeline.ts'
import { loadSwitchboardFile, validateSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { recordingFormat } from '../src/recordings/format-policy.ts'
import { probeRecording } from '../src/recordings/probe.ts'
import { audioContentType } from '../src/recordings/access/range.ts'
import { silentLogger } from '../src/log.ts'

const db = await startTestDatabase()
t.teardown(() => db.close())

const spec = {
  channels: 2 as const,
  segments: [
    [{ kind: 'noise' as const, ms: 2000 }, { kind: 'silence' as const, ms: 2000 }],
    [{ kind: 'silence' as const, ms: 1500 }, { kind: 'tone' as const, ms: 2000, freq: 500 }, { kind: 'silence' as const, ms: 500 }],
  ],
}

t.test('recordingFormat: first matching policy wins, else the default', async (t) => {
  const cfg = {
    format: 'opus', bitrateKbps: 24,
    formatPolicies: [
      { name: 'legal A in sales', queue: 'sales', segment: 'A' as const, format: 'wav' as const },
      { name: 'sales', queue: 'sales', format: 'mp3' as const, bitrateKbps: 32 },
      { callKind: 'internal' as const, format: 'opus' as const, bitrateKbps: 16 },
    ],
  } as const
  const f = (callKind: 'inbound' | 'internal', queueId: string | null, segment: 'A' | 'B' | null) => recordingFormat({ callKind, queueId, segment }, cfg as never)
  t.same(f('inbound', 'sales', 'A'), { format: 'wav', bitrateKbps: 24, name: 'legal A in sales' })
  t.same(f('inbound', 'sales', 'B'), { format: 'mp3', bitrateKbps: 32, name: 'sales' })
  t.same(f('internal', null, null), { format: 'opus', bitrateKbps: 16, name: 'formatPolicies[2]' })
  t.same(f('inbound', 'support', 'A'), { format: 'opus', bitrateKbps: 24, name: 'default' })
})

t.test('config: formatPolicies are validated (unknown queue, bad format) and default to []', async (t) => {
  const base = await loadSwitchboardFile(EXAMPLE_CONFIG)
  t.ok(Array.isArray(base.recording.formatPolicies), 'the example config loads with a list')
  const raw = { offices: [{ id: 'msk', name: 'M', tz: 'Europe/Moscow', hours: { mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00', sat: 'closed', sun: 'closed' } }], queues: ['sales', 'production', 'finance'].map((id) => ({ id, name: id })) }
  t.throws(() => validateSwitchboardFile({ ...raw, recording: { formatPolicies: [{ queue: 'nope', format: 'mp3' }] } }), /recording\.formatPolicies\[0\]\.queue/)
  t.throws(() => validateSwitchboardFile({ ...raw, recording: { formatPolicies: [{ format: 'flac' }] } }), /recording\.formatPolicies\[0\]\.format/)
  t.equal(validateSwitchboardFile({ ...raw, recording: { formatPolicies: [{ queue: 'sales', format: 'wav' }] } }).recording.formatPolicies[0].format, 'wav')
})

t.test('one call, three recordings, three formats by policy: each stored, verified, linked', async (t) => {
  const objects = await mkdtemp(path.join(tmpdir(), 'sb-objects-'))
  t.teardown(() => rm(objects, { recursive: true, force: true }))
  const store = new FsObjectStore(objects)
  await store.init()
  const spool = await tempSpool()
  const base = await loadSwitchboardFile(EXAMPLE_CONFIG)
  const recording = {
    ...base.recording,
    formatPolicies: [
      { name: 'key accounts keep the original', segment: 'A' as const, format: 'wav' as const },
      { name: 'callcentre as mp3', queue: 'callcentre', format: 'mp3' as const, bitrateKbps: 32 },
    ],
  }
  const pipeline = new RecordingPipeline(
    { pool: db.pool, store, spool, log: silentLogger(), recording: () => recording, retention: () => base.retention },
    { ...DEFAULT_PIPELINE_OPTIONS, scanIntervalSec: 1 }, new Registry())
  await pipeline.start()
  t.teardown(() => pipeline.stop())

  const callUuid = randomUUID()
  const recs = [
    await spoolRecording(spool, spec, { callUuid, legUuid: callUuid }), // the caller leg: default
    await spoolRecording(spool, spec, { callUuid, queueId: 'callcentre' }), // a conversation in callcentre
    await spoolRecording(spool, spec, { callUuid, segment: 'A' }), // a key account's leg
  ]
  await Promise.all(recs.map((r) => pipeline.enqueue(r.recordingId)))
  const rows = await waitFor('three stored rows', async () => {
    const r = await db.pool.query(`SELECT * FROM recordings WHERE call_uuid = $1 AND state = 'stored'`, [callUuid])
    return r.rowCount === 3 ? r.rows : null
  })
  const byId = new Map(rows.map((r) => [r.id as string, r]))
  const want = [
    { codec: 'opus', ext: '.opus', type: 'audio/ogg', probeFormat: 'ogg' },
    { codec: 'mp3', ext: '.mp3', type: 'audio/mpeg', probeFormat: 'mp3' },
    { codec: 'pcm_s16le', ext: '.wav', type: 'audio/wav', probeFormat: 'wav' },
  ]
  for (const [i, rec] of recs.entries()) {
    const row = byId.get(rec.recordingId)
    const w = want[i]
    t.equal(row.codec, w.codec, `${w.codec}: codec on the row`)
    t.equal(path.extname(row.object_key), w.ext, `${w.codec}: object key extension`)
    t.equal(row.channels, 2, `${w.codec}: stereo kept`)
    t.ok(Math.abs(row.duration_ms - 4000) < 150, `${w.codec}: duration ≈ 4 s (${row.duration_ms})`)
    t.equal(audioContentType(row.object_key, row.codec), w.type, `${w.codec}: streamed as ${w.type}`)
    const meta = JSON.parse(await readFile(path.join(objects, `${row.object_key}.meta.json`), 'utf8')) as Record<string, string>
    t.equal(meta['content-type'], w.type, `${w.codec}: content type stored with the object`)
    const bytes = await buffer(await store.get(row.object_key))
    t.equal(createHash('sha256').update(bytes).digest('hex'), row.sha256, `${w.codec}: SHA-256 verifies`)
    const probe = await probeRecording(path.join(objects, row.object_key))
    t.match(probe.format, w.probeFormat, `${w.codec}: the object is real ${w.probeFormat} audio`)
    const m = row.metrics as { channels: Array<{ talkMs: number }>; overtalkMs: number }
    t.ok(Math.abs(m.channels[0].talkMs - 2000) < 200, `${w.codec}: caller talk ≈ 2 s from the single ffmpeg run (${m.channels[0].talkMs})`)
    t.ok(Math.abs(m.overtalkMs - 500) < 200, `${w.codec}: overtalk ≈ 0.5 s (${m.overtalkMs})`)
  }
  const wav = byId.get(recs[2].recordingId)
  const mp3 = byId.get(recs[1].recordingId)
  const opus = byId.get(recs[0].recordingId)
  t.ok(Number(wav.bytes) > Number(mp3.bytes) && Number(mp3.bytes) > Number(opus.bytes), `sizes: wav ${wav.bytes} > mp3 ${mp3.bytes} > opus ${opus.bytes}`)
})
