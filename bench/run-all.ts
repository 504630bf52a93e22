/**
 * `npm run bench`: every benchmark under bench/, one child process each (so one bench's
 * heap or sockets cannot skew the next), in sequence. Each prints its figures and writes
 * bench/results/<name>.json; this runner prints a summary and exits non-zero if one failed.
 *
 *   npm run bench                 all of them
 *   npm run bench -- routing esl  only these
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run-all.ts')
  .map((f) => f.slice(0, -3))
  .filter((name) => only.length === 0 || only.includes(name))
  .sort()

const summary: Array<{ name: string; ok: boolean; seconds: number }> = []
for (const name of benches) {
  const started = performance.now()
  process.stdout.write(`\n=== bench/${name}.ts ===\n`)
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, `${name}.ts`)], { stdio: 'inherit' })
    child.on('exit', (c) => resolve(c ?? 1))
  })
  summary.push({ name, ok: code === 0, seconds: Math.round((performance.now() - started) / 100) / 10 })
}
process.stdout.write('\n=== summary ===\n')
for (const s of summary) process.stdout.write(`${s.ok ? 'ok  ' : 'FAIL'} ${s.name.padEnd(20)} ${s.seconds} s → bench/results/${s.name}.json\n`)
process.exit(summary.every((s) => s.ok) ? 0 : 1)
