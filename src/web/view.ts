import { html, type TemplateResult } from 'lit'
import type { Principal } from './roles.ts'
import type { Route } from './router.ts'
import { ApiError } from './api.ts'

/** What a view gets from the shell. */
export interface Ctx {
  principal: Principal
  route: Route
  /** re-render the page (views keep their own state and call this after changing it) */
  update(): void
  navigate(path: string, opts?: { replace?: boolean }): void
  /** a short message in the corner (saved, failed…) */
  notify(message: string, kind?: 'ok' | 'error'): void
}

export interface View {
  title: string
  render(): TemplateResult
  /** after each render, with the DOM in place (players, charts) */
  updated?(): void
  dispose?(): void
  /** keyboard shortcuts; true = handled */
  onKey?(e: KeyboardEvent): boolean
}

/** A value being loaded: what every panel shows while waiting, on failure, and when empty. */
export type Loadable<T> = { state: 'loading' } | { state: 'error'; error: string; status: number } | { state: 'ready'; value: T }

export async function load<T>(p: Promise<T>): Promise<Loadable<T>> {
  try {
    return { state: 'ready', value: await p }
  } catch (err) {
    if ((err as Error).name === 'AbortError') return { state: 'loading' }
    return err instanceof ApiError ? { state: 'error', error: err.friendly, status: err.status } : { state: 'error', error: String((err as Error).message ?? err), status: 0 }
  }
}

export function errorText(err: unknown): string {
  return err instanceof ApiError ? err.friendly : String((err as Error)?.message ?? err)
}

export const loading = (what = 'Loading') => html`<p class="muted loading" role="status">${what}…</p>`
export const failed = (msg: string) => html`<p class="error" role="alert">${msg}</p>`
export const empty = (msg: string) => html`<p class="empty">${msg}</p>`

export function panel<T>(l: Loadable<T>, ready: (v: T) => TemplateResult, what?: string): TemplateResult {
  if (l.state === 'loading') return loading(what)
  if (l.state === 'error') return failed(l.error)
  return ready(l.value)
}
