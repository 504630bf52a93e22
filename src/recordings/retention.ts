import type { RetentionConfig } from '../config/switchboard-file.ts'

export interface RetentionFacts {
  callKind: 'inbound' | 'outbound' | 'internal' | 'fmc'
  queueId: string | null
  segment: 'A' | 'B' | 'C' | null
}

/**
 * How long a recording must be kept. Every policy whose conditions all match applies
 * and the longest wins (a legal minimum must never be shortened by a more specific
 * rule); never below `minimumDays`. Pure: the sweeper and the pipeline share it.
 */
export function retentionDays(facts: RetentionFacts, cfg: RetentionConfig): number {
  let days: number | null = null
  for (const p of cfg.policies) {
    if (p.callKind !== undefined && p.callKind !== facts.callKind) continue
    if (p.queue !== undefined && p.queue !== facts.queueId) continue
    if (p.segment !== undefined && p.segment !== facts.segment) continue
    if (p.fmc !== undefined && p.fmc !== (facts.callKind === 'fmc')) continue
    days = Math.max(days ?? 0, p.days)
  }
  return Math.max(days ?? cfg.defaultDays, cfg.minimumDays)
}

export function retentionUntil(recordedAt: Date, facts: RetentionFacts, cfg: RetentionConfig): Date {
  return new Date(recordedAt.getTime() + retentionDays(facts, cfg) * 86_400_000)
}
