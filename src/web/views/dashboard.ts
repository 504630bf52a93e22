import { html, nothing } from 'lit'
import { get, query } from '../api.ts'
import { barChart, lineChart } from '../charts.ts'
import { duration, isoToLocalInput, localInputToIso, num } from '../format.ts'
import { rowsOfReport, type ReportRow } from '../stats-report.ts'
import { empty, failed, load, loading, type Ctx, type Loadable, type View } from '../view.ts'

type GroupBy = 'hour' | 'day' | 'agent' | 'queue'
const GROUPS: GroupBy[] = ['hour', 'day', 'agent', 'queue']

/** Supervisor dashboard: GET /api/stats/report?from&to&groupBy&format=json drawn as bars, a line and a table. */
export class DashboardView implements View {
  title = 'Dashboard'
  private report: Loadable<ReportRow[]> = { state: 'loading' }
  /** the period asked for; none = the server's "today" in the configured time zone */
  private from: string | undefined
  private to: string | undefined
  private readonly groupBy: GroupBy
  private readonly abort = new AbortController()

  constructor(private readonly ctx: Ctx) {
    const q = ctx.route.query
    this.from = q.get('from') ?? undefined
    this.to = q.get('to') ?? undefined
    const g = q.get('groupBy') as GroupBy | null
    this.groupBy = g && GROUPS.includes(g) ? g : 'hour'
    void this.load()
  }

  dispose(): void { this.abort.abort() }

  private async load(): Promise<void> {
    this.report = await load(get<{ from?: string; to?: string }>(`/api/stats/report${query({ from: this.from, to: this.to, groupBy: this.groupBy, format: 'json' })}`, this.abort.signal).then((body) => {
      // the period the server settled on (its time zone's "today" when none was asked for)
      if (typeof body?.from === 'string') this.from = body.from
      if (typeof body?.to === 'string') this.to = body.to
      return rowsOfReport(body)
    }))
    this.ctx.update()
  }

  private submit(e: Event): void {
    e.preventDefault()
    const d = new FormData(e.target as HTMLFormElement)
    this.ctx.navigate(`/console/dashboard${query({ from: localInputToIso(String(d.get('from'))), to: localInputToIso(String(d.get('to'))), groupBy: String(d.get('groupBy')) })}`)
  }

  render() {
    return html`<h1>Dashboard</h1>
      <form class="filters" @submit=${(e: Event) => this.submit(e)}><div class="row">
        <label>From<input name="from" type="datetime-local" .value=${isoToLocalInput(this.from)} required></label>
        <label>To<input name="to" type="datetime-local" .value=${isoToLocalInput(this.to)} required></label>
        <label>Group by<select name="groupBy">${GROUPS.map((g) => html`<option value=${g} ?selected=${g === this.groupBy}>${g}</option>`)}</select></label>
        <div class="actions"><button type="submit">Show</button></div>
      </div></form>
      ${this.body()}`
  }

  private body() {
    const r = this.report
    if (r.state === 'loading') return loading('Loading the report')
    if (r.state === 'error') {
      return r.status === 404
        ? html`<section class="state-page" data-testid="stats-unavailable"><h2>Statistics unavailable</h2><p>This Switchboard has no report API (<code>GET /api/stats/report</code> answered 404). It comes with the statistics module (issue 11).</p></section>`
        : failed(r.error)
    }
    const rows = r.value
    if (rows.length === 0) return empty('No calls in this period.')
    const labels = rows.map((x) => x.label)
    const hasSl = rows.some((x) => x.serviceLevelPct != null)
    return html`<div class="columns even" data-testid="charts">
        ${barChart('Calls', labels, [
          { name: 'offered', colour: '#7a8fa6', values: rows.map((x) => x.offered) },
          { name: 'answered', colour: '#3f7fbf', values: rows.map((x) => x.answered) },
          { name: 'abandoned', colour: '#cf4a3a', values: rows.map((x) => x.abandoned) },
        ])}
        ${hasSl ? lineChart('Service level %', labels, { name: 'SL %', colour: '#2e8b57', values: rows.map((x) => x.serviceLevelPct) }, 100) : nothing}
      </div>
      <table class="compact" data-testid="report-table"><thead><tr><th>${this.groupBy}</th><th class="num">Offered</th><th class="num">Answered</th><th class="num">Abandoned</th><th class="num">SL %</th><th class="num">ASA</th><th class="num">AHT</th><th class="num">CSAT</th></tr></thead><tbody>
        ${rows.map((x) => html`<tr><td>${x.label}</td><td class="num">${num(x.offered)}</td><td class="num">${num(x.answered)}</td><td class="num">${num(x.abandoned)}</td>
          <td class="num">${num(x.serviceLevelPct)}</td><td class="num">${x.asaSec == null ? '–' : duration(x.asaSec * 1000)}</td><td class="num">${x.ahtSec == null ? '–' : duration(x.ahtSec * 1000)}</td><td class="num">${num(x.csatAvg, 1)}</td></tr>`)}
      </tbody></table>`
  }
}
