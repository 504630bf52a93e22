/**
 * Which events one socket of the wire simulator receives, as mod_event_socket decides it
 * (mod_event_socket.c: parse_command `myevents` / `event` / `nixevent` / `noevents`, and
 * event_handler). One listener has a per-event-type list, an "all" entry, CUSTOM subclasses,
 * and the myevents flag (only events of its own channel; the simulator only ever emits those).
 *
 * - `myevents` adds a fixed set of CHANNEL_* events plus DTMF, TALK, NOTALK and
 *   DETECTED_SPEECH to the list. CHANNEL_HOLD/UNHOLD, CUSTOM, RECORD_* and the like are not in
 *   it: a socket that wants them asks with `event`.
 * - `event <format> NAME…` adds names (after CUSTOM, the words are subclasses); the format word
 *   is optional. `ALL` sets the all entry. No known name: `-ERR no keywords supplied`.
 * - `nixevent NAME…` removes names (after CUSTOM: subclasses); `ALL` clears everything.
 *   Nixing one type while `ALL` is set first expands ALL into every type, then removes it.
 * - A CUSTOM event is sent when CUSTOM is listed and either it has no subclass or its
 *   subclass was asked for; with the all entry every event is sent.
 */

/** `myevents` (mod_event_socket.c), in its order. */
export const MYEVENTS_LIST = [
  'CHANNEL_ANSWER', 'CHANNEL_APPLICATION', 'CHANNEL_BRIDGE', 'CHANNEL_CREATE', 'CHANNEL_DATA', 'CHANNEL_DESTROY',
  'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ORIGINATE',
  'CHANNEL_UUID', 'CHANNEL_OUTGOING', 'CHANNEL_PARK', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_STATE',
  'CHANNEL_UNBRIDGE', 'CHANNEL_UNPARK', 'DETECTED_SPEECH', 'DTMF', 'NOTALK', 'TALK',
] as const

/**
 * The event types the simulator knows by name (switch_name_event accepts these and the rest
 * of FreeSWITCH's table; a word that is not an event type is skipped, as FreeSWITCH does).
 */
const KNOWN = new Set<string>([
  ...MYEVENTS_LIST, 'CUSTOM', 'ALL', 'BACKGROUND_JOB', 'CHANNEL_HOLD', 'CHANNEL_UNHOLD', 'CHANNEL_CALLSTATE',
  'CALL_UPDATE', 'RECORD_START', 'RECORD_STOP', 'PLAYBACK_START', 'PLAYBACK_STOP', 'HEARTBEAT', 'API',
  'PRESENCE_IN', 'MESSAGE_WAITING', 'CODEC', 'RE_SCHEDULE', 'SHUTDOWN', 'MODULE_LOAD', 'RELOADXML',
])

export type EventCommandResult = { ok: true; format?: 'plain' | 'json' | 'xml' } | { ok: false; error: string }

export class EventSubscription {
  /** LFLAG_EVENTS: set by myevents, event, nixevent; cleared by noevents. */
  on = false
  myevents = false
  private all = false
  /** Types removed while the all entry was expanded (nixevent NAME after event ALL). */
  private allBut: Set<string> | null = null
  private readonly list = new Set<string>()
  private readonly subclasses = new Set<string>()

  /** `myevents [json|xml|plain]`. */
  enableMyEvents(): EventCommandResult {
    if (this.myevents) return { ok: false, error: '-ERR aready enabled.' }
    for (const n of MYEVENTS_LIST) this.add(n)
    this.myevents = true
    this.on = true
    return { ok: true }
  }

  /** `event [format] NAME… [CUSTOM subclass…]` — the words after the command. */
  subscribe(words: string[]): EventCommandResult {
    let format: 'plain' | 'json' | 'xml' | undefined
    let custom = false
    let keys = 0
    words.forEach((w, i) => {
      if (i === 0 && /^(plain|json|xml)$/i.test(w)) {
        format = w.toLowerCase() as 'plain' | 'json' | 'xml'
        return
      }
      if (custom) {
        this.subclasses.add(w)
        return
      }
      const name = w.toUpperCase()
      if (!KNOWN.has(name)) return
      keys++
      if (name === 'ALL') {
        this.all = true
        this.allBut = null
      } else this.add(name)
      if (name === 'CUSTOM') custom = true
    })
    if (!keys) return { ok: false, error: '-ERR no keywords supplied' }
    this.on = true
    return { ok: true, format }
  }

  /** `nixevent NAME… [CUSTOM subclass…]`. */
  unsubscribe(words: string[]): EventCommandResult {
    let custom = false
    let keys = 0
    for (const w of words) {
      if (custom) {
        this.subclasses.delete(w)
        continue
      }
      const name = w.toUpperCase()
      if (!KNOWN.has(name)) continue
      keys++
      if (name === 'CUSTOM') custom = true
      else if (name === 'ALL') {
        this.all = false
        this.allBut = null
        this.list.clear()
      } else {
        if (this.all) {
          this.all = false
          this.allBut = new Set()
        }
        this.allBut?.add(name)
        this.list.delete(name)
      }
    }
    if (!keys) return { ok: false, error: '-ERR no keywords supplied' }
    this.on = true
    return { ok: true }
  }

  /** `noevents`. */
  clear(): EventCommandResult {
    if (!this.on) return { ok: false, error: '-ERR not listening for events' }
    this.on = false
    this.all = false
    this.allBut = null
    this.list.clear()
    this.subclasses.clear()
    return { ok: true }
  }

  /** Whether an event of this channel of type `name` (and CUSTOM `subclass`) reaches the socket. */
  wants(name: string, subclass?: string): boolean {
    if (!this.on) return false
    if (this.all) return true
    const listed = this.list.has(name) || (this.allBut !== null && !this.allBut.has(name))
    if (!listed) return false
    return name !== 'CUSTOM' || !subclass || this.subclasses.has(subclass)
  }

  private add(name: string): void {
    this.list.add(name)
    this.allBut?.delete(name)
  }
}
