import { html, nothing } from 'lit'
import { get } from '../api.ts'
import { dateTime, duration } from '../format.ts'
import { can, type Principal } from '../roles.ts'
import { recordingPath } from '../router.ts'
import type { ClientCard } from '../types.ts'
import { empty, failed, load, loading, type Ctx, type Loadable, type View } from '../view.ts'

/**
 * The client card on its own page — the target of CRM deep links:
 * /console/clients/:id and /console/clients/by-phone/:e164.
 */
export class ClientView implements View {
  title = 'Client'
  private card: Loadable<ClientCard> = { state: 'loading' }
  private readonly abort = new AbortController()

  constructor(private readonly ctx: Ctx, private readonly target: { id?: string; phone?: string }) {
    void this.load()
  }

  dispose(): void { this.abort.abort() }

  private async load(): Promise<void> {
    const s = this.abort.signal
    let id = this.target.id
    if (!id && this.target.phone) {
      const found = await load(get<{ id: string }>(`/api/clients/by-phone/${encodeURIComponent(this.target.phone)}`, s))
      if (found.state !== 'ready') {
        this.card = found.state === 'error' && found.status === 404
          ? { state: 'error', status: 404, error: `No client has the phone ${this.target.phone}.` }
          : found as Loadable<ClientCard>
        return this.ctx.update()
      }
      id = found.value.id
    }
    this.card = await load(get<ClientCard>(`/api/clients/${encodeURIComponent(id!)}/card?recent=20`, s))
    if (this.card.state === 'ready') {
      this.title = this.card.value.client.name
      document.title = `${this.title} · Switchboard`
    }
    this.ctx.update()
  }

  render() {
    if (this.card.state === 'loading') return loading('Loading the client card')
    if (this.card.state === 'error') return html`<section class="state-page" data-testid="client-error"><h1>Client card unavailable</h1>${failed(this.card.error)}</section>`
    const c = this.card.value
    return html`<h1 data-testid="client-name">${c.client.name} <small>${c.client.kind}${c.client.segment ? ` · segment ${c.client.segment}` : ''}</small></h1>
      <div class="columns">
        <div class="col-main">
          <section class="panel"><h2>Recent calls</h2>${c.recentCalls.length ? html`<table class="compact"><thead><tr><th>When</th><th>Dir.</th><th>From → to</th><th>Outcome</th><th>Talk</th><th>CSAT</th><th>Agent</th></tr></thead><tbody>
            ${c.recentCalls.map((k) => html`<tr><td>${dateTime(k.startedAt)}</td><td>${k.direction}</td><td>${k.caller ?? '?'} → ${k.callee ?? '?'}</td><td>${k.outcome ?? '–'}</td><td>${k.billsec == null ? '–' : duration(k.billsec * 1000)}</td><td>${k.csat ?? '–'}</td><td>${k.agentId ?? '–'}</td></tr>`)}
          </tbody></table>` : empty('No calls yet.')}</section>
          <section class="panel"><h2>Recordings</h2>${recordingsTable(c, this.ctx.principal)}</section>
          <section class="panel"><h2>Callbacks</h2>${c.callbacks.length ? html`<table class="compact"><thead><tr><th>Created</th><th>Phone</th><th>Reason</th><th>State</th><th>Attempts</th><th>Done</th></tr></thead><tbody>
            ${c.callbacks.map((b) => html`<tr><td>${dateTime(b.createdAt)}</td><td>${b.phone}</td><td>${b.reason}</td><td>${b.state}</td><td>${b.attempts}</td><td>${dateTime(b.doneAt)}</td></tr>`)}
          </tbody></table>` : empty('No callbacks.')}</section>
        </div>
        <aside class="col-side"><section class="panel"><h2>Card</h2>${clientCardPanel(c, this.ctx.principal, false)}</section></aside>
      </div>`
  }
}

function recordingsTable(c: ClientCard, p: Principal) {
  if (c.recordings.length === 0) return empty('No recordings.')
  const linked = can(p, 'recordings')
  return html`<table class="compact"><thead><tr><th>When</th><th>Length</th><th>Agent</th><th>CSAT</th><th></th></tr></thead><tbody>
    ${c.recordings.map((r) => html`<tr><td>${linked ? html`<a href=${recordingPath(r.id)}>${dateTime(r.createdAt)}</a>` : dateTime(r.createdAt)}</td><td>${duration(r.durationMs)}</td><td>${r.agentName ?? r.agentId ?? '–'}</td><td>${r.csat ?? '–'}</td>
      <td>${r.legalHold ? html`<span class="badge hold">hold</span>` : nothing}</td></tr>`)}
  </tbody></table>`
}

/** The card's facts (also beside the player and in the screen pop). */
export function clientCardPanel(c: ClientCard, _p: Principal, compact: boolean) {
  const attrs = c.client.attributes && typeof c.client.attributes === 'object' ? Object.entries(c.client.attributes as Record<string, unknown>) : []
  return html`<dl class="facts" data-testid="client-card">
    ${compact ? html`<dt>Client</dt><dd data-testid="card-name">${c.client.name}</dd>` : nothing}
    <dt>Kind / segment</dt><dd>${c.client.kind} / ${c.client.segment ?? '–'}</dd>
    <dt>INN</dt><dd>${c.client.inn ?? '–'}</dd>
    <dt>Region</dt><dd>${c.client.region ?? '–'}${c.client.tz ? ` (${c.client.tz})` : ''}</dd>
    <dt>Phones</dt><dd>${c.phones.join(', ') || '–'}</dd>
    <dt>Manager</dt><dd>${c.manager ? `${c.manager.name}${c.manager.extension ? ` · ext. ${c.manager.extension}` : ''}` : '–'}</dd>
    <dt>CSAT</dt><dd>${c.csat.average == null ? '–' : `${c.csat.average.toFixed(1)} (${c.csat.count} answer${c.csat.count === 1 ? '' : 's'})`}</dd>
    <dt>Calls / recordings</dt><dd>${c.stats.calls} / ${c.stats.recordings}</dd>
    ${c.callbacks.some((b) => b.state !== 'done') ? html`<dt>Open callbacks</dt><dd>${c.callbacks.filter((b) => b.state !== 'done').length}</dd>` : nothing}
    ${attrs.slice(0, compact ? 6 : 40).map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}
  </dl>`
}
