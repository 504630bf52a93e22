// The originate command as text (src/esl/originate.ts), and the inbound simulator's
// originate as FreeSWITCH's mod_commands answers it (api blocks until answer, bgapi
// answers in a BACKGROUND_JOB; -ERR <cause> when the first leg fails).
import t from 'tap'
import { originateCommand, parseOriginateArgs, parseOriginateReply, quoteVarValue, socketApp } from '../src/esl/originate.ts'
import { InboundClient } from '../src/esl/inbound-client.ts'
import { EslCommandError } from '../src/esl/errors.ts'
import { silentLogger } from '../src/log.ts'
import { InboundSimulator } from './support/esl-inbound-sim.ts'

t.test('command text: variables quoted the way FreeSWITCH splits them, parsed back unchanged', async (t) => {
  const vars = {
    origination_uuid: '3f1c7a52-9a57-4a55-9d0e-2c1d2b9f7e11',
    origination_caller_id_name: 'ООО "Сибирь", филиал',
    origination_caller_id_number: '+73832123456',
    switchboard_direction: 'outbound',
  }
  const cmd = originateCommand({ endpoint: 'user/1001', vars, app: socketApp('10.0.0.5:8084') })
  t.match(cmd, /^originate \{origination_uuid=3f1c7a52-9a57-4a55-9d0e-2c1d2b9f7e11,/)
  t.match(cmd, /origination_caller_id_name='ООО "Сибирь"\\, филиал'/, 'spaces quoted, commas escaped')
  t.match(cmd, / &socket\(10\.0\.0\.5:8084 async full\)$/)
  t.equal(cmd.split(' ').length > 3, true)
  const back = parseOriginateArgs(cmd.slice('originate '.length))
  t.same(back, { endpoint: 'user/1001', vars, app: { name: 'socket', arg: '10.0.0.5:8084 async full' } })
  t.equal(quoteVarValue("it's {x}\n"), "'its x'", 'quotes, braces and control characters dropped')
  t.throws(() => originateCommand({ endpoint: 'user/1001', vars: { 'bad name': 'x' }, app: socketApp('h:1') }), RangeError)
  t.throws(() => originateCommand({ endpoint: 'user/1001 &park()', vars: {}, app: socketApp('h:1') }), RangeError, 'no second application smuggled in the endpoint')
  t.equal(parseOriginateArgs('{a=1'), null, 'unterminated variable block')
  t.same(parseOriginateArgs('loopback/8002/default &park()'), { endpoint: 'loopback/8002/default', vars: {}, app: { name: 'park', arg: '' } }, 'the form in the inbound-api trace')
})

t.test('reply: +OK <uuid> or -ERR <cause>', async (t) => {
  t.same(parseOriginateReply('+OK 58d737ec-3a4f-437d-b228-1268e0047990\n'), { ok: true, uuid: '58d737ec-3a4f-437d-b228-1268e0047990' })
  t.match(parseOriginateReply('-ERR NO_ANSWER\n'), { ok: false, cause: 'NO_ANSWER' })
  t.match(parseOriginateReply('-ERR USER_BUSY\n'), { ok: false, cause: 'USER_BUSY' })
  t.match(parseOriginateReply('-USAGE: <call url> ...'), { ok: false, cause: 'NORMAL_TEMPORARY_FAILURE' })
  t.match(parseOriginateReply('garbage'), { ok: false, cause: 'NORMAL_TEMPORARY_FAILURE', reply: 'garbage' })
})

t.test('the inbound simulator answers originate like mod_commands', async (t) => {
  const sim = new InboundSimulator({ originate: { targets: { 'user/1002': { busy: true, ringMs: 20 }, 'user/1003': { noAnswer: true } } } })
  const port = await sim.listen()
  t.teardown(() => sim.close())
  const client = new InboundClient({ port, password: 'ClueCon', logger: silentLogger() })
  await client.start()
  t.teardown(() => client.stop())
  const uuid = '11111111-2222-4333-8444-555555555555'
  const api = await client.api(originateCommand({ endpoint: 'user/1001', vars: { origination_uuid: uuid }, app: { name: 'park', arg: '' } }))
  t.equal(api, `+OK ${uuid}\n`, 'api originate: the answered leg uuid')
  const bg = await client.bgapi(originateCommand({ endpoint: 'user/1001', vars: {}, app: { name: 'park', arg: '' } }))
  t.match(bg, /^\+OK [0-9a-f-]{36}\n$/, 'bgapi originate: in the BACKGROUND_JOB')
  await t.rejects(client.bgapi(originateCommand({ endpoint: 'user/1002', vars: {}, app: { name: 'park', arg: '' } })), EslCommandError)
  const busy = await client.bgapi(originateCommand({ endpoint: 'user/1002', vars: {}, app: { name: 'park', arg: '' } })).catch((e: EslCommandError) => String(e.details?.reply))
  t.equal(busy, '-ERR USER_BUSY', 'busy')
  const t0 = Date.now()
  const none = await client.bgapi(originateCommand({ endpoint: 'user/1003', vars: { originate_timeout: '1' }, app: { name: 'park', arg: '' } })).catch((e: EslCommandError) => String(e.details?.reply))
  t.equal(none, '-ERR NO_ANSWER', 'rings out after originate_timeout')
  t.ok(Date.now() - t0 >= 900, 'after about originate_timeout')
  t.equal(sim.originates.length, 5)
})
