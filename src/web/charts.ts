/** Small SVG charts for the dashboard (no chart library: a few bars and a line are enough). */
import { html, svg, nothing } from 'lit'

export interface Series { name: string; colour: string; values: Array<number | null> }

const W = 640
const H = 200
const PAD = { l: 36, r: 8, t: 10, b: 28 }

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v) ?? v
}

/** Grouped bars: one group per label, one bar per series. */
export function barChart(title: string, labels: string[], series: Series[]) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.map((v) => v ?? 0))))
  const iw = W - PAD.l - PAD.r
  const ih = H - PAD.t - PAD.b
  const gw = iw / Math.max(1, labels.length)
  const bw = Math.max(1, (gw * 0.8) / Math.max(1, series.length))
  const y = (v: number) => PAD.t + ih - (v / max) * ih
  const every = Math.ceil(labels.length / 12)
  return html`<figure class="chart"><figcaption>${title}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      ${[0, 0.5, 1].map((f) => svg`<line class="grid" x1=${PAD.l} x2=${W - PAD.r} y1=${y(max * f)} y2=${y(max * f)}></line><text class="axis" x=${PAD.l - 4} y=${y(max * f) + 4} text-anchor="end">${Math.round(max * f)}</text>`)}
      ${labels.map((l, i) => svg`
        ${series.map((s, j) => {
          const v = s.values[i] ?? 0
          return svg`<rect x=${PAD.l + i * gw + gw * 0.1 + j * bw} y=${y(v)} width=${bw} height=${Math.max(0, PAD.t + ih - y(v))} fill=${s.colour}><title>${l} · ${s.name}: ${v}</title></rect>`
        })}
        ${i % every === 0 ? svg`<text class="axis" x=${PAD.l + i * gw + gw / 2} y=${H - 10} text-anchor="middle">${l}</text>` : nothing}`)}
    </svg>
    ${legend(series)}</figure>`
}

/** A line over the labels (e.g. service level %), with a fixed max (100 for percentages). */
export function lineChart(title: string, labels: string[], s: Series, fixedMax?: number) {
  const vals = s.values
  const max = fixedMax ?? niceMax(Math.max(0, ...vals.map((v) => v ?? 0)))
  const iw = W - PAD.l - PAD.r
  const ih = H - PAD.t - PAD.b
  const x = (i: number) => PAD.l + (labels.length <= 1 ? iw / 2 : (i / (labels.length - 1)) * iw)
  const y = (v: number) => PAD.t + ih - (Math.min(v, max) / max) * ih
  const pts = vals.map((v, i) => (v == null ? null : `${x(i)},${y(v)}`)).filter((p): p is string => p !== null)
  const every = Math.ceil(labels.length / 12)
  return html`<figure class="chart"><figcaption>${title}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      ${[0, 0.5, 1].map((f) => svg`<line class="grid" x1=${PAD.l} x2=${W - PAD.r} y1=${y(max * f)} y2=${y(max * f)}></line><text class="axis" x=${PAD.l - 4} y=${y(max * f) + 4} text-anchor="end">${Math.round(max * f)}</text>`)}
      <polyline points=${pts.join(' ')} fill="none" stroke=${s.colour} stroke-width="2"></polyline>
      ${vals.map((v, i) => v == null ? nothing : svg`<circle cx=${x(i)} cy=${y(v)} r="3" fill=${s.colour}><title>${labels[i]}: ${v}</title></circle>`)}
      ${labels.map((l, i) => i % every === 0 ? svg`<text class="axis" x=${x(i)} y=${H - 10} text-anchor="middle">${l}</text>` : nothing)}
    </svg></figure>`
}

function legend(series: Series[]) {
  return html`<p class="legend">${series.map((s) => html`<span class="sw" style="background:${s.colour}"></span> ${s.name} `)}</p>`
}
