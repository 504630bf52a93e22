import t from 'tap'
import { startTestDatabase } from './support/db.ts'
import { startCallHarness } from './support/call-harness.ts'
import { waitFor } from './support/pipeline.ts'
import { EventBus } from '../src/events/bus.ts'
import type { Employee, ClientInput } from '../src/crm/directory.ts'

// The live events that screen pop, the supervisor view and the CRM webhooks build on:
// one real call through the wire simulator must produce them in call order.
const AT = '2026-11-23T09:00:00Z'
const employees: Employee[] = [
  { id: 'mgr-1', name: 'Анна', role: 'manager', groupId: 'sales-1', extension: '1001' },
  { id: 'col-1', name: 'Борис', role: 'manager', groupId: 'sales-1', extension: '1002' },
]
const clients: ClientInput[] = [
  { id: 'c-romashka', name: 'ООО Ромашка', segment: 'A', kind: 'client', assignedManagerId: 'mgr-1', phones: ['+74951234567'] },
]

const db = await startTestDatabase()
t.teardown(() => db.close())

t.test('a routed, answered, recorded call emits started → offered → answered → ended and recording.stored', async (t) => {
  const h = await startCallHarness(db, { employees, clients, ready: ['mgr-1'], at: AT, timeScale: 0.05 })
  t.teardown(() => h.close())
  const seen: Array<{ name: string; payload: Record<string, unknown> }> = []
  for (const name of ['call.started', 'call.offered', 'call.answered', 'call.ended', 'agent.state', 'recording.stored'] as const) {
    h.events.on(name, (payload) => { seen.push({ name, payload: payload as unknown as Record<string, unknown> }) })
  }
  const call = h.sim.call({
    callerIdNumber: '84951234567', destination: '+74951230000', source: 'sofia',
    bridgeTargets: { 'user/1001': { answerAfterMs: 1000, hangupAfterMs: 20_000 } },
  })
  await call.done
  await waitFor('call.ended', async () => seen.some((e) => e.name === 'call.ended'))
  const callEvents = seen.filter((e) => e.name.startsWith('call.'))
  t.same(callEvents.map((e) => e.name), ['call.started', 'call.offered', 'call.answered', 'call.ended'], 'in call order')
  for (const e of callEvents) {
    t.equal(e.payload.callUuid, call.uuid, `${e.name} names the call`)
    t.equal(e.payload.clientId, 'c-romashka', `${e.name} carries the client card`)
  }
  t.equal(callEvents[1]!.payload.employeeId, 'mgr-1', 'offered to the own manager')
  const ended = callEvents[3]!.payload
  t.equal(ended.outcome, 'answered')
  t.equal(ended.agentId, 'mgr-1')
  t.equal(ended.counted, true, '20 s conversation counts')
  t.ok(seen.some((e) => e.name === 'agent.state' && e.payload.employeeId === 'mgr-1' && e.payload.state === 'on_call'), 'the claim is an agent.state change')
  await waitFor('recording.stored', async () => seen.filter((e) => e.name === 'recording.stored').length >= 2, 30_000)
  t.ok(seen.filter((e) => e.name === 'recording.stored').every((e) => e.payload.callUuid === call.uuid), 'stored recordings name their call')
})

t.test('a throwing listener is reported by the bus and does not stop other listeners', async (t) => {
  const errors: string[] = []
  const bus = new EventBus((_err, event) => errors.push(event))
  const got: string[] = []
  bus.on('agent.state', () => { throw new Error('listener bug') })
  const off = bus.on('agent.state', (p) => got.push(p.employeeId))
  bus.emit('agent.state', { employeeId: 'e1', state: 'ready', reason: null, at: new Date().toISOString() })
  off()
  bus.emit('agent.state', { employeeId: 'e2', state: 'ready', reason: null, at: new Date().toISOString() })
  t.same(errors, ['agent.state', 'agent.state'], 'the throwing listener is reported each time')
  t.same(got, ['e1'], 'second listener ran; after off() it no longer does')
  t.equal(bus.listenerCount('agent.state'), 1)
})
