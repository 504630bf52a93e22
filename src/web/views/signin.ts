import { html, nothing } from 'lit'
import { ApiError, request } from '../api.ts'
import type { Principal } from '../roles.ts'
import type { Route } from '../router.ts'
import type { View } from '../view.ts'

/** Sign in with an API token: POST /api/session checks it and sets the HttpOnly cookie. */
export class SignInView implements View {
  title = 'Sign in'
  private error: string | null = null
  private busy = false

  constructor(private readonly route: Route, private readonly update: () => void, private readonly signedIn: (p: Principal, token: string) => void) {}

  private async submit(e: Event): Promise<void> {
    e.preventDefault()
    const form = e.target as HTMLFormElement
    const token = (form.elements.namedItem('token') as HTMLInputElement).value.trim()
    this.busy = true
    this.error = null
    this.update()
    try {
      const p = await request<Principal>('POST', '/api/session', { body: { token }, quiet401: true, anonymous: true })
      this.signedIn(p, token)
    } catch (err) {
      this.error = err instanceof ApiError
        ? err.status === 401 ? 'Unknown, expired or revoked token.' : err.status === 400 ? 'That does not look like a Switchboard token.' : err.friendly
        : String(err)
      this.busy = false
      this.update()
    }
  }

  render() {
    const next = this.route.query.get('next')
    return html`<section class="signin">
      <h1>Switchboard console</h1>
      <p class="muted">Recordings, QA, legal holds and live statistics. Sign in with your API token${next ? html` to open <code>${next}</code>` : nothing}.</p>
      <form @submit=${(e: Event) => void this.submit(e)} data-testid="signin-form">
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required minlength="10" maxlength="200" autofocus placeholder="sb_…">
        ${this.error ? html`<p class="error" role="alert" data-testid="signin-error">${this.error}</p>` : nothing}
        <button type="submit" ?disabled=${this.busy}>${this.busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      <p class="muted small">The token stays in this tab; a cookie lets the audio player and live views stream. Sign out clears both.</p>
    </section>`
  }
}
