import { html, nothing } from 'lit'
import { duration, num, time } from '../format.ts'
import { openStream, type Stream, type StreamStatus } from '../sse.ts'
import type { LiveSnapshot } from '../types.ts'
import { empty, type Ctx, type View } from '../view.ts'

export const LIVE_URL = '/api/stats/live'

/** Supervisor's live view: queues, agents and today's figures from the `snapshot` events of GET /api/stats/live. */
export class LiveView implements View {
  title = 'Live'
  private snap: LiveSnapshot | null = null
  private receivedAt = 0
  private status: StreamStatus = 'connecting'
  private detail = ''
  private readonly stream: Stream
  private readonly tick: number

  constructor(private readonly ctx: Ctx) {
    this.stream = openStream(LIVE_URL, {
      snapshot: (d) => { this.snap = d as LiveSnapshot; this.receivedAt = Date.now(); this.ctx.update() },
    }, (s, detail) => { this.status = s; this.detail = detail ?? ''; this.ctx.update() })
    // waits and "since" keep counting between snapshots
    this.tick = window.setInterval(() => { if (this.snap) this.ctx.update() }, 1000)
  }

  dispose(): void {
    this.stream.close()
    clearInterval(this.tick)
  }

  render() {
    return html`<h1>Live <span class="status ${this.status}" data-testid="live-status">${statusText(this.status)}</span></h1>
      ${this.status === 'unavailable' ? html`<section class="state-page" data-testid="stats-unavailable"><h2>Statistics unavailable</h2>
        <p>This Switchboard does not serve live statistics (<code>${this.detail}</code>). They come with the statistics module (issue 11); the recordings, QA and legal parts of the console work without it.</p></section>` : nothing}
      ${this.status === 'forbidden' || this.status === 'signed-out' ? html`<p class="error" role="alert">${this.detail}</p>` : nothing}
      ${this.snap ? this.body(this.snap) : this.status === 'unavailable' ? nothing : html`<p class="muted loading">Waiting for the first snapshot…</p>`}`
  }

  private body(s: LiveSnapshot) {
    const age = (Date.now() - this.receivedAt) / 1000
    const t = s.today
    const since = (iso: string | null) => (iso ? duration(Date.now() - new Date(iso).getTime()) : '–')
    return html`
      <dl class="tiles today" data-testid="today">
        <div><dt>Offered</dt><dd>${t.offered}</dd></div>
        <div><dt>Answered</dt><dd>${t.answered}</dd></div>
        <div><dt>Abandoned</dt><dd>${t.abandoned}</dd></div>
        <div><dt>Service level</dt><dd>${t.serviceLevelPct == null ? '–' : `${num(t.serviceLevelPct)}%`}</dd></div>
        <div><dt>ASA</dt><dd>${t.asaSec == null ? '–' : duration(t.asaSec * 1000)}</dd></div>
        <div><dt>AHT</dt><dd>${t.ahtSec == null ? '–' : duration(t.ahtSec * 1000)}</dd></div>
        <div><dt>CSAT</dt><dd>${num(t.csatAvg, 1)}</dd></div>
      </dl>
      <div class="columns even">
        <section class="panel"><h2>Queues</h2>${s.queues.length === 0 ? empty('No queues configured.') : html`<table class="compact" data-testid="queues">
          <thead><tr><th>Queue</th><th class="num">Waiting</th><th class="num">Longest wait</th><th class="num">Agents ready</th></tr></thead><tbody>
          ${s.queues.map((q) => html`<tr class=${q.waiting > 0 && q.agentsReady === 0 ? 'alert' : ''}><td>${q.name}</td><td class="num">${q.waiting}</td>
            <td class="num">${q.waiting > 0 ? duration((q.longestWaitSec + age) * 1000) : '–'}</td><td class="num">${q.agentsReady}</td></tr>`)}
        </tbody></table>`}</section>
        <section class="panel"><h2>Agents</h2>${s.agents.length === 0 ? empty('No agents signed in.') : html`<table class="compact" data-testid="agents">
          <thead><tr><th>Agent</th><th>State</th><th class="num">For</th><th>Reason</th></tr></thead><tbody>
          ${s.agents.map((a) => html`<tr><td>${a.name}</td><td><span class="badge state-${a.state}">${a.state.replace('_', ' ')}</span></td><td class="num">${since(a.since)}</td><td>${a.reason ?? ''}</td></tr>`)}
        </tbody></table>`}</section>
      </div>
      <p class="muted small">Snapshot of ${time(s.at)}; waits count on between snapshots.</p>`
  }
}

function statusText(s: StreamStatus): string {
  return { connecting: 'connecting…', live: '● live', reconnecting: 'reconnecting…', unavailable: 'unavailable', forbidden: 'not allowed', 'signed-out': 'signed out' }[s]
}
