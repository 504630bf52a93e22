import { html, nothing } from 'lit'
import { get, query } from '../api.ts'
import { dateTime, duration, isoToLocalInput, localInputToIso } from '../format.ts'
import { recordingPath } from '../router.ts'
import type { RecordingSummary, SearchResult } from '../types.ts'
import { errorText, type Ctx, type View } from '../view.ts'

/** The search filters of GET /api/recordings, as the form names them (durations in seconds here, ms in the API). */
const TEXT_FILTERS = ['clientName', 'inn', 'clientPhone', 'phone', 'agent', 'queue', 'did', 'source', 'outcome', 'clientId', 'callUuid'] as const
const SECOND_FILTERS = ['minDurationMs', 'maxDurationMs', 'minTalkMs', 'maxTalkMs', 'minSilenceMs', 'maxSilenceMs', 'minOvertalkMs'] as const
const PLAIN_FILTERS = ['direction', 'csatMin', 'csatMax', 'legalHold', 'state', 'from', 'to'] as const
const ALL = [...TEXT_FILTERS, ...SECOND_FILTERS, ...PLAIN_FILTERS]

/** Recording search: filters mirrored in the URL (shareable, back button), results table, keyset "more". */
export class RecordingsView implements View {
  title = 'Recordings'
  private items: RecordingSummary[] = []
  private next: string | null = null
  private busy = false
  private error: string | null = null
  private searched = false
  private readonly filters: Record<string, string>
  private abort = new AbortController()

  constructor(private readonly ctx: Ctx) {
    this.filters = {}
    for (const k of ALL) {
      const v = ctx.route.query.get(k)
      if (v) this.filters[k] = v
    }
    void this.search()
  }

  dispose(): void { this.abort.abort() }

  private apiQuery(cursor?: string): string {
    const f = this.filters
    const params: Record<string, string | number | undefined> = { limit: 50, cursor }
    for (const k of [...TEXT_FILTERS, ...PLAIN_FILTERS]) params[k] = f[k]
    for (const k of SECOND_FILTERS) params[k] = f[k] ? Math.round(Number(f[k]) * 1000) : undefined
    return query(params)
  }

  private async search(more = false): Promise<void> {
    this.busy = true
    this.error = null
    this.ctx.update()
    try {
      const r = await get<SearchResult>(`/api/recordings${this.apiQuery(more ? this.next ?? undefined : undefined)}`, this.abort.signal)
      this.items = more ? [...this.items, ...r.items] : r.items
      this.next = r.nextCursor
      this.searched = true
    } catch (err) {
      if ((err as Error).name === 'AbortError') return
      this.error = errorText(err)
    }
    this.busy = false
    this.ctx.update()
  }

  private submit(e: Event): void {
    e.preventDefault()
    const form = e.target as HTMLFormElement
    const data = new FormData(form)
    const q: Record<string, string> = {}
    for (const k of ALL) {
      let v = String(data.get(k) ?? '').trim()
      if ((k === 'from' || k === 'to') && v) v = localInputToIso(v) ?? ''
      if (v) q[k] = v
    }
    this.ctx.navigate(`/console/recordings${query(q)}`)
  }

  private reset(): void { this.ctx.navigate('/console/recordings') }

  render() {
    const f = this.filters
    const text = (name: string, label: string, placeholder = '', attrs: { pattern?: string; maxlength?: number } = {}) => html`
      <label>${label}<input name=${name} .value=${f[name] ?? ''} placeholder=${placeholder} maxlength=${attrs.maxlength ?? 200} pattern=${attrs.pattern ?? nothing}></label>`
    const seconds = (name: string, label: string) => html`<label>${label}<input name=${name} type="number" min="0" step="1" .value=${f[name] ?? ''}></label>`
    const select = (name: string, label: string, options: Array<[string, string]>) => html`
      <label>${label}<select name=${name}>${options.map(([v, l]) => html`<option value=${v} ?selected=${(f[name] ?? '') === v}>${l}</option>`)}</select></label>`
    const advanced = SECOND_FILTERS.some((k) => f[k]) || ['inn', 'clientPhone', 'did', 'source', 'outcome', 'csatMin', 'csatMax', 'legalHold', 'state', 'queue', 'clientId', 'callUuid'].some((k) => f[k])
    return html`
      <h1>Recordings</h1>
      <form class="filters" @submit=${(e: Event) => this.submit(e)} data-testid="search-form" role="search">
        <div class="row">
          ${text('clientName', 'Client name', 'starts with…')}
          ${text('phone', 'Phone', '+7…', { maxlength: 32 })}
          ${text('agent', 'Agent', 'employee id', { maxlength: 128 })}
          <label>From<input name="from" type="datetime-local" .value=${isoToLocalInput(f.from)}></label>
          <label>To<input name="to" type="datetime-local" .value=${isoToLocalInput(f.to)}></label>
          ${select('direction', 'Direction', [['', 'any'], ['inbound', 'inbound'], ['outbound', 'outbound'], ['internal', 'internal'], ['fmc', 'FMC']])}
        </div>
        <details ?open=${advanced}>
          <summary>More filters</summary>
          <div class="row">
            ${text('inn', 'INN', '10 or 12 digits', { pattern: '[0-9]{10,12}', maxlength: 12 })}
            ${text('clientPhone', 'Client phone', 'any phone of the client', { maxlength: 32 })}
            ${text('clientId', 'Client id', '', { maxlength: 128 })}
            ${text('queue', 'Queue', '', { maxlength: 128 })}
            ${text('did', 'DID', '', { maxlength: 32 })}
            ${text('source', 'Source tag', '', { maxlength: 128 })}
            ${text('outcome', 'Outcome', 'answered, abandoned…', { maxlength: 64 })}
            ${text('callUuid', 'Call UUID', '', { pattern: '[0-9a-fA-F-]{36}', maxlength: 36 })}
          </div>
          <div class="row">
            ${seconds('minDurationMs', 'Min duration (s)')}${seconds('maxDurationMs', 'Max duration (s)')}
            ${seconds('minTalkMs', 'Min talk (s)')}${seconds('maxTalkMs', 'Max talk (s)')}
            ${seconds('minSilenceMs', 'Min silence (s)')}${seconds('maxSilenceMs', 'Max silence (s)')}
            ${seconds('minOvertalkMs', 'Min overtalk (s)')}
          </div>
          <div class="row">
            ${select('csatMin', 'CSAT ≥', [['', 'any'], ...Array.from({ length: 10 }, (_, i): [string, string] => [String(i + 1), String(i + 1)])])}
            ${select('csatMax', 'CSAT ≤', [['', 'any'], ...Array.from({ length: 10 }, (_, i): [string, string] => [String(i + 1), String(i + 1)])])}
            ${select('legalHold', 'Legal hold', [['', 'any'], ['true', 'on hold'], ['false', 'not on hold']])}
            ${select('state', 'State', [['', 'any'], ['stored', 'stored'], ['spooled', 'spooled'], ['transcoding', 'transcoding'], ['failed', 'failed'], ['quarantined', 'quarantined'], ['deleted', 'deleted']])}
          </div>
        </details>
        <div class="actions"><button type="submit" data-testid="search-button">Search</button><button type="button" class="secondary" @click=${() => this.reset()}>Clear</button></div>
      </form>
      ${this.error ? html`<p class="error" role="alert" data-testid="search-error">${this.error}</p>` : nothing}
      ${this.table()}
      ${this.next ? html`<p><button class="secondary" ?disabled=${this.busy} @click=${() => void this.search(true)}>More results</button></p>` : nothing}
      ${this.busy ? html`<p class="muted loading" role="status">Searching…</p>` : nothing}`
  }

  private table() {
    if (!this.searched) return nothing
    if (this.items.length === 0) return html`<p class="empty" data-testid="no-results">No recordings match these filters. Widen the dates or clear a filter.</p>`
    return html`<table class="results" data-testid="results">
      <thead><tr><th>When</th><th>Length</th><th>Dir.</th><th>Caller → callee</th><th>Client</th><th>Agent</th><th>Queue</th><th>CSAT</th><th title="talk / silence / overtalk">Talk · silence · over</th><th></th></tr></thead>
      <tbody>${this.items.map((r) => html`<tr class="clickable" data-id=${r.id} @click=${(e: Event) => { if (!(e.target as Element).closest('a')) this.ctx.navigate(recordingPath(r.id)) }}>
        <td><a href=${recordingPath(r.id)}>${dateTime(r.createdAt)}</a></td>
        <td class="num">${duration(r.durationMs)}</td>
        <td>${r.direction ?? '–'}</td>
        <td>${r.caller ?? '?'} → ${r.callee ?? '?'}</td>
        <td>${r.clientName ?? r.clientId ?? html`<span class="muted">unknown</span>`}</td>
        <td>${r.agentName ?? r.agentId ?? '–'}</td>
        <td>${r.queueId ?? '–'}</td>
        <td class="num">${r.csat ?? '–'}</td>
        <td class="num">${duration(r.talkMs)} · ${duration(r.silenceMs)} · ${duration(r.overtalkMs)}</td>
        <td>${r.legalHold ? html`<span class="badge hold">hold</span>` : nothing}${r.state !== 'stored' ? html`<span class="badge state">${r.state}</span>` : nothing}</td>
      </tr>`)}</tbody>
    </table>`
  }
}
