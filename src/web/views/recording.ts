import { html, nothing } from 'lit'
import { ApiError, get, request } from '../api.ts'
import { bytes, dateTime, duration, percent, time } from '../format.ts'
import { can } from '../roles.ts'
import { clientPath } from '../router.ts'
import { silencesOf } from '../playback.ts'
import type { AuditEntry, CallContext, ClientCard, Hold, QaReview, RecordingDetail } from '../types.ts'
import { empty, errorText, failed, load, loading, panel, type Ctx, type Loadable, type View } from '../view.ts'
import { Player } from './player.ts'
import { clientCardPanel } from './client.ts'

const RUBRIC = ['Greeting', 'Identification', 'Needs discovery', 'Solution', 'Closing'] as const

/** One recording: player, metrics, call and client beside it; QA review; legal hold, export and audit for legal. */
export class RecordingView implements View {
  title = 'Recording'
  private rec: Loadable<RecordingDetail> = { state: 'loading' }
  private context: Loadable<CallContext> = { state: 'loading' }
  private card: Loadable<ClientCard | null> = { state: 'loading' }
  private qa: Loadable<QaReview | null> = { state: 'loading' }
  private audit: Loadable<AuditEntry[]> = { state: 'loading' }
  private qaDraft: { score: string; notes: string; rubric: Record<string, string> } = { score: '', notes: '', rubric: {} }
  private qaBusy = false
  private qaError: string | null = null
  private holdBusy = false
  private holdError: string | null = null
  private liftFor: number | null = null
  private exportBusy = false
  private exportError: string | null = null
  private verify: string | null = null
  private player: Player | null = null
  private readonly abort = new AbortController()

  constructor(private readonly ctx: Ctx, private readonly id: string) {
    void this.loadAll()
  }

  private get p() { return this.ctx.principal }

  private async loadAll(): Promise<void> {
    const s = this.abort.signal
    const base = `/api/recordings/${encodeURIComponent(this.id)}`
    const recP = load(get<RecordingDetail>(base, s)).then((r) => { this.rec = r; this.ctx.update(); return r })
    const ctxP = load(get<CallContext>(`${base}/context`, s)).then((r) => { this.context = r; this.ctx.update() })
    if (can(this.p, 'qaReview')) void this.loadQa()
    if (can(this.p, 'auditTrail')) void this.loadAudit()
    const rec = await recP
    await ctxP
    if (rec.state === 'ready') {
      const r = rec.value
      this.title = `Recording ${dateTime(r.createdAt)}`
      document.title = `${this.title} · Switchboard`
      this.card = r.clientId ? await load(get<ClientCard>(`/api/clients/${encodeURIComponent(r.clientId)}/card?recent=10`, s)) : { state: 'ready', value: null }
      this.ctx.update()
    }
  }

  private async loadQa(): Promise<void> {
    this.qa = await load(get<{ review: QaReview | null }>(`/api/recordings/${encodeURIComponent(this.id)}/qa`, this.abort.signal).then((r) => r.review))
    if (this.qa.state === 'ready') {
      const r = this.qa.value
      this.qaDraft = { score: r?.score == null ? '' : String(r.score), notes: r?.notes ?? '', rubric: Object.fromEntries((r?.rubric ?? []).map((i) => [i.criterion, String(i.score)])) }
    }
    this.ctx.update()
  }

  private async loadAudit(): Promise<void> {
    this.audit = await load(get<{ entries: AuditEntry[] }>(`/api/recordings/${encodeURIComponent(this.id)}/audit?limit=100`, this.abort.signal).then((r) => r.entries))
    this.ctx.update()
  }

  private async reloadContext(): Promise<void> {
    const [rec, c] = await Promise.all([
      load(get<RecordingDetail>(`/api/recordings/${encodeURIComponent(this.id)}`, this.abort.signal)),
      load(get<CallContext>(`/api/recordings/${encodeURIComponent(this.id)}/context`, this.abort.signal)),
    ])
    if (rec.state === 'ready') this.rec = rec
    this.context = c
    if (can(this.p, 'auditTrail')) await this.loadAudit()
    this.ctx.update()
  }

  updated(): void {
    if (this.player || this.rec.state !== 'ready' || this.rec.value.state !== 'stored') return
    const root = document.querySelector<HTMLElement>('#player-root')
    if (!root) return
    const paused = this.context.state === 'ready' && Array.isArray(this.context.value.pausedSpans) ? this.context.value.pausedSpans : []
    this.player = new Player(root, this.rec.value, paused)
  }

  dispose(): void {
    this.abort.abort()
    this.player?.destroy()
    this.player = null
  }

  onKey(e: KeyboardEvent): boolean {
    return this.player?.onKey(e) ?? false
  }

  // ---- QA review -------------------------------------------------------------------------

  private async saveQa(e: Event): Promise<void> {
    e.preventDefault()
    const d = this.qaDraft
    const score = d.score.trim() === '' ? null : Number(d.score)
    if (score !== null && (!Number.isInteger(score) || score < 0 || score > 100)) { this.qaError = 'The score is a whole number from 0 to 100.'; return this.ctx.update() }
    const rubric = RUBRIC.filter((c) => d.rubric[c] !== undefined && d.rubric[c] !== '').map((c) => ({ criterion: c, score: Number(d.rubric[c]) }))
    this.qaBusy = true
    this.qaError = null
    this.ctx.update()
    try {
      const expectedVersion = this.qa.state === 'ready' ? this.qa.value?.version ?? 0 : undefined
      const saved = await request<QaReview>('PUT', `/api/recordings/${encodeURIComponent(this.id)}/qa`, { body: { score, rubric, notes: d.notes, expectedVersion } })
      this.qa = { state: 'ready', value: saved }
      this.ctx.notify('QA review saved')
      if (can(this.p, 'auditTrail')) void this.loadAudit()
    } catch (err) {
      this.qaError = err instanceof ApiError && err.code === 'qa_review_conflict' ? `${err.message}` : errorText(err)
    }
    this.qaBusy = false
    this.ctx.update()
  }

  private qaPanel() {
    if (!can(this.p, 'qaReview')) return nothing
    const d = this.qaDraft
    return html`<section class="panel" aria-labelledby="qa-h" data-testid="qa-panel"><h2 id="qa-h">QA review</h2>
      ${panel(this.qa, (r) => html`
        <form class="qa" @submit=${(e: Event) => void this.saveQa(e)}>
          <div class="row">
            <label>Score (0–100)<input name="score" data-testid="qa-score" type="number" min="0" max="100" step="1" .value=${d.score}
              @input=${(e: Event) => { d.score = (e.target as HTMLInputElement).value }}></label>
            ${RUBRIC.map((c) => html`<label>${c}<select @change=${(e: Event) => { d.rubric[c] = (e.target as HTMLSelectElement).value }}>
              <option value="" ?selected=${!d.rubric[c]}>–</option>
              ${Array.from({ length: 11 }, (_, i) => html`<option value=${i} ?selected=${d.rubric[c] === String(i)}>${i}</option>`)}
            </select></label>`)}
          </div>
          <label>Notes<textarea name="notes" data-testid="qa-notes" rows="3" maxlength="10000" .value=${d.notes}
            @input=${(e: Event) => { d.notes = (e.target as HTMLTextAreaElement).value }}></textarea></label>
          ${this.qaError ? html`<p class="error" role="alert" data-testid="qa-error">${this.qaError}</p>` : nothing}
          <div class="actions"><button type="submit" data-testid="qa-save" ?disabled=${this.qaBusy}>${this.qaBusy ? 'Saving…' : 'Save review'}</button>
            <span class="muted small" data-testid="qa-status">${r ? `Saved by ${r.reviewer}, ${dateTime(r.updatedAt)} (version ${r.version})` : 'Not reviewed yet'}</span></div>
        </form>`, 'Loading the review')}
    </section>`
  }

  // ---- legal ----------------------------------------------------------------------------------

  private async placeHold(e: Event): Promise<void> {
    e.preventDefault()
    if (this.rec.state !== 'ready') return
    const form = e.target as HTMLFormElement
    const data = new FormData(form)
    const scope = String(data.get('scope')) as Hold['scope']
    const r = this.rec.value
    const id = scope === 'recording' ? r.id : scope === 'call' ? r.callUuid : r.clientId
    if (!id) { this.holdError = `This recording has no ${scope} to hold.`; return this.ctx.update() }
    this.holdBusy = true
    this.holdError = null
    this.ctx.update()
    try {
      await request('POST', '/api/legal-holds', { body: { scope, id, reason: String(data.get('reason')).trim(), caseRef: String(data.get('caseRef')).trim() } })
      form.reset()
      this.ctx.notify('Legal hold placed')
      await this.reloadContext()
    } catch (err) {
      this.holdError = errorText(err)
    }
    this.holdBusy = false
    this.ctx.update()
  }

  private async liftHold(e: Event, hold: Hold): Promise<void> {
    e.preventDefault()
    const reason = String(new FormData(e.target as HTMLFormElement).get('reason') ?? '').trim()
    this.holdBusy = true
    this.holdError = null
    this.ctx.update()
    try {
      await request('DELETE', `/api/legal-holds/${hold.id}`, { body: { reason } })
      this.liftFor = null
      this.ctx.notify('Legal hold lifted')
      await this.reloadContext()
    } catch (err) {
      this.holdError = errorText(err)
    }
    this.holdBusy = false
    this.ctx.update()
  }

  private async exportBundle(body: { callUuid: string } | { caseRef: string }): Promise<void> {
    this.exportBusy = true
    this.exportError = null
    this.ctx.update()
    try {
      const res = await request<Response>('POST', '/api/exports', { body, raw: true })
      const blob = await res.blob()
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'switchboard-export.zip'
      const a = document.createElement('a')
      a.href = URL.createObjectURL(blob)
      a.download = name
      document.body.append(a)
      a.click()
      a.remove()
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000)
      this.ctx.notify(`Export bundle downloaded (${res.headers.get('x-recording-count') ?? '?'} recording(s)); check it with npm run verify-bundle`)
      if (can(this.p, 'auditTrail')) void this.loadAudit()
    } catch (err) {
      this.exportError = errorText(err)
    }
    this.exportBusy = false
    this.ctx.update()
  }

  private async verifyIntegrity(): Promise<void> {
    this.verify = 'Checking…'
    this.ctx.update()
    try {
      const v = await request<{ ok: boolean; reason?: string; actualSha256: string | null }>('POST', `/api/recordings/${encodeURIComponent(this.id)}/verify`)
      this.verify = v.ok ? `Intact: the stored audio matches its SHA-256.` : `MISMATCH: ${v.reason ?? 'differs'}`
    } catch (err) {
      this.verify = errorText(err)
    }
    this.ctx.update()
  }

  private legalPanel(r: RecordingDetail) {
    const canManage = can(this.p, 'manageHolds')
    const canExport = can(this.p, 'exportBundle')
    if (!can(this.p, 'viewHolds') && !canExport) return nothing
    const holds = this.context.state === 'ready' ? this.context.value.holds ?? [] : []
    return html`<section class="panel" aria-labelledby="legal-h" data-testid="legal-panel"><h2 id="legal-h">Legal</h2>
      <p>Retention until ${dateTime(r.retentionUntil)} · ${r.legalHold ? html`<strong class="badge hold" data-testid="hold-badge">on legal hold</strong>` : html`<span data-testid="no-hold">not on hold</span>`}</p>
      ${this.context.state === 'error' ? failed(this.context.error) : nothing}
      ${holds.length ? html`<table class="compact" data-testid="holds"><thead><tr><th>Hold</th><th>Scope</th><th>Case</th><th>Reason</th><th>By</th><th></th></tr></thead><tbody>
        ${holds.map((h) => html`<tr><td>#${h.id}</td><td>${h.scope}</td><td>${h.caseRef}</td><td>${h.reason}</td><td>${h.createdBy}, ${dateTime(h.createdAt)}</td>
          <td>${canManage ? (this.liftFor === h.id
            ? html`<form class="inline" @submit=${(e: Event) => void this.liftHold(e, h)}><input name="reason" required maxlength="2000" placeholder="why it is lifted" aria-label="Reason for lifting" data-testid="lift-reason">
                <button type="submit" ?disabled=${this.holdBusy} data-testid="lift-confirm">Lift</button><button type="button" class="secondary" @click=${() => { this.liftFor = null; this.ctx.update() }}>Cancel</button></form>`
            : html`<button class="secondary" @click=${() => { this.liftFor = h.id; this.ctx.update() }} data-testid="lift-hold">Lift…</button>`) : nothing}</td></tr>`)}
      </tbody></table>` : nothing}
      ${canManage ? html`<form class="hold-form" data-testid="hold-form" @submit=${(e: Event) => void this.placeHold(e)}>
        <div class="row">
          <label>Hold<select name="scope"><option value="recording">this recording</option><option value="call" ?disabled=${!r.callUuid}>every recording of the call</option><option value="client" ?disabled=${!r.clientId}>all of the client's recordings</option></select></label>
          <label>Case reference<input name="caseRef" required maxlength="200" placeholder="e.g. CASE-2026-014" data-testid="hold-case"></label>
          <label class="grow">Reason<input name="reason" required maxlength="2000" placeholder="why it must be kept" data-testid="hold-reason"></label>
        </div>
        <div class="actions"><button type="submit" ?disabled=${this.holdBusy} data-testid="hold-submit">Place legal hold</button></div>
      </form>` : nothing}
      ${this.holdError ? html`<p class="error" role="alert" data-testid="hold-error">${this.holdError}</p>` : nothing}
      ${canExport ? html`<div class="export">
        <button class="secondary" ?disabled=${this.exportBusy || !r.callUuid} @click=${() => r.callUuid && void this.exportBundle({ callUuid: r.callUuid })} data-testid="export-call">Download export bundle of the call</button>
        ${holds.length ? html`<button class="secondary" ?disabled=${this.exportBusy} @click=${() => void this.exportBundle({ caseRef: holds[0].caseRef })}>Export case ${holds[0].caseRef}</button>` : nothing}
        <span class="muted small">zip: audio, metadata, SHA-256 manifest, audit excerpt</span>
        ${this.exportError ? html`<p class="error" role="alert">${this.exportError}</p>` : nothing}
      </div>` : nothing}
    </section>`
  }

  private auditPanel() {
    if (!can(this.p, 'auditTrail')) return nothing
    return html`<section class="panel" aria-labelledby="audit-h" data-testid="audit-panel"><h2 id="audit-h">Audit trail</h2>
      ${panel(this.audit, (entries) => entries.length === 0 ? empty('No audit entries yet.') : html`<table class="compact audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>IP</th><th>Details</th></tr></thead><tbody>
        ${entries.map((a) => html`<tr><td>${dateTime(a.at)}</td><td>${a.actor}</td><td><code>${a.action}</code></td><td>${a.ip ?? '–'}</td><td class="details">${summarise(a.details)}</td></tr>`)}
      </tbody></table>`, 'Loading the audit trail')}
    </section>`
  }

  // ---- facts ----------------------------------------------------------------------------------

  private metricsPanel(r: RecordingDetail) {
    const m = r.metrics
    const total = r.durationMs ?? m?.durationMs ?? 0
    const ch = m?.channels ?? []
    const silences = silencesOf(m)
    return html`<section class="panel" aria-labelledby="metrics-h" data-testid="metrics"><h2 id="metrics-h">Talk, silence, overtalk</h2>
      ${!m ? empty('No talk metrics for this recording (not analysed).') : html`<dl class="tiles">
        <div><dt>Caller talk</dt><dd>${duration(ch[0]?.talkMs)} <small>${percent(ch[0]?.talkMs, total)}</small></dd></div>
        <div><dt>Agent talk</dt><dd>${duration(ch[1]?.talkMs)} <small>${percent(ch[1]?.talkMs, total)}</small></dd></div>
        <div><dt>Silence (both)</dt><dd>${duration(silences.reduce((s, x) => s + x.endMs - x.startMs, 0))} <small>${silences.length} span(s)</small></dd></div>
        <div><dt>Overtalk</dt><dd>${duration(m.overtalkMs)} <small>${percent(m.overtalkMs, total)}</small></dd></div>
      </dl>`}
    </section>`
  }

  private callPanel() {
    return html`<section class="panel" aria-labelledby="call-h" data-testid="call-panel"><h2 id="call-h">Call</h2>
      ${panel(this.context, (c) => !c.call ? empty('The call record is missing (recording without a CDR).') : html`
        <dl class="facts">
          <dt>Outcome</dt><dd>${c.call.outcome ?? '–'}${c.call.counted ? '' : html` <span class="muted">(not counted)</span>`}</dd>
          <dt>CSAT</dt><dd data-testid="csat">${c.call.csat ?? html`<span class="muted">no answer</span>`}</dd>
          <dt>Started</dt><dd>${dateTime(c.call.startedAt)}</dd>
          <dt>Answered / ended</dt><dd>${time(c.call.answeredAt)} / ${time(c.call.endedAt)}</dd>
          <dt>DID / source</dt><dd>${c.call.did ?? '–'}${c.call.sourceTag ? ` · ${c.call.sourceTag}` : ''}</dd>
          <dt>Queue</dt><dd>${c.call.queueId ?? '–'}</dd>
          <dt>Hangup</dt><dd>${c.call.hangupCause ?? '–'}</dd>
        </dl>
        <h3>IVR path</h3>
        ${c.call.ivrPath?.length ? html`<ol class="ivr" data-testid="ivr-path">${c.call.ivrPath.map((s) => html`<li>${s.label ?? s.menuId ?? '?'}${s.digit ? html` <kbd>${s.digit}</kbd>` : nothing}</li>`)}</ol>` : empty('No IVR (direct to an agent).')}
        <h3>Legs</h3>
        ${c.legs.length ? html`<table class="compact" data-testid="legs"><thead><tr><th>Party</th><th>Who</th><th>Answered</th><th>Ended</th></tr></thead><tbody>
          ${c.legs.map((l) => html`<tr title=${`${l.endpoint ?? ''} · ${l.hangupCause ?? 'no hangup cause'}`}><td>${l.party}</td><td>${l.employeeName ?? l.endpoint?.split('/').pop() ?? '–'}</td><td>${time(l.answeredAt)}</td><td>${time(l.endedAt)}</td></tr>`)}
        </tbody></table>` : empty('No legs recorded.')}
      `, 'Loading the call')}
    </section>`
  }

  render() {
    if (this.rec.state === 'loading') return loading('Loading the recording')
    if (this.rec.state === 'error') {
      return html`<section class="state-page" data-testid="recording-error"><h1>Recording unavailable</h1>${failed(this.rec.error)}<p><a href="/console/recordings">Back to the search</a></p></section>`
    }
    const r = this.rec.value
    return html`
      <div class="page-head">
        <p class="crumbs"><a href="/console/recordings">← Recordings</a></p>
        <h1 data-testid="recording-title">${r.caller ?? '?'} → ${r.callee ?? '?'} <small>${dateTime(r.createdAt)} · ${duration(r.durationMs)} · ${r.direction ?? ''}</small></h1>
        <p class="muted small">Agent ${r.agentName ?? r.agentId ?? '–'} · ${r.codec ?? '?'} ${r.channels ?? '?'} ch · ${bytes(r.bytes)} · SHA-256 <code title=${r.sha256 ?? ''}>${r.sha256?.slice(0, 12) ?? '–'}…</code>
          ${can(this.p, 'verify') && r.state === 'stored' ? html` · <button class="link" @click=${() => void this.verifyIntegrity()} data-testid="verify">verify integrity</button>` : nothing}
          ${this.verify ? html` <span data-testid="verify-result">${this.verify}</span>` : nothing}</p>
      </div>
      <div class="columns">
        <div class="col-main">
          <section class="panel" aria-label="Player">
            ${r.state === 'stored' ? html`<div id="player-root" class="player"></div>` : empty(`No audio to play: the recording is ${r.state}.`)}
          </section>
          ${this.metricsPanel(r)}
          ${this.qaPanel()}
          ${this.legalPanel(r)}
          ${this.auditPanel()}
        </div>
        <aside class="col-side">
          ${this.callPanel()}
          <section class="panel" aria-labelledby="client-h" data-testid="client-panel"><h2 id="client-h">Client</h2>
            ${panel(this.card, (card) => card ? html`${clientCardPanel(card, this.p, true)}<p><a href=${clientPath(card.client.id)}>Open the client card</a></p>` : empty('Unknown caller: no client card.'), 'Loading the client card')}
          </section>
        </aside>
      </div>`
  }
}

function summarise(d: Record<string, unknown>): string {
  const s = JSON.stringify(d ?? {})
  return s === '{}' ? '' : s.length > 140 ? `${s.slice(0, 139)}…` : s
}

