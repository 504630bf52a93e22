// Pure parts of call plans, table-driven: row validation (reasons and defaults), window
// times, how an attempt's outcome is read, and the CSV cells of the report.
import t from 'tap'
import { loadSwitchboardFile } from '../src/config/switchboard-file.ts'
import { EXAMPLE_CONFIG } from '../src/server.ts'
import { buildDirectory } from '../src/crm/directory.ts'
import { parseWindowTime, validateRow, type PlanDefaults, type ValidateContext } from '../src/call-plans/rows.ts'
import { classifyAttempt } from '../src/calls/attempt-outcome.ts'
import { csvCell } from '../src/call-plans/report-csv.ts'

const cfg = await loadSwitchboardFile(EXAMPLE_CONFIG)
const directory = buildDirectory({
  clients: [
    { id: 'c-1', name: 'ООО Ромашка', segment: 'B', kind: 'client', phones: ['+79161234567'] },
    { id: 'c-empty', name: 'Без номеров', segment: 'C', kind: 'client', phones: [] },
  ],
  employees: [
    { id: 'a-1', name: 'Анна', role: 'agent', groupId: 'sales-1', extension: '1001' },
    { id: 'mute', name: 'Без телефона', role: 'agent', groupId: 'sales-1' },
  ],
  groups: cfg.groups,
}, { defaultRegion: cfg.defaultRegion })
const NOW = new Date('2026-11-23T06:30:00Z')
const defaults: PlanDefaults = { agentId: null, queueId: 'sales', windowStart: null, windowEnd: null, timeZone: 'Europe/Moscow' }
const ctx = (over: Partial<ValidateContext> = {}): ValidateContext => ({
  config: cfg, directory, defaults, now: NOW, seenPhones: new Map(), clientPhones: (id) => (id === 'c-1' ? ['+79161234567'] : []), ...over,
})

t.test('validateRow: each reason, with the field it names', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string | null, string?]> = [
    ['plain number, queue default', { phone: '8 916 123-45-67' }, null],
    ['no phone, no client', { note: 'x' }, 'missing_phone', 'phone'],
    ['letters', { phone: 'call me' }, 'bad_phone', 'phone'],
    ['too short', { phone: '12' }, 'bad_phone', 'phone'],
    ['unknown client', { client_id: 'ghost' }, 'unknown_client', 'client_id'],
    ['unknown client (alias column)', { client: 'c-2' }, 'unknown_client', 'client_id'],
    ['client without numbers', { client_id: 'c-empty' }, 'client_has_no_phone', 'client_id'],
    ['unknown agent', { phone: '+79990000001', agent: 'ghost' }, 'unknown_agent', 'agent_id'],
    ['agent without a phone', { phone: '+79990000001', agent_id: 'mute' }, 'agent_unreachable', 'agent_id'],
    ['unknown queue', { phone: '+79990000001', queue: 'nope' }, 'unknown_queue', 'queue_id'],
    ['agent and queue', { phone: '+79990000001', agent: 'a-1', queue: 'sales' }, 'ambiguous_target', 'agent_id'],
    ['unreadable start', { phone: '+79990000001', from: 'soon' }, 'bad_window', 'window_start'],
    ['end before start', { phone: '+79990000001', from: '2026-11-23 12:00', until: '2026-11-23 11:00' }, 'bad_window', 'window_end'],
    ['ended before the upload', { phone: '+79990000001', until: '2026-11-23 09:00' }, 'window_past', 'window_end'],
    ['extra values', { phone: '+79990000001', '…extra': ['a'] }, 'bad_row'],
  ]
  for (const [name, fields, code, field] of cases) {
    const v = validateRow({ line: 7, fields }, ctx())
    if (code === null) t.ok(v.ok, name)
    else t.match(v, { ok: false, rejection: { line: 7, code, ...(field ? { field } : {}) } }, name)
  }
  t.match(validateRow({ line: 2, fields: { phone: '1' } }, ctx({ defaults: { ...defaults, queueId: null } })), { ok: false, rejection: { code: 'bad_phone' } }, 'the number first')
  t.match(validateRow({ line: 2, fields: { phone: '+79990000001' } }, ctx({ defaults: { ...defaults, queueId: null } })), { ok: false, rejection: { code: 'no_target' } })
})

t.test('validateRow: defaults, aliases, client linking and duplicates', async (t) => {
  const c = ctx()
  const first = validateRow({ line: 2, fields: { PHONE: '+7 (916) 123-45-67', Note: ' call after lunch ' } }, c)
  t.match(first, { ok: true, row: { phone: '+79161234567', clientId: 'c-1', queueId: 'sales', agentId: null, note: 'call after lunch' } }, 'header case ignored; the number links its client')
  t.match(validateRow({ line: 3, fields: { client_id: 'c-1' } }, c), { ok: false, rejection: { code: 'duplicate_phone', message: /line 2/ } }, 'the client\'s number is already on line 2')
  const byAgent = validateRow({ line: 4, fields: { phone: 89990000002, agent: 'a-1', from: '2026-11-23 10:00', until: '2026-11-23T15:00:00Z' } }, c)
  t.match(byAgent, { ok: true, row: { phone: '+79990000002', agentId: 'a-1', queueId: null } }, 'a row\'s agent replaces the plan\'s queue; numbers from JSON')
  if (byAgent.ok) {
    t.equal(byAgent.row.windowStart?.toISOString(), '2026-11-23T07:00:00.000Z', 'no offset: the plan\'s zone (Moscow)')
    t.equal(byAgent.row.windowEnd?.toISOString(), '2026-11-23T15:00:00.000Z', 'with an offset: as given')
  }
  const planWindow = validateRow({ line: 5, fields: { phone: '+79990000003' } }, ctx({ defaults: { ...defaults, windowStart: new Date('2026-11-24T06:00:00Z'), windowEnd: new Date('2026-11-24T15:00:00Z') } }))
  t.match(planWindow, { ok: true, row: { windowStart: new Date('2026-11-24T06:00:00Z'), windowEnd: new Date('2026-11-24T15:00:00Z') } }, "the plan's window by default")
})

t.test('parseWindowTime', async (t) => {
  t.equal(parseWindowTime('2026-11-23T10:00', 'Asia/Novosibirsk')?.toISOString(), '2026-11-23T03:00:00.000Z')
  t.equal(parseWindowTime('2026-11-23 10:00:30', 'Europe/Moscow')?.toISOString(), '2026-11-23T07:00:30.000Z')
  t.equal(parseWindowTime('2026-11-23T10:00:00+05:00', 'Europe/Moscow')?.toISOString(), '2026-11-23T05:00:00.000Z')
  t.equal(parseWindowTime('23.11.2026 10:00', 'Europe/Moscow'), null)
  t.equal(parseWindowTime('', 'Europe/Moscow'), null)
})

t.test('classifyAttempt', async (t) => {
  const base = { connected: false, cause: null as string | null, outcome: null as string | null, employeeAnswered: true }
  const cases: Array<[string, Partial<typeof base>, string, boolean, boolean]> = [
    ['answered', { connected: true, cause: 'NORMAL_CLEARING', outcome: 'answered' }, 'answered', true, false],
    ['busy by the CDR', { outcome: 'busy', cause: 'USER_BUSY' }, 'busy', true, false],
    ['no answer by cause', { cause: 'NO_USER_RESPONSE' }, 'no_answer', true, false],
    ['temporary failure', { outcome: 'failed', cause: 'NORMAL_TEMPORARY_FAILURE' }, 'failed', true, false],
    ['number does not exist', { outcome: 'failed', cause: 'UNALLOCATED_NUMBER' }, 'failed', true, true],
    ['agent did not pick up', { employeeAnswered: false, cause: 'NO_ANSWER', outcome: 'employee_no_answer' }, 'agent_no_answer', false, false],
    ['our side', { employeeAnswered: true, cause: 'SOCKET_NOT_REACHED' }, 'switchboard_error', false, false],
  ]
  for (const [name, over, kind, counts, permanent] of cases) t.same(classifyAttempt({ ...base, ...over }), { kind, counts, permanent }, name)
})

t.test('csvCell', async (t) => {
  t.equal(csvCell('+79161234567'), '+79161234567', 'E.164 stays dialable')
  t.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`, 'formulas defused and quoted')
  t.equal(csvCell('+7 916'), "'+7 916")
  t.equal(csvCell('a,b'), '"a,b"')
  t.equal(csvCell(null), '')
  t.equal(csvCell(3), '3')
})
