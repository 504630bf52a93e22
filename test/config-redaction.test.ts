import t from 'tap'
import { redactSecrets } from '../src/config/http.ts'

// Supervisors read the config through GET /api/config; inline webhook signing secrets must
// not reach them (they could forge deliveries). The original document is not touched.
t.test('inline webhook secrets are redacted, secretEnv names and everything else kept', async (t) => {
  const doc = {
    queues: [{ id: 'sales' }],
    webhooks: { endpoints: [{ name: 'crm', url: 'https://crm.example/hook', secret: 'a-very-secret-value-123' }, { name: 'erp', url: 'https://erp.example/hook', secretEnv: 'ERP_SECRET' }] },
  }
  const out = redactSecrets(doc)
  t.equal(out.webhooks.endpoints[0]!.secret, '(redacted)')
  t.same(out.webhooks.endpoints[1], { name: 'erp', url: 'https://erp.example/hook', secretEnv: 'ERP_SECRET' })
  t.same(out.queues, doc.queues)
  t.equal(doc.webhooks.endpoints[0]!.secret, 'a-very-secret-value-123', 'the running config is not modified')
  t.same(redactSecrets({ queues: [] }), { queues: [] }, 'no webhooks section: unchanged')
})
