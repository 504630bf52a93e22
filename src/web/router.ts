/** Console paths → views. Deep links handed out elsewhere (CRM webhooks) must keep working: see README. */
export type RouteName = 'home' | 'signin' | 'recordings' | 'recording' | 'client' | 'clientByPhone' | 'live' | 'dashboard' | 'screenPop' | 'notFound'

export interface Route { name: RouteName; params: Record<string, string>; query: URLSearchParams; path: string }

const ROUTES: Array<[RouteName, RegExp, string[]]> = [
  ['home', /^\/console\/?$/, []],
  ['signin', /^\/console\/signin\/?$/, []],
  ['recordings', /^\/console\/recordings\/?$/, []],
  ['recording', /^\/console\/recordings\/([^/]+)\/?$/, ['id']],
  ['clientByPhone', /^\/console\/clients\/by-phone\/([^/]+)\/?$/, ['phone']],
  ['client', /^\/console\/clients\/([^/]+)\/?$/, ['id']],
  ['live', /^\/console\/live\/?$/, []],
  ['dashboard', /^\/console\/dashboard\/?$/, []],
  ['screenPop', /^\/console\/screen-pop\/?$/, []],
]

function decode(s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

export function matchRoute(pathname: string, search = ''): Route {
  const query = new URLSearchParams(search)
  for (const [name, re, keys] of ROUTES) {
    const m = re.exec(pathname)
    if (!m) continue
    const params: Record<string, string> = {}
    keys.forEach((k, i) => { params[k] = decode(m[i + 1]) })
    return { name, params, query, path: pathname }
  }
  return { name: 'notFound', params: {}, query, path: pathname }
}

export const recordingPath = (id: string) => `/console/recordings/${encodeURIComponent(id)}`
export const clientPath = (id: string) => `/console/clients/${encodeURIComponent(id)}`
