import t from 'tap'
import { buildDirectory } from '../src/crm/directory.ts'

const dir = () => buildDirectory({
  clients: [
    { id: 'c1', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'm1', phones: ['8 495 123-45-67', '+7 916 123 45 67', 'нет'] },
    { id: 'c2', name: 'Автобаза', segment: 'B', kind: 'supplier', phones: ['73832000000'] },
    { id: 'c3', name: 'Без менеджера', segment: 'C', kind: 'client', assignedManagerId: 'ghost', phones: [] },
  ],
  employees: [
    { id: 'm1', name: 'Иванов', role: 'manager', groupId: 'sales-1', extension: '101', mobile: '8 916 000-00-01', officeId: 'msk' },
    { id: 'm2', name: 'Петров', role: 'manager', groupId: 'sales-1', extension: '102', mobile: '???' },
    { id: 's1', name: 'Сидорова', role: 'supervisor', groupId: 'sales-1', extension: '110' },
    { id: 'x1', name: 'Lost', role: 'agent', groupId: 'nogroup' },
  ],
  groups: [{ id: 'sales-1', name: 'Продажи', supervisorId: 's1', secretaryId: 'sec-missing' }],
  offices: [{ id: 'msk', name: 'Москва', tz: 'Europe/Moscow' }],
}, { defaultRegion: 'RU', now: new Date('2025-03-03T09:00:00Z') })

t.test('identify callers', async t => {
  const d = dir()
  t.match(d.identify('+74951234567'), { kind: 'client', client: { id: 'c1', segment: 'A' }, source: 'directory' })
  t.match(d.identify('+79161234567'), { kind: 'client', client: { id: 'c1' } })
  t.match(d.identify('+73832000000'), { kind: 'client', client: { id: 'c2', kind: 'supplier' } })
  t.match(d.identify('+79160000001'), { kind: 'employee', employee: { id: 'm1' } })
  t.same(d.identify('+70000000000'), { kind: 'unidentified' })
  t.same(d.identify(null), { kind: 'unidentified' })
  t.equal(d.clientIdByPhone('+74951234567'), 'c1')
})

t.test('indexes and stats', async t => {
  const d = dir()
  t.equal(d.employeesByExtension.get('102')?.id, 'm2')
  t.equal(d.employees.get('m2')?.mobile, undefined, 'unparseable mobile dropped')
  t.same(d.groupMembers('sales-1').map(e => e.id), ['m1', 'm2', 's1'])
  t.same(d.groupMembers('none'), [])
  t.equal(d.offices.get('msk')?.tz, 'Europe/Moscow')
  t.equal(d.stats.clients, 3)
  t.equal(d.stats.phones.phones, 3)
  t.equal(d.stats.rejectedPhoneCount, 2)
  t.same(d.stats.rejectedPhones, [{ owner: 'c1', raw: 'нет' }, { owner: 'employee:m2', raw: '???' }])
  t.ok(d.stats.warnings.some(w => w.includes('ghost')))
  t.ok(d.stats.warnings.some(w => w.includes('nogroup')))
  t.ok(d.stats.warnings.some(w => w.includes('sec-missing')))
  t.equal(d.builtAt.toISOString(), '2025-03-03T09:00:00.000Z')
})

t.test('learnPhone adds a number found by the live lookup', async t => {
  const d = dir()
  const client = { id: 'c9', name: 'Новый', segment: 'B' as const, kind: 'client' as const }
  t.ok(d.learnPhone('+73430000000', client))
  t.notOk(d.learnPhone('8343', client))
  t.match(d.identify('+73430000000'), { kind: 'client', client: { id: 'c9' } })
  t.equal(d.phoneIndexStats().overlay, 1)
})
