/**
 * The console's only way to the server. Reads (GET) go with the bearer token when this tab
 * has it, else with the HttpOnly session cookie (a deep link opened in a new tab). Changes
 * (POST/PUT/DELETE) always need the bearer token — the server never accepts the cookie for
 * them — so a tab without it asks for it once (see `setTokenPrompt`).
 */
const TOKEN_KEY = 'sb_token'

export interface Problem { type?: string; title?: string; status: number; detail?: string; code?: string; requestId?: string; [k: string]: unknown }

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly problem?: Problem) { super(message) }
  /** what to show a person */
  get friendly(): string {
    if (this.status === 0) return `The server could not be reached (${this.message}).`
    if (this.status === 401) return 'Your session has ended: sign in again.'
    if (this.status === 403) return `Not allowed for your role: ${this.message}`
    if (this.status === 404) return `Not found: ${this.message}`
    if (this.status === 429) return 'Too many requests: wait a moment and retry.'
    if (this.status >= 500) return `The server failed (${this.code}${this.problem?.requestId ? `, request ${this.problem.requestId}` : ''}): ${this.message}`
    return this.message
  }
}

let token: string | null = readStoredToken()
let onUnauthorized: () => void = () => undefined
let tokenPrompt: (() => Promise<string | null>) | null = null

function readStoredToken(): string | null {
  try { return sessionStorage.getItem(TOKEN_KEY) } catch { return null }
}

export function getToken(): string | null { return token }
export function setToken(t: string | null): void {
  token = t
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t)
    else sessionStorage.removeItem(TOKEN_KEY)
  } catch { /* storage disabled: the token stays in memory for this page */ }
}
export function setUnauthorizedHandler(fn: () => void): void { onUnauthorized = fn }
/** how a change obtains a token in a tab that has none (a dialog); null = the person cancelled */
export function setTokenPrompt(fn: () => Promise<string | null>): void { tokenPrompt = fn }

export interface RequestOptions { body?: unknown; signal?: AbortSignal; /** return the Response (downloads) */ raw?: boolean; /** 401 does not sign out (sign-in itself) */ quiet401?: boolean; /** public route (sign-in/out): never ask for a token */ anonymous?: boolean }

export async function request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (method !== 'GET' && !token && tokenPrompt && !opts.anonymous) {
    const t = await tokenPrompt()
    if (!t) throw new ApiError(401, 'token_required', 'this change needs your token; it was not given')
  }
  if (token) headers.authorization = `Bearer ${token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal, credentials: 'same-origin', cache: 'no-store' })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new ApiError(0, 'network', (err as Error).message)
  }
  if (!res.ok) {
    let problem: Problem | undefined
    try { problem = await res.json() as Problem } catch { problem = undefined }
    const e = new ApiError(res.status, problem?.code ?? `http_${res.status}`, problem?.detail ?? problem?.title ?? res.statusText, problem)
    if (res.status === 401 && !opts.quiet401) onUnauthorized()
    throw e
  }
  if (opts.raw) return res as unknown as T
  if (res.status === 204) return undefined as T
  return await res.json() as T
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, { signal })

/** "?a=1&b=x" from an object, skipping empty values */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}
