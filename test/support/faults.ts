/**
 * Shared pieces of the fault suite (test/faults-*.test.ts): its size, a config for a
 * server under fault, and the figures it prints.
 *
 * Size: `npm test` runs a short form; `npm run test:faults` sets SWITCHBOARD_FAULTS=full
 * for the long one the fault issue asks for (20 kills × 200 calls, 30 s outages, …).
 */
import { writeFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'
import { EXAMPLE_CONFIG } from '../../src/server.ts'
export { freePort } from '../../src/db/embedded.ts'

export const FULL = process.env.SWITCHBOARD_FAULTS === 'full'

/** Pick the short or the full figure. */
export function size<T>(short: T, full: T): T { return FULL ? full : short }

/**
 * The example config with the offices open round the clock (a fault run must not depend on
 * the hour CI runs at) and the spool pipeline's crash-recovery timers shortened, so a WAV
 * left behind by a killed server is picked up within seconds.
 */
export async function writeFaultConfig(dir: string, change?: (cfg: Record<string, any>) => void): Promise<string> {
  const cfg = YAML.parse(await readFile(EXAMPLE_CONFIG, 'utf8')) as Record<string, any>
  const allDay = '00:00-24:00'
  for (const office of cfg.offices as Array<Record<string, unknown>>) {
    office.hours = { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay }
  }
  cfg.calendar = {}
  cfg.recording.pipeline = { ...(cfg.recording.pipeline ?? {}), quietSec: 2, scanIntervalSec: 1 }
  change?.(cfg)
  const file = path.join(dir, 'switchboard.yaml')
  await writeFile(file, YAML.stringify(cfg))
  return file
}

/** One line of figures in the TAP output, easy to grep: `# FAULTS crash: calls=… lost=0`. */
export function figures(name: string, values: Record<string, number | string>): string {
  return `FAULTS ${name}: ${Object.entries(values).map(([k, v]) => `${k}=${v}`).join(' ')}`
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
