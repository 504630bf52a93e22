import type { RecordingConfig } from '../config/switchboard-file.ts'
import type { OutputFormat } from './transcode.ts'
import type { RetentionFacts } from './retention.ts'

export interface FormatChoice {
  format: OutputFormat
  bitrateKbps: number
  /** the policy that chose it (its name, or `formatPolicies[i]`), or 'default' */
  name: string
}

/**
 * The stored format of a recording: the first `recording.formatPolicies` entry whose
 * conditions (call kind, queue, client segment; all that are given) match the
 * recording's call facts, else `recording.format` / `recording.bitrateKbps`. First match
 * wins, so specific rules go first (e.g. "segment A in queue sales → wav" before
 * "queue sales → mp3"). Pure: decided when the recording is processed, from its sidecar.
 */
export function recordingFormat(facts: RetentionFacts, cfg: Pick<RecordingConfig, 'format' | 'bitrateKbps' | 'formatPolicies'>): FormatChoice {
  const policies = cfg.formatPolicies ?? []
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]
    if (p.callKind !== undefined && p.callKind !== facts.callKind) continue
    if (p.queue !== undefined && p.queue !== facts.queueId) continue
    if (p.segment !== undefined && p.segment !== facts.segment) continue
    return { format: p.format, bitrateKbps: p.bitrateKbps ?? cfg.bitrateKbps, name: p.name ?? `formatPolicies[${i}]` }
  }
  return { format: cfg.format as OutputFormat, bitrateKbps: cfg.bitrateKbps, name: 'default' }
}
