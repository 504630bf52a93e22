/**
 * The Switchboard web console: one page, lit-html templates, no framework state library.
 * The shell signs in, keeps the principal, maps the URL to a view and re-renders on demand.
 */
import './styles.css'
import { html, nothing, render } from 'lit'
import { ApiError, getToken, request, setToken, setTokenPrompt, setUnauthorizedHandler } from './api.ts'
import { can, homeOf, type Capability, type Principal } from './roles.ts'
import { matchRoute, type Route } from './router.ts'
import type { Ctx, View } from './view.ts'
import { SignInView } from './views/signin.ts'
import { RecordingsView } from './views/recordings.ts'
import { RecordingView } from './views/recording.ts'
import { ClientView } from './views/client.ts'
import { LiveView } from './views/live.ts'
import { DashboardView } from './views/dashboard.ts'
import { ScreenPopView } from './views/screen-pop.ts'

const root = document.getElementById('app')!
root.replaceChildren() // the static "Loading…" placeholder of index.html

let principal: Principal | null = null
let view: View | null = null
let viewKey = ''
let bootError: string | null = null
let toast: { text: string; kind: 'ok' | 'error'; timer: number } | null = null
let tokenDialog: { resolve: (t: string | null) => void; error: string | null; busy: boolean } | null = null

const NEEDS: Partial<Record<Route['name'], Capability>> = {
  recordings: 'recordings', recording: 'recordings', client: 'clientCard', clientByPhone: 'clientCard',
  live: 'liveView', dashboard: 'dashboard', screenPop: 'screenPop',
}

function navigate(path: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) history.replaceState(null, '', path)
  else history.pushState(null, '', path)
  route()
}

function notify(text: string, kind: 'ok' | 'error' = 'ok'): void {
  if (toast) clearTimeout(toast.timer)
  toast = { text, kind, timer: window.setTimeout(() => { toast = null; update() }, kind === 'error' ? 8000 : 3000) }
  update()
}

function ctxFor(r: Route): Ctx {
  return { principal: principal!, route: r, update, navigate, notify }
}

/** Map the URL to a view (a new one when the path or query changed). */
function route(): void {
  const r = matchRoute(location.pathname, location.search)
  if (!principal && r.name !== 'signin') {
    const next = location.pathname + location.search
    history.replaceState(null, '', `/console/signin${next && next !== '/console/' ? `?next=${encodeURIComponent(next)}` : ''}`)
    return route()
  }
  if (principal && (r.name === 'home' || r.name === 'signin')) {
    history.replaceState(null, '', r.name === 'signin' && r.query.get('next')?.startsWith('/console/') ? r.query.get('next')! : homeOf(principal))
    return route()
  }
  const key = location.pathname + location.search
  if (key === viewKey && view) return update()
  view?.dispose?.()
  viewKey = key
  view = makeView(r)
  document.title = `${view.title} · Switchboard`
  update()
}

function makeView(r: Route): View {
  if (r.name === 'signin') return new SignInView(r, update, signedIn)
  const ctx = ctxFor(r)
  const need = NEEDS[r.name]
  if (need && !can(principal, need)) return forbiddenView(r)
  switch (r.name) {
    case 'recordings': return new RecordingsView(ctx)
    case 'recording': return new RecordingView(ctx, r.params.id)
    case 'client': return new ClientView(ctx, { id: r.params.id })
    case 'clientByPhone': return new ClientView(ctx, { phone: r.params.phone })
    case 'live': return new LiveView(ctx)
    case 'dashboard': return new DashboardView(ctx)
    case 'screenPop': return new ScreenPopView(ctx)
    default: return notFoundView(r)
  }
}

function forbiddenView(r: Route): View {
  return {
    title: 'Not available',
    render: () => html`<section class="state-page" data-testid="forbidden"><h1>Not available for your role</h1>
      <p>${principal?.name} (${principal?.role}) may not open <code>${r.path}</code>. Ask an administrator for a token with the right role.</p>
      <p><a href=${homeOf(principal!)}>Go to your start page</a></p></section>`,
  }
}

function notFoundView(r: Route): View {
  return {
    title: 'Not found',
    render: () => html`<section class="state-page"><h1>No such page</h1><p><code>${r.path}</code> is not a page of the console.</p>
      <p><a href=${homeOf(principal!)}>Go to your start page</a></p></section>`,
  }
}

function signedIn(p: Principal, token: string): void {
  principal = p
  setToken(token)
  route()
}

async function signOut(): Promise<void> {
  view?.dispose?.()
  view = null
  viewKey = ''
  try { await request('DELETE', '/api/session', { quiet401: true, anonymous: true }) } catch { /* the cookie is cleared on the next sign-in anyway */ }
  setToken(null)
  principal = null
  history.pushState(null, '', '/console/signin')
  route()
}

/** A tab opened from a deep link reads with the cookie; the first change asks for the token once. */
function askToken(): Promise<string | null> {
  return new Promise((resolve) => {
    tokenDialog = { resolve, error: null, busy: false }
    update()
    requestAnimationFrame(() => (document.getElementById('token-dialog-input') as HTMLInputElement | null)?.focus())
  })
}

async function submitTokenDialog(e: Event): Promise<void> {
  e.preventDefault()
  if (!tokenDialog) return
  const input = (e.target as HTMLFormElement).elements.namedItem('token') as HTMLInputElement
  tokenDialog.busy = true
  update()
  try {
    const p = await request<Principal>('POST', '/api/session', { body: { token: input.value.trim() }, quiet401: true, anonymous: true })
    if (principal && p.userId !== principal.userId) throw new Error(`that token belongs to ${p.name}, not ${principal.name}`)
    setToken(input.value.trim())
    const d = tokenDialog
    tokenDialog = null
    d.resolve(input.value.trim())
  } catch (err) {
    if (tokenDialog) {
      tokenDialog.error = err instanceof ApiError ? (err.status === 401 ? 'Unknown, expired or revoked token.' : err.friendly) : (err as Error).message
      tokenDialog.busy = false
    }
  }
  update()
}

function cancelTokenDialog(): void {
  const d = tokenDialog
  tokenDialog = null
  d?.resolve(null)
  update()
}

function nav() {
  if (!principal) return nothing
  const here = location.pathname
  const link = (href: string, label: string, cap: Capability) => can(principal, cap)
    ? html`<a href=${href} class=${here.startsWith(href) ? 'active' : ''} aria-current=${here.startsWith(href) ? 'page' : 'false'}>${label}</a>` : nothing
  return html`<header class="topbar">
    <a class="brand" href="/console/">Switchboard</a>
    <nav aria-label="Main">
      ${link('/console/recordings', 'Recordings', 'recordings')}
      ${link('/console/live', 'Live', 'liveView')}
      ${link('/console/dashboard', 'Dashboard', 'dashboard')}
      ${link('/console/screen-pop', 'Screen pop', 'screenPop')}
    </nav>
    <div class="who"><span data-testid="principal">${principal.name}</span> <span class="badge role-${principal.role}" data-testid="role">${principal.role}</span>
      <button class="link" @click=${() => void signOut()} data-testid="sign-out">Sign out</button></div>
  </header>`
}

function update(): void {
  render(html`
    ${nav()}
    <main id="main" class=${view ? `view-${viewKey.split('?')[0].split('/')[2] || 'home'}` : ''}>
      ${bootError ? html`<p class="error" role="alert">${bootError}</p>` : nothing}
      ${view ? view.render() : html`<p class="muted">Loading…</p>`}
    </main>
    ${toast ? html`<div class="toast ${toast.kind}" role="status" data-testid="toast">${toast.text}</div>` : nothing}
    ${tokenDialog ? html`<div class="modal-backdrop"><form class="modal" role="dialog" aria-modal="true" aria-labelledby="token-dialog-title" @submit=${(e: Event) => void submitTokenDialog(e)}>
      <h2 id="token-dialog-title">Confirm with your token</h2>
      <p>This tab was opened from a link and can only read. Changes need your API token once.</p>
      <label>Token <input id="token-dialog-input" name="token" type="password" autocomplete="off" required minlength="10" maxlength="200"></label>
      ${tokenDialog.error ? html`<p class="error" role="alert">${tokenDialog.error}</p>` : nothing}
      <div class="actions"><button type="submit" ?disabled=${tokenDialog.busy}>Continue</button><button type="button" class="secondary" @click=${cancelTokenDialog}>Cancel</button></div>
    </form></div>` : nothing}
  `, root)
  view?.updated?.()
}

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
  const a = (e.target as Element | null)?.closest?.('a')
  if (!a || a.target || a.hasAttribute('download')) return
  const href = a.getAttribute('href')
  if (!href?.startsWith('/console/')) return
  e.preventDefault()
  if (href !== location.pathname + location.search) navigate(href)
})

document.addEventListener('keydown', (e) => {
  if (tokenDialog) {
    if (e.key === 'Escape') cancelTokenDialog()
    return
  }
  const t = e.target as HTMLElement | null
  if (t && (t.closest('input, textarea, select, [contenteditable="true"]') || (e.key === ' ' && t.closest('button, a')))) return
  if (e.metaKey || e.ctrlKey || e.altKey) return
  if (view?.onKey?.(e)) e.preventDefault()
})

window.addEventListener('popstate', route)

async function boot(): Promise<void> {
  setTokenPrompt(askToken)
  setUnauthorizedHandler(() => {
    if (!principal) return
    principal = null
    setToken(null)
    notify('Your session has ended: sign in again.', 'error')
    route()
  })
  const token = getToken()
  try {
    // with a token: re-present it, which also renews the cookie <audio> and EventSource rely on
    principal = token
      ? await request<Principal>('POST', '/api/session', { body: { token }, quiet401: true, anonymous: true })
      : await request<Principal>('GET', '/api/session', { quiet401: true })
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) setToken(null)
    else bootError = `Could not reach Switchboard: ${err instanceof ApiError ? err.friendly : (err as Error).message}`
  }
  route()
}

void boot()
