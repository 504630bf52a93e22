import { verifyBundle } from './access/bundle-verify.ts'

/**
 * `npm run verify-bundle -- export.zip [more.zip…]`: re-check every hash of a legal export
 * offline. Exit 0 = every bundle verifies, 1 = a mismatch, 2 = usage error / unreadable zip.
 */
async function main(argv: string[]): Promise<number> {
  const files = argv.filter((a) => !a.startsWith('-'))
  if (files.length === 0) {
    process.stderr.write('usage: npm run verify-bundle -- <export.zip> [...]\n')
    return 2
  }
  let worst = 0
  for (const file of files) {
    try {
      const v = await verifyBundle(file)
      for (const f of v.files) process.stdout.write(`${f.ok ? 'OK      ' : 'FAILED  '} ${f.name}\n`)
      for (const p of v.problems) process.stdout.write(`PROBLEM  ${p}\n`)
      process.stdout.write(`${file}: ${v.ok ? 'verified' : 'NOT VERIFIED'} (${v.files.length} files, ${v.auditEntries} audit entries)\n`)
      if (!v.ok) worst = Math.max(worst, 1)
    } catch (err) {
      process.stderr.write(`${file}: cannot read bundle: ${(err as Error).message}\n`)
      worst = 2
    }
  }
  return worst
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 2
})
