/**
 * An EventSource with a status people can read. EventSource cannot send a bearer header:
 * it rides on the HttpOnly session cookie (GET only). When the browser gives up (a non-200
 * answer closes the stream for good) one plain GET finds out why: 404 = this Switchboard
 * has no such stream, 401/403 = session or role, anything else = retry in a few seconds.
 */
import { getToken } from './api.ts'

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'unavailable' | 'forbidden' | 'signed-out'

export interface Stream { close(): void }

export function openStream(url: string, handlers: Record<string, (data: unknown) => void>, onStatus: (s: StreamStatus, detail?: string) => void): Stream {
  let es: EventSource | null = null
  let closed = false
  let retry: number | undefined

  const connect = () => {
    if (closed) return
    onStatus('connecting')
    es = new EventSource(url)
    es.onopen = () => onStatus('live')
    for (const [event, fn] of Object.entries(handlers)) {
      es.addEventListener(event, (e) => {
        try { fn(JSON.parse((e as MessageEvent<string>).data)) } catch { /* a malformed event is skipped, the stream goes on */ }
      })
    }
    es.onerror = () => {
      if (closed || !es) return
      if (es.readyState === EventSource.CONNECTING) return onStatus('reconnecting')
      es.close()
      void probe()
    }
  }

  const probe = async () => {
    const ac = new AbortController()
    let status = 0
    let detail = ''
    try {
      const t = getToken()
      const res = await fetch(url, { signal: ac.signal, cache: 'no-store', headers: { accept: 'text/event-stream', ...(t ? { authorization: `Bearer ${t}` } : {}) } })
      status = res.status
      if (status >= 400) detail = String(((await res.json().catch(() => ({}))) as { detail?: unknown }).detail ?? '')
    } catch { status = 0 }
    ac.abort()
    if (closed) return
    if (status === 404) return onStatus('unavailable', `${url} does not exist on this server (404)`)
    if (status === 401) return onStatus('signed-out', 'the session has ended: sign in again')
    // 400: e.g. a token not linked to an employee (screen pop); 403: the role — retrying cannot help
    if (status === 403 || status === 400) return onStatus('forbidden', detail || 'your role may not open this stream')
    onStatus('reconnecting', status ? `HTTP ${status}${detail ? `: ${detail}` : ''}` : 'server unreachable')
    retry = window.setTimeout(connect, 5000)
  }

  connect()
  return {
    close() {
      closed = true
      clearTimeout(retry)
      es?.close()
    },
  }
}
