import type { CallChannel } from '../esl/call-channel.ts'
import type { EslEvent } from '../esl/event.ts'

/**
 * How long the caller was on hold during one call (statistics: hold time, seeds 000/002).
 *
 * Two sources, both from FreeSWITCH:
 *  - CHANNEL_HOLD / CHANNEL_UNHOLD events that reach the call's socket (uuid_hold on the
 *    caller — our consultation — or a phone's hold re-INVITE FreeSWITCH reports for a
 *    channel of this call). While any channel is held the caller hears music: the spans of
 *    the different channels are merged, not added. Times are FreeSWITCH's
 *    (Event-Date-Timestamp, µs), so they match billsec and the other CDR times.
 *  - variable_hold_accum_usec/_seconds on CHANNEL_HANGUP_COMPLETE: FreeSWITCH's own total
 *    for the caller's channel.
 * The larger wins: either source can miss holds the other saw.
 */
export class HoldClock {
  private readonly held = new Set<string>()
  private openedUs: number | null = null
  private totalUs = 0

  constructor(channel: CallChannel) {
    channel.on('event', (e: EslEvent) => {
      if (e.name === 'CHANNEL_HOLD' || e.name === 'CHANNEL_UNHOLD') this.onEvent(e.name === 'CHANNEL_HOLD', e)
    })
  }

  private onEvent(on: boolean, e: EslEvent): void {
    const uuid = e.header('Unique-ID') ?? ''
    const at = eventTimeUs(e)
    if (on) {
      if (this.held.size === 0) this.openedUs = at
      this.held.add(uuid)
    } else if (this.held.delete(uuid) && this.held.size === 0 && this.openedUs !== null) {
      this.totalUs += Math.max(0, at - this.openedUs)
      this.openedUs = null
    }
  }

  /** Whole seconds on hold; a hold still open at hangup ends at the hangup (FreeSWITCH's end_uepoch when known). */
  seconds(vars: Record<string, string> | undefined, endedAt: Date): number {
    let seen = this.totalUs
    if (this.openedUs !== null) {
      const endUs = Number(vars?.end_uepoch) > 0 ? Number(vars?.end_uepoch) : endedAt.getTime() * 1000
      seen += Math.max(0, endUs - this.openedUs)
    }
    const fsUs = Number(vars?.hold_accum_usec)
    const fs = Number.isFinite(fsUs) && fsUs > 0 ? fsUs : Number(vars?.hold_accum_seconds) * 1e6
    return Math.round(Math.max(seen, Number.isFinite(fs) ? fs : 0) / 1e6)
  }
}

function eventTimeUs(e: EslEvent): number {
  const ts = Number(e.header('Event-Date-Timestamp'))
  return Number.isFinite(ts) && ts > 0 ? ts : Date.now() * 1000
}
