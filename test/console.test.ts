// The web console (issue 10) in a real headless Chromium (Debian's `chromium`, driven by
// playwright-core) against a real Switchboard: embedded Postgres, the recording pipeline
// turning a spooled stereo WAV into a stored Opus recording, the real HTTP server.
// Screenshots of each main screen go to test/artifacts/console-*.png for review.
import t from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startSwitchboard } from '../src/server.ts'
import { silentLogger } from '../src/log.ts'
import { createApiToken } from '../src/http/auth/tokens.ts'
import { Spool } from '../src/recordings/spool.ts'
import { spoolRecording, waitFor } from './support/pipeline.ts'
import { speechLikeSegments } from './support/audio-fixtures.ts'
import { buildWeb } from '../scripts/build-web.ts'

const ARTIFACTS = path.join(import.meta.dirname, 'artifacts')

/** Debian's chromium (installed by .ci/run); CHROMIUM_PATH overrides. No browser = a failing test, never a silent skip. */
function chromiumPath(): string | null {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null
  for (const name of ['chromium', 'chromium-browser']) {
    try { return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null } catch { /* next */ }
  }
  return existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : null
}

const executablePath = chromiumPath()
if (!executablePath) {
  t.fail('Chromium is not installed: the console browser tests need Debian\'s `chromium` (apt-get install -y chromium; .ci/run does it) or CHROMIUM_PATH')
  t.end()
} else {
  await run(executablePath)
}

async function run(executablePath: string): Promise<void> {
  const t0 = Date.now()
  const since = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`
  await buildWeb()
  await mkdir(ARTIFACTS, { recursive: true })
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sb-console-'))
  const spoolDir = path.join(dataDir, 'spool')
  const adminToken = `sb_${randomBytes(18).toString('base64url')}`
  const sb = await startSwitchboard({ DATA_DIR: dataDir, SPOOL_DIR: spoolDir, PORT: '0', ESL_PORT: '0', LOG_LEVEL: 'silent', SWITCHBOARD_ADMIN_TOKEN: adminToken }, silentLogger())
  t.teardown(async () => { await sb.stop(); await rm(dataDir, { recursive: true, force: true }) })
  const base = sb.httpUrl
  t.comment(`switchboard up after ${since()}`)

  // ---- seed: directory, a call with legs, IVR path and CSAT, two recordings through the real pipeline
  await sb.pool.query(`INSERT INTO employees (id, name, group_id, role, extension) VALUES ('a1', 'Anton Agent', 'sales', 'agent', '7101'), ('m1', 'Maria Manager', 'sales', 'manager', '7001') ON CONFLICT (id) DO NOTHING`)
  await sb.pool.query(`INSERT INTO clients (id, name, inn, segment, kind, region, assigned_manager_id, attributes) VALUES
    ('c1', 'Acme Trading', '7701234567', 'A', 'client', 'Moscow', 'm1', '{"receivables": "120 000 RUB", "lastOrder": "2026-11-02"}'),
    ('c2', 'Beta Supplies', '7807654321', 'B', 'supplier', 'SPb', NULL, '{}')`)
  await sb.pool.query(`INSERT INTO client_phones (phone, client_id) VALUES ('+74951234567', 'c1'), ('+78121112233', 'c2')`)
  const call1 = randomUUID()
  const call2 = randomUUID()
  const started = new Date(Date.now() - 10 * 60_000)
  const ivr = [{ menuId: 'main', label: 'Sales', digit: '1', at: started.toISOString() }, { menuId: 'sales', label: 'Existing order', digit: '2', at: started.toISOString() }]
  await sb.pool.query(`INSERT INTO calls (uuid, direction, caller, callee, did, source_tag, client_id, agent_id, queue_id, started_at, answered_at, ended_at, billsec, hangup_cause, outcome, counted, ivr_path, csat)
    VALUES ($1, 'inbound', '+74951234567', '7101', '+74951112233', 'yandex-direct', 'c1', 'a1', 'sales', $2, $2, $3, 60, 'NORMAL_CLEARING', 'answered', true, $4, 9),
           ($5, 'inbound', '+78121112233', '7101', '+74951112233', NULL, 'c2', 'a1', 'sales', $2, $2, $3, 20, 'NORMAL_CLEARING', 'answered', true, '[]', NULL)`,
  [call1, started, new Date(started.getTime() + 60_000), JSON.stringify(ivr), call2])
  await sb.pool.query(`INSERT INTO legs (uuid, call_uuid, party, endpoint, employee_id, started_at, answered_at, ended_at, hangup_cause) VALUES
    ($1, $2, 'caller', 'sofia/external/+74951234567', NULL, $3, $3, $4, 'NORMAL_CLEARING'), ($5, $2, 'agent', 'user/7101', 'a1', $3, $3, $4, 'NORMAL_CLEARING')`,
  [randomUUID(), call1, started, new Date(started.getTime() + 60_000), randomUUID()])

  const spool = new Spool(spoolDir)
  await spool.init()
  const noise = (ms: number) => ({ kind: 'noise' as const, ms, amplitude: 0.35 })
  const quiet = (ms: number) => ({ kind: 'silence' as const, ms })
  // caller talks 0–6 s, both silent 6–14 s, agent 14–30 s, caller 28–40 s (2 s overtalk), both silent 40–48 s, agent 48–60 s
  const rec1 = await spoolRecording(spool, { channels: 2, segments: [[noise(6000), quiet(22_000), noise(12_000), quiet(20_000)], [quiet(14_000), noise(16_000), quiet(18_000), noise(12_000)]] },
    { callUuid: call1, clientId: 'c1', agentId: 'a1', queueId: 'sales', caller: '+74951234567', callee: '7101', startedAt: started.toISOString() })
  const rec2 = await spoolRecording(spool, { channels: 2, segments: [[noise(4000), quiet(6000)], [quiet(4000), noise(6000)]] },
    { callUuid: call2, clientId: 'c2', agentId: 'a1', queueId: 'sales', caller: '+78121112233', callee: '7101', startedAt: started.toISOString() })
  // A long internal call stored as WAV by a format policy (3 min, 5.8 MB): a file the browser cannot take in
  // one read, so seeking far into it must fetch that part with a Range request.
  const cfg = sb.config.current()
  sb.config.set({ ...cfg, recording: { ...cfg.recording, formatPolicies: [{ name: 'internal as wav', callKind: 'internal', format: 'wav' }, ...cfg.recording.formatPolicies] } })
  const rec3 = await spoolRecording(spool, { channels: 2, segments: [speechLikeSegments(180_000, 11), speechLikeSegments(180_000, 12)] },
    { direction: 'internal', caller: '7101', callee: '7001', agentId: 'a1', startedAt: started.toISOString() })
  for (const r of [rec1, rec2, rec3]) await sb.pipeline.enqueue(r.recordingId)
  await waitFor('the recordings stored', async () => (await sb.pool.query(`SELECT count(*)::int AS n FROM recordings WHERE state = 'stored' AND id = ANY($1)`, [[rec1.recordingId, rec2.recordingId, rec3.recordingId]])).rows[0].n === 3, 45_000)
  const recId = rec1.recordingId
  t.comment(`3 recordings through the pipeline after ${since()}`)
  const longRec = (await sb.pool.query(`SELECT id, codec, bytes FROM recordings WHERE id = $1`, [rec3.recordingId])).rows[0] as { id: string; codec: string; bytes: string }

  const tokens = {
    qa: await createApiToken(sb.pool, { id: 'u-qa', name: 'Quinn QA', role: 'qa' }),
    legal: await createApiToken(sb.pool, { id: 'u-legal', name: 'Lena Legal', role: 'legal' }),
    supervisor: await createApiToken(sb.pool, { id: 'u-sup', name: 'Sam Supervisor', role: 'supervisor' }),
    agent: await createApiToken(sb.pool, { id: 'u-agent', name: 'Anton Agent', role: 'agent', employeeId: 'a1' }),
  }

  const browser: Browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'] })
  t.teardown(() => browser.close())
  t.comment(`chromium launched after ${since()}`)
  const pageErrors: string[] = []
  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true })
    const page = await context.newPage()
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.setDefaultTimeout(10_000)
    return { context, page }
  }
  async function signIn(page: Page, token: string): Promise<void> {
    await page.locator('#token').fill(token)
    await page.locator('[data-testid=signin-form] button[type=submit]').click()
    await page.locator('[data-testid=role]').waitFor()
  }
  /**
   * Poll a page expression from here: the console's CSP (script-src 'self') forbids the
   * string evaluation page.waitForFunction would do inside the page.
   */
  async function until(page: Page, expr: string, timeout = 10_000): Promise<void> {
    const end = Date.now() + timeout
    for (;;) {
      if (await page.evaluate(`!!(${expr})`).catch(() => false)) return
      if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${expr}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`) })
  const audioTime = (page: Page) => page.evaluate('document.querySelector("audio").currentTime') as Promise<number>

  await t.test('QA: sign in, search, play, seek over Range, keyboard, QA score saved and reloaded', async (t) => {
    const { context, page } = await newPage()
    t.teardown(() => context.close())
    const audioRequests: Array<{ range: string | undefined; status: number }> = []
    page.on('response', (res) => {
      if (res.url().endsWith(`/api/recordings/${recId}/audio`) && res.request().resourceType() === 'media') audioRequests.push({ range: res.request().headers().range, status: res.status() })
    })

    await page.goto(`${base}/console/`)
    await page.locator('[data-testid=signin-form]').waitFor()
    await shot(page, 'signin')
    await page.locator('#token').fill('sb_not-a-real-token-at-all')
    await page.locator('[data-testid=signin-form] button[type=submit]').click()
    t.match(await page.locator('[data-testid=signin-error]').textContent(), /Unknown, expired or revoked/, 'a wrong token is refused with a clear message')
    await signIn(page, tokens.qa)
    t.equal(await page.locator('[data-testid=role]').textContent(), 'qa', 'signed in as qa')
    t.match(page.url(), /\/console\/recordings$/, 'qa lands on the recording search')
    const cookies = await context.cookies()
    const cookie = cookies.find((c) => c.name === 'sb_token')
    t.ok(cookie?.httpOnly && cookie.sameSite === 'Strict', 'HttpOnly SameSite=Strict session cookie set')
    t.equal(await page.locator('nav a', { hasText: 'Live' }).count(), 0, 'no supervisor links for qa')

    await page.locator('[data-testid=results] tbody tr').nth(2).waitFor()
    t.equal(await page.locator('[data-testid=results] tbody tr').count(), 3, 'the three recordings listed')
    await page.locator('input[name=clientName]').fill('Acme')
    await page.locator('[data-testid=search-button]').click()
    await page.waitForURL(/clientName=Acme/)
    await until(page, 'document.querySelectorAll("[data-testid=results] tbody tr").length === 1')
    t.match(await page.locator('[data-testid=results] tbody').textContent(), /Acme Trading/, 'the client-name filter keeps Acme only')
    await shot(page, 'search')
    await page.locator('input[name=clientName]').fill('Nobody-like-this')
    await page.locator('[data-testid=search-button]').click()
    await page.locator('[data-testid=no-results]').waitFor()
    t.pass('an empty result says so')
    await page.goBack()
    await page.locator(`[data-testid=results] tr[data-id="${recId}"]`).click()
    await page.waitForURL(new RegExp(`/console/recordings/${recId}$`))

    // the recording page: call facts, client card, metrics
    await page.locator('[data-testid=legs] tbody tr').nth(1).waitFor()
    t.match(await page.locator('[data-testid=ivr-path]').textContent(), /Sales.*Existing order/s, 'IVR path shown')
    t.equal((await page.locator('[data-testid=csat]').textContent())?.trim(), '9', 'CSAT shown')
    await page.locator('[data-testid=card-name]').waitFor()
    t.equal(await page.locator('[data-testid=card-name]').textContent(), 'Acme Trading', 'client card beside the player')
    t.match(await page.locator('[data-testid=metrics]').textContent(), /Overtalk/, 'talk/silence/overtalk metrics shown')
    t.equal(await page.locator('[data-testid=legal-panel]').count(), 0, 'no legal panel for qa')
    t.equal(await page.locator('[data-testid=audit-panel]').count(), 0, 'no audit trail for qa')
    await until(page, 'document.querySelector("[data-testid=waveform] div")?.shadowRoot?.querySelectorAll("canvas").length > 0')
    t.pass('waveform drawn')
    await until(page, '!/decoding/.test(document.querySelector(".legend").textContent)', 15_000)
    t.match(await page.locator('.legend').textContent(), /waveform from the audio/, 'waveform decoded from the real audio (both channels)')

    // play with the keyboard: the audio element advances
    await page.locator('h1').click()
    await page.keyboard.press(' ')
    await until(page, 'document.querySelector("audio").currentTime > 0.8', 15_000)
    t.ok(await audioTime(page) > 0.8, 'playing: currentTime advances')
    // s: jump over the silence 6–14 s; → : +5 s; ] faster
    await page.evaluate('document.querySelector("audio").currentTime = 7')
    await until(page, 'Math.abs(document.querySelector("audio").currentTime - 7) < 1')
    await page.keyboard.press('s')
    await until(page, 'document.querySelector("audio").currentTime >= 13')
    t.ok(await audioTime(page) >= 13, 's jumped over the both-silent span to ~14 s')
    await page.keyboard.press(']')
    t.equal(await page.evaluate('document.querySelector("audio").playbackRate'), 1.25, '] raises the speed')
    await page.keyboard.press('[')
    t.equal(await page.evaluate('document.querySelector("audio").playbackRate'), 1, '[ lowers it')
    const beforeSeek = await audioTime(page)
    for (let i = 0; i < 6; i++) await page.keyboard.press('ArrowRight')
    await until(page, `document.querySelector("audio").currentTime > ${beforeSeek + 25}`)
    await until(page, 'document.querySelector("audio").readyState >= 3 && !document.querySelector("audio").paused', 15_000)
    t.ok(await audioTime(page) > beforeSeek + 25, 'seeked forward 30 s with →')
    t.ok(audioRequests.length > 0, `the <audio> element fetched the stream (${audioRequests.length} request(s))`)
    t.ok(audioRequests.every((r) => r.range !== undefined && r.status === 206), `every media request carried a Range header and got 206: ${JSON.stringify(audioRequests)}`)
    const plays = (await sb.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE recording_id = $1 AND action = 'play' AND actor = 'u-qa'`, [recId])).rows[0].n
    t.ok(plays >= 1, 'the play is in the audit log')
    await page.keyboard.press(' ')
    await until(page, 'document.querySelector("audio").paused')
    await shot(page, 'recording')

    // QA score and notes: saved, then reloaded from Postgres
    await page.locator('[data-testid=qa-score]').fill('87')
    await page.locator('[data-testid=qa-notes]').fill('Good greeting; forgot to confirm the order number.')
    await page.locator('[data-testid=qa-save]').click()
    await page.locator('[data-testid=qa-status]', { hasText: 'version 1' }).waitFor()
    const row = (await sb.pool.query('SELECT score, notes, reviewer FROM qa_reviews WHERE recording_id = $1', [recId])).rows[0]
    t.same(row, { score: 87, notes: 'Good greeting; forgot to confirm the order number.', reviewer: 'u-qa' }, 'review stored in Postgres')
    await page.reload()
    await page.locator('[data-testid=qa-status]', { hasText: 'version 1' }).waitFor()
    t.equal(await page.locator('[data-testid=qa-score]').inputValue(), '87', 'score reloaded')
    t.match(await page.locator('[data-testid=qa-notes]').inputValue(), /forgot to confirm/, 'notes reloaded')
    await page.locator('[data-testid=qa-panel]').scrollIntoViewIfNeeded()
    await shot(page, 'qa-review')

    // legal actions are hidden for qa, and the API refuses them even if forced
    const forced = await page.evaluate(`fetch('/api/legal-holds', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + sessionStorage.getItem('sb_token') },
      body: JSON.stringify({ scope: 'recording', id: '${recId}', reason: 'x', caseRef: 'y' }) }).then((r) => r.status)`)
    t.equal(forced, 403, 'a hold placed as qa is denied by the API')
    const cookieOnly = await page.evaluate(`fetch('/api/recordings/${recId}/qa', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ score: 1 }) }).then((r) => r.status)`)
    t.equal(cookieOnly, 401, 'the session cookie alone cannot change anything')
  })

  await t.test('seeking far into a long recording fetches that part with an HTTP Range request', async (t) => {
    const { context, page } = await newPage()
    t.teardown(() => context.close())
    const media: Array<{ range: string | undefined; status: number; contentRange: string | undefined }> = []
    page.on('response', (res) => {
      if (res.url().endsWith(`/api/recordings/${longRec.id}/audio`) && res.request().resourceType() === 'media') {
        media.push({ range: res.request().headers().range, status: res.status(), contentRange: res.headers()['content-range'] })
      }
    })
    await page.goto(`${base}/console/recordings/${longRec.id}`)
    await signIn(page, tokens.qa)
    await until(page, 'document.querySelector("audio")?.readyState >= 1', 15_000)
    t.equal(longRec.codec, 'pcm_s16le', `stored as WAV by the policy (${longRec.bytes} bytes)`)
    const before = media.length
    const box = (await page.locator('svg.timeline').boundingBox())!
    await page.mouse.click(box.x + box.width * 0.9, box.y + box.height / 2) // ~2:42 of 3:00
    await until(page, 'document.querySelector("audio").currentTime > 150')
    await page.keyboard.press(' ')
    await until(page, 'document.querySelector("audio").currentTime > 163 && !document.querySelector("audio").paused', 15_000)
    t.pass('plays from the clicked position')
    const seekRequests = media.slice(before).filter((r) => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? 0) > 1_000_000)
    t.ok(seekRequests.length > 0, `a Range request from the middle of the file after the click: ${JSON.stringify(media)}`)
    t.ok(seekRequests.every((r) => r.status === 206 && /^bytes \d+-\d+\/\d+$/.test(r.contentRange ?? '')), 'answered 206 with Content-Range')
    await page.keyboard.press(' ')
  })

  await t.test('legal: deep link, put and lift a hold with reason and case, export bundle, audit trail', async (t) => {
    const { context, page } = await newPage()
    t.teardown(() => context.close())
    await page.goto(`${base}/console/recordings/${recId}`)
    await page.locator('[data-testid=signin-form]').waitFor()
    await signIn(page, tokens.legal)
    await page.waitForURL(new RegExp(`/console/recordings/${recId}$`))
    t.pass('the deep link survives sign-in')
    await page.locator('[data-testid=hold-form]').waitFor()
    t.equal(await page.locator('[data-testid=qa-panel]').count(), 0, 'no QA review for legal')
    t.ok(await page.locator('[data-testid=no-hold]').isVisible(), 'not on hold yet')

    // a second tab opened from a link: it reads with the cookie alone, and its first change asks for the token
    const tab = await context.newPage()
    await tab.goto(`${base}/console/recordings/${recId}`)
    await tab.locator('[data-testid=hold-form]').waitFor()
    t.equal(await tab.evaluate('sessionStorage.getItem("sb_token")'), null, 'the new tab has no token, only the cookie')
    await tab.locator('[data-testid=hold-case]').fill('CASE-2026-014')
    await tab.locator('[data-testid=hold-reason]').fill('Customer complaint, court request')
    await tab.locator('[data-testid=hold-submit]').click()
    await tab.locator('#token-dialog-input').fill(tokens.qa)
    await tab.locator('.modal button[type=submit]').click()
    t.match(await tab.locator('.modal .error').textContent(), /belongs to User|belongs to Quinn/, 'another user\'s token is refused in the dialog')
    await tab.locator('#token-dialog-input').fill(tokens.legal)
    await tab.locator('.modal button[type=submit]').click()
    await tab.locator('[data-testid=hold-badge]').waitFor()
    t.pass('the hold is placed once the token is given')
    await tab.close()
    await page.reload()
    await page.locator('[data-testid=hold-badge]').waitFor()
    t.match(await page.locator('[data-testid=holds]').textContent(), /CASE-2026-014/, 'the hold is listed with its case reference')
    const held = (await sb.pool.query('SELECT legal_hold FROM recordings WHERE id = $1', [recId])).rows[0].legal_hold
    t.equal(held, true, 'recording on hold in Postgres')
    await page.locator('[data-testid=audit-panel] tbody tr').first().waitFor()
    await until(page, '/legal_hold/.test(document.querySelector("[data-testid=audit-panel]").textContent)')
    t.match(await page.locator('[data-testid=audit-panel]').textContent(), /legal_hold/, 'the audit trail shows the hold')
    t.match(await page.locator('[data-testid=audit-panel]').textContent(), /play/, 'and the qa play before it')

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid=export-call]').click()])
    const file = await download.path()
    const zip = await readFile(file!)
    t.equal(zip.subarray(0, 2).toString('latin1'), 'PK', `export bundle downloaded as a zip (${download.suggestedFilename()}, ${zip.length} bytes)`)
    await page.locator('[data-testid=legal-panel]').scrollIntoViewIfNeeded()
    await shot(page, 'legal')

    await page.locator('[data-testid=lift-hold]').click()
    await page.locator('[data-testid=lift-reason]').fill('Case closed')
    await page.locator('[data-testid=lift-confirm]').click()
    await page.locator('[data-testid=no-hold]').waitFor()
    t.equal((await sb.pool.query('SELECT legal_hold FROM recordings WHERE id = $1', [recId])).rows[0].legal_hold, false, 'hold lifted')
    await page.locator('[data-testid=sign-out]').click()
    await page.locator('[data-testid=signin-form]').waitFor()
    const status = await page.evaluate(`fetch('/api/session').then((r) => r.status)`)
    t.equal(status, 401, 'signed out: the cookie no longer authenticates')
  })

  await t.test('supervisor: live view over SSE and the dashboard', async (t) => {
    const { context, page } = await newPage()
    t.teardown(() => context.close())
    await page.goto(`${base}/console/`)
    await signIn(page, tokens.supervisor)
    await page.waitForURL(/\/console\/live$/)
    await until(page, 'document.querySelector("[data-testid=today]") || document.querySelector("[data-testid=stats-unavailable]")', 15_000)
    const live = await page.locator('[data-testid=today]').count() > 0
    t.ok(live, 'a live snapshot arrived over SSE (else the page says statistics are unavailable)')
    if (live) t.match(await page.locator('[data-testid=live-status]').textContent(), /live/, 'stream status: live')
    // a presence change reaches the open page without a reload
    await sb.presence.set('a1', 'ready')
    await page.locator('[data-testid=agents] tr', { hasText: 'Anton Agent' }).filter({ hasText: 'ready' }).waitFor({ timeout: 15_000 })
    await sb.presence.set('a1', 'not_ready', 'lunch')
    await page.locator('[data-testid=agents] tr', { hasText: 'Anton Agent' }).filter({ hasText: 'lunch' }).waitFor({ timeout: 15_000 })
    t.match(await page.locator('[data-testid=agents] tr', { hasText: 'Anton Agent' }).textContent(), /not ready.*lunch/, 'agent states update live over SSE')
    await shot(page, 'live')
    await page.locator('nav a', { hasText: 'Dashboard' }).click()
    await until(page, 'document.querySelector("[data-testid=report-table]") || document.querySelector(".empty") || document.querySelector("[data-testid=stats-unavailable]") || document.querySelector(".error")', 15_000)
    t.equal(await page.locator('.error').count(), 0, 'the report loaded without error')
    t.equal(await page.locator('[data-testid=stats-unavailable]').count(), 0, 'the report API exists')
    await shot(page, 'dashboard')

    // a Switchboard without the statistics module: the pages say so instead of spinning
    await page.route('**/api/stats/**', (route) => route.fulfill({ status: 404, contentType: 'application/problem+json', body: JSON.stringify({ status: 404, code: 'not_found', title: 'Not Found' }) }))
    await page.goto(`${base}/console/live`)
    await page.locator('[data-testid=stats-unavailable]').waitFor()
    t.match(await page.locator('[data-testid=live-status]').textContent(), /unavailable/, 'live view: statistics unavailable')
    await page.goto(`${base}/console/dashboard`)
    await page.locator('[data-testid=stats-unavailable]').waitFor()
    t.pass('dashboard: statistics unavailable')
  })

  await t.test('agent: screen pop over SSE, client deep link by phone, QA pages refused', async (t) => {
    const { context, page } = await newPage()
    t.teardown(() => context.close())
    await page.goto(`${base}/console/`)
    await signIn(page, tokens.agent)
    await page.waitForURL(/\/console\/screen-pop$/)
    await until(page, '/connected|unavailable/.test(document.querySelector("[data-testid=pop-status]").textContent)', 10_000)
    t.match(await page.locator('[data-testid=pop-status]').textContent(), /connected/, 'the screen-pop stream is open')
    sb.events.emit('call.offered', {
      callUuid: call1, direction: 'inbound', caller: '+74951234567', did: '+74951112233', clientId: 'c1', at: new Date().toISOString(),
      employeeId: 'a1', queueId: 'sales', ivrPath: [{ menuId: 'main', label: 'Sales', digit: '1', at: new Date().toISOString() }],
    })
    await page.locator('[data-testid=pop-card]').waitFor()
    await page.locator('[data-testid=pop-client]', { hasText: 'Acme Trading' }).waitFor()
    t.pass('the offered call pops the client card')
    await shot(page, 'screen-pop')
    const base1 = { callUuid: call1, direction: 'inbound' as const, caller: '+74951234567', did: '+74951112233', clientId: 'c1' }
    sb.events.emit('call.answered', { ...base1, at: new Date().toISOString(), employeeId: 'a1', queueId: 'sales' })
    await page.locator('[data-testid=pop-card] h2', { hasText: 'On call' }).waitFor()
    sb.events.emit('call.ended', {
      ...base1, at: new Date().toISOString(), outcome: 'answered', counted: true, agentId: 'a1', queueId: 'sales', billsec: 60, talkSec: 58,
      answeredAt: new Date().toISOString(), connectedAt: new Date().toISOString(), hangupCause: 'NORMAL_CLEARING', csat: null, ivrPath: [],
    })
    await page.locator('[data-testid=pop-card] h2', { hasText: 'Call ended' }).waitFor()
    t.pass('answered and ended follow the call on the same card')

    await page.goto(`${base}/console/clients/by-phone/+74951234567`)
    await page.locator('[data-testid=client-name]').waitFor()
    t.match(await page.locator('[data-testid=client-name]').textContent(), /Acme Trading/, 'by-phone deep link opens the card (cookie session)')
    await shot(page, 'client')
    await page.goto(`${base}/console/recordings/${recId}`)
    await page.locator('[data-testid=forbidden]').waitFor()
    t.pass('recordings are refused for agents')
  })

  t.same(pageErrors, [], 'no uncaught errors in the pages')
}
