// The ESL hot-path shortcuts (event.ts, connection.ts, call-channel.ts) against the plain
// rules they replace: same events, same errors, same timeouts.
import t from 'tap'
import { createServer, connect, type Socket } from 'node:net'
import { classify, parsePlainEvent, lastHeaderLine } from '../src/esl/event.ts'
import { contentLength, FrameParser, parseHeaderBlock } from '../src/esl/frame-parser.ts'
import { EslConnection } from '../src/esl/connection.ts'
import { EslProtocolError } from '../src/esl/errors.ts'
import { silentLogger } from '../src/log.ts'
import { officeStatusAt } from '../src/routing/office-hours.ts'
import { startServerWithSimulator } from './support/esl-harness.ts'

const MAX = 4 * 1024 * 1024

/** The plain rule, written the slow obvious way: every header decoded, last one wins. */
function reference(body: Buffer): { name: string; body: string; headers: Record<string, string> } {
  let end = body.indexOf('\n\n')
  if (end < 0) end = body.length
  let text = body.toString('utf8', 0, end)
  if (text.endsWith('\n')) text = text.slice(0, -1)
  const headers = parseHeaderBlock(text, true)
  const raw = parseHeaderBlock(text, false)
  let inner = ''
  if (raw['Content-Length'] !== undefined) {
    const n = contentLength({ 'Content-Length': headers['Content-Length'] }, MAX)
    if (n > 0) inner = body.subarray(end + 2, end + 2 + n).toString('utf8')
  }
  return { name: headers['Event-Name'] ?? '', body: inner, headers: { ...headers } }
}

function outcome(f: () => { name: string; body: string; headers: Record<string, string> }) {
  try {
    return f()
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}`, protocol: err instanceof EslProtocolError }
  }
}

t.test('plain events: the regex fast path and the fallback agree with the plain rule', async (t) => {
  const cases: string[] = [
    'Event-Name: CHANNEL_ANSWER\nUnique-ID: abc\nCaller-Caller-ID-Name: Bob%20Smith\n\n',
    'Event-Name: CHANNEL_ANSWER\nUnique-ID: abc\n',
    'Event-Name: CHANNEL_ANSWER\nUnique-ID: abc',
    'Event-Name: CHANNEL_ANSWER\nUnique-ID: abc\n\n\n',
    'Event-Name: A\nX: 1\nEvent-Name: B\n\n', // repeated: last one wins
    'X: 1\nEvent-Name: LATE\n\n', // not first
    'Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 11\n\n+OK 12345\n\n',
    'Event-Name: BACKGROUND_JOB\nContent-Length: 3\nX: y\n\nabcdef',
    'Event-Name: CUSTOM\n\ninner without length',
    'Event-Name-Extra: nope\nEvent-Name: REAL\n',
    'Event-Name: X\nContent-Length-Foo: 5\n',
    'Event-Name:\nEmpty:\n',
    'Event-Name: %E0%A4%A\nBad: %ZZ\n', // bad escapes kept raw
    'Event-Name: X\nvariable_url: http://a:b@c/d?e=f\n',
    'Event-Name: X\nno colon here\n', // malformed
    'Event-Name: X\n bad: name\n',
    'Event-Name: X\n:value\n',
    'Event-Name: X\nTab\tName: v\n',
    'Event-Name: X\nDel\x7f: v\n',
    '',
    '\n',
    'Event-Name: X\nContent-Length: 99999999999\n\n',
    'Event-Name: X\nContent-Length: -1\n\n',
  ]
  // And random blocks from parts that hit every branch.
  let seed = 42
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n)
  const parts = ['Event-Name: E%41', 'Event-Name: F', 'Content-Length: 4', 'Content-Length: 0', 'A: b', 'Application: x', 'Application-UUID: u', 'K: v:w', 'P: %2', 'bad line', ' sp: v', 'N:']
  for (let i = 0; i < 3000; i++) {
    const lines = Array.from({ length: 1 + rnd(6) }, () => parts[rnd(parts.length)])
    cases.push(lines.join('\n') + ['', '\n', '\n\n', '\n\nbody', '\n\n\n'][rnd(5)])
  }
  let compared = 0
  for (const c of cases) {
    const body = Buffer.from(c)
    const want = outcome(() => reference(body))
    const got = outcome(() => {
      const e = parsePlainEvent(body, MAX)
      return { name: e.name, body: e.body, headers: { ...e.headers } }
    })
    if ('error' in want) {
      t.same(got, want, `same error for ${JSON.stringify(c)}`)
    } else {
      t.same(got, want, `same event for ${JSON.stringify(c)}`)
      const e = parsePlainEvent(body, MAX)
      for (const k of Object.keys(want.headers)) if (e.header(k) !== want.headers[k]) t.fail(`header(${k}) of ${JSON.stringify(c)}`)
      const app = e.headersStartingWith('Application')
      t.same({ ...app }, Object.fromEntries(Object.entries(want.headers).filter(([k]) => k.startsWith('Application'))), `Application* of ${JSON.stringify(c)}`)
    }
    compared++
  }
  t.ok(compared > 3000)
})

t.test('lastHeaderLine finds the last line of that name, never a longer name', async (t) => {
  const text = 'A: 1\nAB: 2\nA: 3\nBA: 4'
  t.equal(lastHeaderLine(text, 'A'), text.indexOf('A: 3'))
  t.equal(lastHeaderLine(text, 'AB'), text.indexOf('AB: 2'))
  t.equal(lastHeaderLine(text, 'BA'), text.indexOf('BA: 4'))
  t.equal(lastHeaderLine(text, 'B'), -1)
  t.equal(lastHeaderLine('A: 1', 'A'), 0)
})

/** An EslConnection to a peer that answers only the commands `answer` says yes to, after `delayMs`. */
async function pair(t: { teardown(fn: () => unknown): void }, limits: { commandTimeoutMs: number }, answer: (cmd: string) => number | null) {
  const server = createServer((s) => {
    s.on('error', () => {})
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const cmd = buf.slice(0, i).split('\n')[0]
        buf = buf.slice(i + 2)
        const delay = answer(cmd)
        if (delay !== null) setTimeout(() => s.writable && s.write(`Content-Type: command/reply\nReply-Text: +OK ${cmd}\n\n`), delay)
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise((r) => socket.once('connect', r))
  const conn = new EslConnection(socket, silentLogger(), limits)
  t.teardown(() => { conn.close(); server.close() })
  return conn
}

t.test('one deadline timer per socket: each command still has its own wire limit', async (t) => {
  // Answered in time, one after the other, for longer than one limit in total: no timeout.
  const steady = await pair(t, { commandTimeoutMs: 200 }, () => 60)
  for (let i = 0; i < 6; i++) t.equal((await steady.command(`ping${i}`)).text, `+OK ping${i}`)
  t.notOk(steady.isClosed, '6 × 60 ms > 200 ms, each answered within its limit')

  // A short-limit command queued behind a long one that is answered late: the short one times out first.
  const mixed = await pair(t, { commandTimeoutMs: 5_000 }, (cmd) => (cmd === 'slow' ? 400 : null))
  const started = performance.now()
  const slow = mixed.command('slow')
  const quick = mixed.command('quick', {}, { timeoutMs: 100 })
  await t.rejects(quick, { name: 'TimeoutError', code: 'timeout' })
  const took = performance.now() - started
  t.ok(took >= 95 && took < 390, `timed out at its own 100 ms limit (${Math.round(took)} ms)`)
  await t.rejects(slow, { name: 'TimeoutError' }, 'the socket is closed: everything pending rejects')
  t.ok(mixed.isClosed)

  // Never answered: closes at the limit, not before.
  const mute = await pair(t, { commandTimeoutMs: 150 }, () => null)
  const t0 = performance.now()
  await t.rejects(mute.command('connect'), { name: 'TimeoutError' })
  t.ok(performance.now() - t0 >= 145, 'not before the limit')
})

t.test('a real call: bridge result and HANGUP_COMPLETE read the same values as the full headers', async (t) => {
  const { h, sim } = await startServerWithSimulator(t)
  const call = sim.call({ destination: '7001', bridgeTargets: { 'user/1001': { answerAfterMs: 10, hangupAfterMs: 60 } } })
  const ch = await h.nextChannel()
  await ch.answer()
  const full: Array<Record<string, string>> = []
  ch.on('executeComplete', (r) => full.push(r.headers))
  const r = await ch.bridge('user/1001', { timeoutSec: 5 })
  t.equal(r.answered, true)
  const done = full.find((x) => x.Application === 'bridge')!
  if (r.answered) t.equal(r.bLegUuid, done['Other-Leg-Unique-ID'] ?? done['variable_bridge_uuid'])
  const ended = new Promise<void>((resolve) => ch.once('hangupComplete', () => resolve()))
  let fullVars: Record<string, string> = {}
  ch.on('event', (e) => {
    if (e.name !== 'CHANNEL_HANGUP_COMPLETE') return
    for (const [k, v] of Object.entries(e.headers)) if (k.startsWith('variable_')) fullVars[k.slice(9)] = v
  })
  await ch.hangup()
  await ended
  const info = ch.hangupInfo!
  t.same({ ...info.vars }, fullVars, 'vars built on read are every variable_* header')
  t.equal(info.billsec, Number(fullVars.billsec ?? 0))
  t.equal(info.duration, Number(fullVars.duration ?? 0))
  t.ok(Object.keys(fullVars).length > 10)
  await call.done
})

t.test('officeStatusAt: the per-minute answer follows the clock and in-place edits', async (t) => {
  const calendar = { holidays: [], shortDays: [], workdays: [] }
  const office = { tz: 'Europe/Moscow', hours: { mon: '09:00-18:00' } as Record<string, string> }
  const at = (iso: string) => officeStatusAt(office as never, calendar, new Date(iso))
  t.equal(at('2026-11-23T14:59:10Z').open, true, '17:59 Moscow, Monday')
  t.equal(at('2026-11-23T14:59:50Z').open, true, 'same minute')
  t.equal(at('2026-11-23T15:00:00Z').open, false, '18:00: closed')
  t.equal(at('2026-11-23T14:59:30Z').local, '2026-11-23 17:59 mon')
  office.hours.mon = '09:00-17:00'
  t.equal(at('2026-11-23T14:59:30Z').open, false, 'hours edited in place: not a stale answer')
  const a = at('2026-11-23T10:00:00Z')
  a.open = false
  t.equal(at('2026-11-23T10:00:00Z').open, true, 'callers get a copy')
})

t.test('big header blocks (the connect reply) are read lazily with the same values and errors', async (t) => {
  const limits = { maxHeaderBytes: 1 << 20, maxBodyBytes: MAX }
  const lines = ['Event-Name: CHANNEL_DATA', 'Unique-ID: u-1', 'Caller-Caller-ID-Name: Bob%20Smith']
  for (let i = 0; i < 120; i++) lines.push(`variable_v${i}: value%20${i}`)
  lines.push('Unique-ID: u-2', 'Content-Type: command/reply', 'Reply-Text: %2BOK%0A', 'Empty:')
  const text = lines.join('\n')
  t.ok(text.length > 2048, 'bigger than the lazy threshold')
  for (const split of [text.length + 2, 700, 1]) {
    const parser = new FrameParser(limits)
    const bytes = Buffer.from(text + '\n\n')
    const frames = []
    for (let i = 0; i < bytes.length; i += split) frames.push(...parser.push(bytes.subarray(i, i + split)))
    t.equal(frames.length, 1, `one frame, chunks of ${split}`)
    const f = frames[0]
    t.equal(f.header('Unique-ID'), 'u-2', 'last one wins, as in the object')
    t.equal(f.header('Reply-Text'), '%2BOK%0A', 'raw as sent')
    t.equal(f.header('Empty'), '')
    t.equal(f.header('Missing'), undefined)
    t.equal(f.header('Unique'), undefined, 'a prefix is not a name')
    t.same({ ...f.headers }, { ...parseHeaderBlock(text) }, 'the object, when built, is the eager one')
    const m = classify(f, MAX)
    if (m.kind !== 'reply') throw new Error('not a reply')
    t.equal(m.replyText, '+OK\n')
    t.equal(m.header('Caller-Caller-ID-Name'), 'Bob Smith', 'decoded')
    t.equal(m.headers['variable_v7'], 'value 7')
  }
  // A bad line anywhere in a big block: the same error as the line-by-line rule.
  for (const bad of ['no colon here', ' Leading: space', ':novalue', 'Tab\tName: v']) {
    const broken = [...lines.slice(0, 60), bad, ...lines.slice(60)].join('\n')
    let expected: unknown
    try {
      parseHeaderBlock(broken)
    } catch (err) {
      expected = (err as Error).message
    }
    t.ok(expected, `${JSON.stringify(bad)} is malformed`)
    t.throws(() => new FrameParser(limits).push(Buffer.from(broken + '\n\n')), { name: 'EslProtocolError', message: expected as string })
  }
})
