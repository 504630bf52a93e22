// Shared fixtures for the routing tests (not a test file itself: no .test suffix).
import { validateSwitchboardFile, type SwitchboardFile } from '../src/config/switchboard-file.ts'
import { buildDirectory, type DirectorySnapshot } from '../src/crm/directory.ts'
import type { PresenceState } from '../src/routing/types.ts'

const wk = (h: string) => ({ mon: h, tue: h, wed: h, thu: h, fri: h, sat: 'closed', sun: 'closed' })

export function baseConfig(mutate?: (c: any) => void): SwitchboardFile {
  const c: any = {
    calendar: {
      holidays: ['2025-01-01', '2025-01-08', '2025-03-08', '2025-05-09'],
      shortDays: [{ date: '2025-03-07', hours: '09:00-17:00' }],
      workdays: [{ date: '2025-11-01', hours: '10:00-15:00' }],
    },
    offices: [
      { id: 'msk', name: 'Москва', tz: 'Europe/Moscow', hours: wk('09:00-18:00'), fallbackQueue: 'sales' },
      { id: 'vvo', name: 'Владивосток', tz: 'Asia/Vladivostok', hours: wk('09:00-18:00'), fallbackQueue: 'sales-vvo', calendar: { holidays: ['2025-07-02'] } },
      { id: 'ber', name: 'Berlin', tz: 'Europe/Berlin', hours: wk('09:00-17:00') },
    ],
    groups: [
      { id: 'g1', name: 'Sales 1', supervisorId: 'sup1', secretaryId: 'sec1' },
      { id: 'g2', name: 'Sales 2' },
    ],
    dids: {
      '+74951230000': { source: 'site', noIvr: true, officeId: 'msk' },
      '+74951230002': { source: 'billboard', ivrMenu: 'main', officeId: 'msk' },
      '74232000000': { source: 'site-vvo', noIvr: true, queue: 'sales-vvo', officeId: 'vvo' },
      '+4930000000': { source: 'de', noIvr: true, officeId: 'ber' },
    },
    ivr: [{ id: 'main', prompt: 'main.wav', options: { '1': { label: 'Sales', action: 'queue', target: 'sales' } } }],
    queues: ['sales', 'sales-vvo', 'production', 'finance', 'quality', 'callcentre', 'spam'].map(id => ({ id, name: id })),
    routing: {
      defaultOfficeId: 'msk',
      segmentQueues: { C: 'callcentre' },
      blacklist: { enabled: true, maxCallsPerDay: 5, numbers: ['+79990000000'] },
    },
    callerId: {
      default: '+74951230000',
      rules: [
        { name: 'nsk', calleePrefix: '+7383', callerId: '+73832000000' },
        { name: 'nsk-city', calleePrefix: '+738320', callerId: '+73832000099' },
        { name: 'legacy-03', dialledPrefix: '03', callerId: '+74951230001' },
        { name: 'region-ekb', clientRegion: 'Екатеринбург', callerId: '+73432000000' },
      ],
    },
  }
  mutate?.(c)
  return validateSwitchboardFile(c)
}

export const PHONES = {
  clientA: '+74951110001', // segment A, manager m1
  clientB: '+74951110002', // segment B, manager m3 (group g1)
  clientC: '+74951110003', // segment C
  clientNoMgr: '+74951110004',
  supplier: '+73831110005',
  partner: '+74951110006',
  other: '+74951110007',
  ghostMgr: '+74951110008',
  lonelyMgr: '+74951110009',
  unknown: '+79167770000',
  employeeMobile: '+79160000001',
}

export function directory(): DirectorySnapshot {
  return buildDirectory({
    clients: [
      { id: 'cA', name: 'Key account', segment: 'A', kind: 'client', assignedManagerId: 'm1', phones: [PHONES.clientA] },
      { id: 'cB', name: 'Mid', segment: 'B', kind: 'client', assignedManagerId: 'm3', phones: [PHONES.clientB] },
      { id: 'cC', name: 'Small', segment: 'C', kind: 'client', assignedManagerId: 'm1', phones: [PHONES.clientC] },
      { id: 'cN', name: 'No manager', segment: 'B', kind: 'client', phones: [PHONES.clientNoMgr] },
      { id: 'sup', name: 'Bus supplier', segment: 'B', kind: 'supplier', phones: [PHONES.supplier] },
      { id: 'par', name: 'Partner', segment: 'B', kind: 'partner', phones: [PHONES.partner] },
      { id: 'oth', name: 'Hosting', segment: 'C', kind: 'other', phones: [PHONES.other] },
      { id: 'cG', name: 'Ghost', segment: 'A', kind: 'client', assignedManagerId: 'nobody', phones: [PHONES.ghostMgr] },
      { id: 'cL', name: 'Lonely', segment: 'B', kind: 'client', assignedManagerId: 'm9', phones: [PHONES.lonelyMgr] },
    ],
    employees: [
      { id: 'm1', name: 'Manager One', role: 'manager', groupId: 'g1', mobile: PHONES.employeeMobile },
      { id: 'm2', name: 'Two', role: 'manager', groupId: 'g1' },
      { id: 'm3', name: 'Three', role: 'manager', groupId: 'g1' },
      { id: 'm4', name: 'Four', role: 'agent', groupId: 'g1' },
      { id: 'm5', name: 'Five', role: 'agent', groupId: 'g1' },
      { id: 'm6', name: 'Six', role: 'agent', groupId: 'g1' },
      { id: 'sup1', name: 'Supervisor', role: 'supervisor', groupId: 'g1' },
      { id: 'sec1', name: 'Secretary', role: 'secretary', groupId: 'g1' },
      { id: 'm9', name: 'Nine', role: 'manager' },
      { id: 'a1', name: 'Agent', role: 'agent', groupId: 'g2' },
    ],
    groups: [
      { id: 'g1', name: 'Sales 1', supervisorId: 'sup1', secretaryId: 'sec1' },
      { id: 'g2', name: 'Sales 2' },
    ],
  }, { defaultRegion: 'RU' })
}

export function presence(entries: Record<string, PresenceState>): Map<string, PresenceState> {
  return new Map(Object.entries(entries))
}

/** Monday 2025-03-03 10:00 Moscow (07:00Z). */
export const MON_10_MSK = new Date('2025-03-03T07:00:00Z')
