import { html, nothing } from 'lit'
import { dateTime, time } from '../format.ts'
import { clientPath } from '../router.ts'
import { openStream, type Stream, type StreamStatus } from '../sse.ts'
import type { IvrStep } from '../types.ts'
import { empty, type Ctx, type View } from '../view.ts'

export const SCREEN_POP_URL = '/api/screen-pop/stream'

interface CardCall { uuid: string; direction: string; did: string | null; startedAt: string; outcome: string | null; agentId: string | null; billsec: number | null; csat: number | null }
interface CardCallback { id: number; phone: string; reason: string; state: string; attempts: number; createdAt: string }
/** src/screen-pop/card.ts ScreenPopCard (issue 11) */
type PopCard = {
  unknown: false; source: 'db' | 'live'
  client: { id: string; name: string; segment: string | null; kind: string; inn: string | null; region: string | null; tz: string | null; attributes: Record<string, unknown> }
  phones: string[]; manager: { id: string; name: string; extension: string | null; mobile: string | null; groupId: string | null } | null
  recentCalls: CardCall[]; recordings: Array<{ id: string }>; openCallbacks: CardCallback[]
} | { unknown: true; phone: string | null; recentCalls: CardCall[]; openCallbacks: CardCallback[] }

interface Offer {
  call: { uuid?: string; caller?: string | null; did?: string | null; sourceTag?: string | null; queueId?: string | null; direction?: string; offeredAt?: string } | null
  card: PopCard | null
  cardError?: 'timeout' | 'unavailable'
  ivrPath: IvrStep[] | null
}

/** The agent's screen pop: kept open all day; an offered call shows who calls, their card and the IVR path they took. */
export class ScreenPopView implements View {
  title = 'Screen pop'
  private offer: Offer | null = null
  private phase: 'idle' | 'ringing' | 'talking' | 'ended' = 'idle'
  private phaseAt = ''
  private status: StreamStatus = 'connecting'
  private detail = ''
  private readonly stream: Stream

  constructor(private readonly ctx: Ctx) {
    const uuidOf = (o: Offer | null) => o?.call?.uuid
    const sameCall = (d: unknown) => {
      const id = (d as { call?: { uuid?: string; callUuid?: string }; callUuid?: string; uuid?: string } | null)
      const u = id?.call?.uuid ?? id?.call?.callUuid ?? id?.callUuid ?? id?.uuid
      return !u || !uuidOf(this.offer) || u === uuidOf(this.offer)
    }
    this.stream = openStream(SCREEN_POP_URL, {
      ready: () => { this.status = 'live'; this.ctx.update() },
      offer: (d) => { this.offer = d as Offer; this.set('ringing') },
      answered: (d) => { if (sameCall(d)) this.set('talking') },
      ended: (d) => { if (sameCall(d)) this.set('ended') },
    }, (s, detail) => { this.status = s; this.detail = detail ?? ''; this.ctx.update() })
  }

  private set(phase: ScreenPopView['phase']): void {
    this.phase = phase
    this.phaseAt = new Date().toISOString()
    if (phase === 'ringing' && document.hidden) document.title = `☎ ${this.offer?.call?.caller ?? 'Call'} · Switchboard`
    else document.title = 'Screen pop · Switchboard'
    this.ctx.update()
  }

  dispose(): void { this.stream.close() }

  render() {
    const o = this.offer
    return html`<h1>Screen pop <span class="status ${this.status}" data-testid="pop-status">${this.status === 'live' ? '● connected' : this.status}</span></h1>
      ${this.status === 'unavailable' ? html`<section class="state-page" data-testid="screen-pop-unavailable"><h2>Screen pop unavailable</h2>
        <p>This Switchboard has no screen-pop stream (<code>${this.detail}</code>). It comes with issue 11; keep this page open once it is deployed.</p></section>` : nothing}
      ${this.status === 'forbidden' || this.status === 'signed-out' ? html`<p class="error" role="alert">${this.detail}</p>` : nothing}
      ${!o ? (this.status === 'live' ? empty('Waiting for calls. Keep this page open: the caller\'s card appears here when a call rings.') : nothing) : html`
        <section class="panel pop ${this.phase}" data-testid="pop-card" aria-live="assertive">
          <h2>${this.phase === 'ringing' ? 'Incoming call' : this.phase === 'talking' ? 'On call' : 'Call ended'} <small>${time(this.phaseAt)}</small></h2>
          <p class="caller">${o.call?.caller ?? 'unknown number'} <span class="muted">via ${o.call?.did ?? '?'}${o.call?.sourceTag ? ` (${o.call.sourceTag})` : ''}${o.call?.queueId ? ` · queue ${o.call.queueId}` : ''}</span></p>
          <div class="columns">
            <div class="col-main">${this.card(o)}</div>
            <aside class="col-side"><h3>IVR path</h3>${o.ivrPath?.length ? html`<ol class="ivr">${o.ivrPath.map((s) => html`<li>${s.label ?? s.menuId ?? '?'}${s.digit ? html` <kbd>${s.digit}</kbd>` : nothing}</li>`)}</ol>` : empty('No IVR.')}</aside>
          </div>
        </section>`}`
  }

  private card(o: Offer) {
    const c = o.card
    if (!c) return empty(o.cardError === 'timeout' ? 'The client card did not load in time; search the number in the CRM.' : 'No client card for this call.')
    const history = html`
      ${c.recentCalls.length ? html`<h3>Recent calls</h3><ul class="plain">${c.recentCalls.slice(0, 5).map((k) => html`<li>${dateTime(k.startedAt)} · ${k.direction} · ${k.outcome ?? '–'}${k.csat ? ` · CSAT ${k.csat}` : ''}</li>`)}</ul>` : nothing}
      ${c.openCallbacks.length ? html`<h3>Open callbacks</h3><ul class="plain">${c.openCallbacks.map((b) => html`<li>${dateTime(b.createdAt)} · ${b.reason} (${b.attempts} attempt${b.attempts === 1 ? '' : 's'})</li>`)}</ul>` : nothing}`
    if (c.unknown) return html`<h3 data-testid="pop-client">Unknown caller ${c.phone ?? ''}</h3><p class="muted">No client has this number in the directory.</p>${history}`
    const attrs = Object.entries(c.client.attributes ?? {})
    return html`<h3 data-testid="pop-client"><a href=${clientPath(c.client.id)} target="_blank" rel="noopener">${c.client.name}</a>${c.source === 'live' ? html` <span class="badge">live CRM</span>` : nothing}</h3>
      <dl class="facts">
        <dt>Kind / segment</dt><dd>${c.client.kind} / ${c.client.segment ?? '–'}</dd>
        <dt>INN</dt><dd>${c.client.inn ?? '–'}</dd>
        <dt>Region</dt><dd>${c.client.region ?? '–'}</dd>
        <dt>Manager</dt><dd>${c.manager ? `${c.manager.name}${c.manager.extension ? ` · ext. ${c.manager.extension}` : ''}` : '–'}</dd>
        <dt>Phones</dt><dd>${c.phones.join(', ') || '–'}</dd>
        <dt>Recordings</dt><dd>${c.recordings.length}</dd>
        ${attrs.slice(0, 20).map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}
      </dl>${history}`
  }
}
