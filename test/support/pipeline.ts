import type { EventBus } from '../../src/events/bus.ts'
import { randomUUID } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import type { Pool } from '../../src/db/pool.ts'
import type { ObjectStore } from '../../src/recordings/store/object-store.ts'
import { Spool, type SpoolSidecar } from '../../src/recordings/spool.ts'
import { RecordingPipeline, DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from '../../src/recordings/pipeline.ts'
import { loadSwitchboardFile } from '../../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../../src/server.ts'
import { silentLogger, type Logger } from '../../src/log.ts'
import { writeWav, type WavSpec } from './audio-fixtures.ts'

export async function tempSpool(): Promise<Spool> {
  const spool = new Spool(await mkdtemp(path.join(tmpdir(), 'sb-spool-')))
  await spool.init()
  return spool
}

export async function makePipeline(pool: Pool, store: ObjectStore, spool: Spool, opts: Partial<PipelineOptions> & { events?: EventBus } = {}, log: Logger = silentLogger()): Promise<RecordingPipeline> {
  const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
  return new RecordingPipeline(
    { pool, store, spool, log, events: opts.events, recording: () => cfg.recording, retention: () => cfg.retention },
    { ...DEFAULT_PIPELINE_OPTIONS, scanIntervalSec: 1, ...opts },
    new Registry(),
  )
}

/** Put a finished recording into the spool as FreeSWITCH + a CallSession would. */
export async function spoolRecording(spool: Spool, spec: WavSpec, facts: Partial<SpoolSidecar> = {}): Promise<SpoolSidecar> {
  const sidecar: SpoolSidecar = {
    recordingId: randomUUID(), callUuid: randomUUID(), legUuid: randomUUID(), direction: 'inbound',
    caller: '+74951234567', callee: '7001', did: '+74951112233', clientId: null, agentId: null, queueId: null, segment: null,
    stereo: spec.channels === 2, startedAt: new Date().toISOString(), stoppedAt: null, pausedSpans: [], ...facts,
  }
  const wav = await spool.open(sidecar)
  await writeWav(wav, spec)
  await spool.update(sidecar.recordingId, { stoppedAt: new Date().toISOString() })
  return { ...sidecar, stoppedAt: new Date().toISOString() }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000, every = 100): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, every))
  }
}
