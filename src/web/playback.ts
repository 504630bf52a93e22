/** Pure playback logic of the player (no DOM): silence skipping, speeds, waveform peaks. */
import type { Metrics, Span } from './types.ts'

export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2] as const

/** the next speed up (+1) or down (-1) from `current`, clamped to SPEEDS */
export function stepSpeed(current: number, dir: 1 | -1): number {
  let i = SPEEDS.findIndex((s) => Math.abs(s - current) < 1e-6)
  if (i < 0) i = SPEEDS.indexOf(1)
  return SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, i + dir))]
}

/** The both-channels-silent spans of a recording, sorted, at least `minMs` long (metrics from the pipeline). */
export function silencesOf(metrics: Metrics | null | undefined, minMs = 1000): Span[] {
  const list = Array.isArray(metrics?.silences) ? metrics.silences : []
  return list
    .filter((s) => Number.isFinite(s?.startMs) && Number.isFinite(s?.endMs) && s.endMs - s.startMs >= minMs)
    .slice()
    .sort((a, b) => a.startMs - b.startMs)
}

/**
 * Where "skip silence" jumps from `tMs`: inside a silence → its end; otherwise the end of
 * the next silence (the next talk after a pause). null when no silence lies ahead. A
 * silence ending within `marginMs` of `tMs` does not count (we are already at its end).
 */
export function skipSilenceTarget(silences: Span[], tMs: number, marginMs = 250): number | null {
  for (const s of silences) {
    if (s.endMs - marginMs <= tMs) continue
    return s.endMs
  }
  return null
}

/** For auto-skip while playing: the end of the silence `tMs` is inside, if more than `minLeftMs` of it remains. */
export function insideSilence(silences: Span[], tMs: number, minLeftMs = 500): number | null {
  for (const s of silences) if (tMs >= s.startMs && s.endMs - tMs > minLeftMs) return s.endMs
  return null
}

/**
 * A stand-in waveform from the talk spans of each channel (drawn at once, before the real
 * audio is decoded, and kept when the browser cannot decode the codec): talk at 0.6,
 * silence near zero.
 */
export function peaksFromMetrics(metrics: Metrics | null | undefined, durationMs: number, points = 1000, channels = 2): number[][] {
  const out: number[][] = []
  const n = Math.max(1, points)
  for (let c = 0; c < channels; c++) {
    const talk = metrics?.channels?.[c]?.talk ?? []
    const row = new Array<number>(n).fill(0.02)
    for (const s of talk) {
      const a = Math.max(0, Math.floor((s.startMs / durationMs) * n))
      const b = Math.min(n, Math.ceil((s.endMs / durationMs) * n))
      for (let i = a; i < b; i++) row[i] = 0.6
    }
    out.push(row)
  }
  return out
}

/** Peaks of decoded samples: the max |sample| per bucket, `points` buckets per channel. */
export function peaksOfSamples(channelData: ArrayLike<number>[], points = 2000): number[][] {
  return channelData.map((data) => {
    const n = Math.max(1, Math.min(points, data.length))
    const size = data.length / n
    const row = new Array<number>(n)
    for (let i = 0; i < n; i++) {
      let max = 0
      const end = Math.min(data.length, Math.floor((i + 1) * size))
      for (let j = Math.floor(i * size); j < end; j++) {
        const v = Math.abs(data[j])
        if (v > max) max = v
      }
      row[i] = Math.round(max * 1000) / 1000
    }
    return row
  })
}
