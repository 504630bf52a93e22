import { html, nothing, render, svg } from 'lit'
import WaveSurfer from 'wavesurfer.js'
import { getToken } from '../api.ts'
import { clock, duration } from '../format.ts'
import { insideSilence, peaksFromMetrics, peaksOfSamples, silencesOf, skipSilenceTarget, stepSpeed, SPEEDS } from '../playback.ts'
import type { RecordingDetail, Span } from '../types.ts'

/** Real waveforms are decoded in the browser up to this size; larger files keep the talk-span outline. */
const MAX_DECODE_BYTES = 40 * 1024 * 1024
const CHANNEL_COLOURS = [
  { waveColor: '#3f7fbf', progressColor: '#1d4f80' },
  { waveColor: '#cf7a3a', progressColor: '#8a4614' },
]

/**
 * The recording player: an <audio> element streaming /api/recordings/:id/audio (the browser
 * asks with HTTP Range as it plays and seeks; the session cookie authorises it), drawn by
 * wavesurfer.js with both channels (left = caller, right = agent). The waveform appears at
 * once from the talk spans the pipeline measured, then from the real samples once a
 * separate no-store fetch is decoded — playback never waits for that.
 */
export class Player {
  readonly audio: HTMLAudioElement
  private ws: WaveSurfer | null = null
  private readonly silences: Span[]
  private readonly durationMs: number
  private autoSkip = false
  private waveform: 'outline' | 'decoded' | 'outline-only' = 'outline'
  private error: string | null = null
  private lastSkip: string | null = null
  private readonly abort = new AbortController()
  private destroyed = false

  constructor(private readonly root: HTMLElement, private readonly rec: RecordingDetail, private readonly pausedSpans: Span[]) {
    this.durationMs = rec.durationMs ?? rec.metrics?.durationMs ?? 0
    this.silences = silencesOf(rec.metrics)
    const audio = document.createElement('audio')
    audio.preload = 'metadata'
    audio.src = new URL(`/api/recordings/${encodeURIComponent(rec.id)}/audio`, location.href).href
    audio.setAttribute('data-testid', 'audio')
    this.audio = audio
    for (const ev of ['play', 'pause', 'ratechange', 'seeked', 'loadedmetadata', 'ended']) audio.addEventListener(ev, () => this.draw())
    audio.addEventListener('timeupdate', () => this.onTime())
    audio.addEventListener('error', () => {
      const code = audio.error?.code
      this.error = code === 4 ? 'This browser cannot play this recording\'s format, or the audio is not available.' : `Playback failed (media error ${code ?? '?'}). Check that you are still signed in.`
      this.draw()
    })
    this.draw()
    root.querySelector('.audio-slot')!.append(audio)
    this.mountWaveform()
    void this.decodeWaveform()
  }

  private get durationSec(): number {
    return Number.isFinite(this.audio.duration) && this.audio.duration > 0 ? this.audio.duration : this.durationMs / 1000
  }

  private mountWaveform(): void {
    const container = this.root.querySelector<HTMLElement>('.waveform')!
    const channels = Math.max(1, Math.min(2, this.rec.channels ?? 2))
    this.ws = WaveSurfer.create({
      container,
      media: this.audio,
      height: 56,
      splitChannels: CHANNEL_COLOURS.slice(0, channels),
      normalize: true,
      cursorColor: '#222',
      cursorWidth: 2,
      dragToSeek: true,
      peaks: peaksFromMetrics(this.rec.metrics, Math.max(1, this.durationMs), 1000, channels),
      duration: Math.max(0.1, this.durationMs / 1000),
    })
  }

  private async decodeWaveform(): Promise<void> {
    if ((this.rec.bytes ?? 0) > MAX_DECODE_BYTES) { this.waveform = 'outline-only'; return this.draw() }
    try {
      const headers: Record<string, string> = token() ? { authorization: `Bearer ${token()}` } : {}
      // no-store: this full read must not seed the HTTP cache the <audio> element's Range requests go through
      const res = await fetch(this.audio.src, { cache: 'no-store', credentials: 'same-origin', headers, signal: this.abort.signal })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const data = await res.arrayBuffer()
      const ctx = new OfflineAudioContext(1, 1, 8000) // decode resampled to 8 kHz: enough for a waveform, 6× less memory
      const buf = await ctx.decodeAudioData(data)
      if (this.destroyed || !this.ws) return
      const channels = Array.from({ length: Math.min(2, buf.numberOfChannels) }, (_, i) => buf.getChannelData(i))
      await this.ws.load(this.audio.src, peaksOfSamples(channels, 2000), buf.duration)
      this.waveform = 'decoded'
    } catch (err) {
      if ((err as Error).name === 'AbortError' || this.destroyed) return
      this.waveform = 'outline-only' // the talk-span outline stays; playback does not depend on this
    }
    this.draw()
  }

  private onTime(): void {
    if (this.autoSkip && !this.audio.paused) {
      const end = insideSilence(this.silences, this.audio.currentTime * 1000)
      if (end !== null) this.seek(end / 1000, `skipped silence to ${clock(end / 1000)}`)
    }
    this.draw()
  }

  togglePlay(): void {
    if (this.audio.paused) this.audio.play().catch((err: Error) => { this.error = `Cannot play: ${err.message}`; this.draw() })
    else this.audio.pause()
  }

  seek(sec: number, note?: string): void {
    const d = this.durationSec
    this.audio.currentTime = Math.max(0, d > 0 ? Math.min(d - 0.05, sec) : sec)
    this.lastSkip = note ?? null
    this.draw()
  }

  seekBy(deltaSec: number): void { this.seek(this.audio.currentTime + deltaSec) }

  setSpeed(s: number): void {
    this.audio.playbackRate = s
    this.draw()
  }

  speedStep(dir: 1 | -1): void { this.setSpeed(stepSpeed(this.audio.playbackRate, dir)) }

  skipSilence(): void {
    const target = skipSilenceTarget(this.silences, this.audio.currentTime * 1000)
    if (target === null) { this.lastSkip = 'no silence ahead'; return this.draw() }
    this.seek(target / 1000, `skipped silence to ${clock(target / 1000)}`)
  }

  /** the player's keys; true when handled */
  onKey(e: KeyboardEvent): boolean {
    switch (e.key) {
      case ' ': this.togglePlay(); return true
      case 'ArrowLeft': this.seekBy(-5); return true
      case 'ArrowRight': this.seekBy(5); return true
      case '[': this.speedStep(-1); return true
      case ']': this.speedStep(1); return true
      case 's': case 'S': this.skipSilence(); return true
      default: return false
    }
  }

  destroy(): void {
    this.destroyed = true
    this.abort.abort()
    this.audio.pause()
    this.ws?.destroy()
    this.ws = null
    this.audio.removeAttribute('src')
    this.audio.load() // closes the media connection
    this.audio.remove()
  }

  private timeline() {
    const total = Math.max(1, this.durationSec * 1000)
    const x = (ms: number) => (ms / total) * 1000
    const rows = (this.rec.metrics?.channels ?? []).slice(0, 2)
    const playhead = x(this.audio.currentTime * 1000)
    return html`<svg class="timeline" viewBox="0 0 1000 ${18 + rows.length * 12}" preserveAspectRatio="none" role="img"
        aria-label="Talk of each channel, silences (grey) and masked spans (striped); click to seek"
        @click=${(e: MouseEvent) => { const r = (e.currentTarget as SVGElement).getBoundingClientRect(); this.seek(((e.clientX - r.left) / r.width) * total / 1000) }}>
      ${this.silences.map((s) => svg`<rect class="silence" x=${x(s.startMs)} y="0" width=${Math.max(1, x(s.endMs) - x(s.startMs))} height="100%"><title>silence ${duration(s.endMs - s.startMs)}</title></rect>`)}
      ${this.pausedSpans.map((s) => svg`<rect class="masked" x=${x(s.startMs)} y="0" width=${Math.max(1, x(s.endMs) - x(s.startMs))} height="100%"><title>recording paused (masked)</title></rect>`)}
      ${rows.map((c, i) => (c.talk ?? []).map((s) => svg`<rect class=${`talk ch${i}`} x=${x(s.startMs)} y=${4 + i * 12} width=${Math.max(1, x(s.endMs) - x(s.startMs))} height="9"></rect>`))}
      <line class="playhead" x1=${playhead} x2=${playhead} y1="0" y2="100%"></line>
    </svg>`
  }

  private draw(): void {
    if (this.destroyed) return
    const a = this.audio
    const playing = !a.paused && !a.ended
    render(html`
      <div class="player-controls" role="group" aria-label="Player">
        <button @click=${() => this.togglePlay()} data-testid="play" aria-keyshortcuts="Space" title="Play / pause (Space)">${playing ? 'Pause' : 'Play'}</button>
        <button class="secondary" @click=${() => this.seekBy(-5)} aria-keyshortcuts="ArrowLeft" title="Back 5 s (←)">−5 s</button>
        <button class="secondary" @click=${() => this.seekBy(5)} aria-keyshortcuts="ArrowRight" title="Forward 5 s (→)">+5 s</button>
        <button class="secondary" @click=${() => this.skipSilence()} data-testid="skip-silence" aria-keyshortcuts="s" title="Jump over the next silence (s)" ?disabled=${this.silences.length === 0}>Skip silence</button>
        <label class="inline">Speed <select data-testid="speed" @change=${(e: Event) => this.setSpeed(Number((e.target as HTMLSelectElement).value))}>
          ${SPEEDS.map((s) => html`<option value=${s} ?selected=${Math.abs(a.playbackRate - s) < 1e-6}>${s}×</option>`)}
        </select></label>
        <label class="inline"><input type="checkbox" .checked=${this.autoSkip} @change=${(e: Event) => { this.autoSkip = (e.target as HTMLInputElement).checked; this.draw() }}> auto-skip silences</label>
        <span class="clock" data-testid="clock" aria-live="off">${clock(a.currentTime)} / ${clock(this.durationSec)}</span>
      </div>
      <div class="waveform" data-testid="waveform"></div>
      <div class="legend"><span class="sw ch0"></span> caller (left) <span class="sw ch1"></span> agent (right)
        <span class="muted">· waveform ${this.waveform === 'decoded' ? 'from the audio' : this.waveform === 'outline' ? 'outline (decoding…)' : 'outline from talk spans'}</span>
        ${this.lastSkip ? html`<span class="muted" data-testid="skip-note"> · ${this.lastSkip}</span>` : nothing}</div>
      ${this.timeline()}
      <p class="muted small keys">Keys: <kbd>Space</kbd> play/pause · <kbd>←</kbd>/<kbd>→</kbd> 5 s · <kbd>[</kbd>/<kbd>]</kbd> speed · <kbd>s</kbd> skip silence</p>
      ${this.error ? html`<p class="error" role="alert" data-testid="player-error">${this.error}</p>` : nothing}
      <div class="audio-slot"></div>
    `, this.root)
  }
}

const token = () => getToken()
