import type { CallContext } from '../context.ts'

/**
 * Seed 002: when the agent hangs up, the caller (still on the line: the dialplan sets
 * hangup_after_bridge=false) is asked to rate the call 1–scale by DTMF. "10" needs two
 * digits, so a lone "1" waits for the digit timeout or '#'. The score lands on the CDR.
 */
export async function askCsat(ctx: CallContext): Promise<void> {
  const { channel, deps, state, log } = ctx
  const cfg = deps.config().csat
  if (!cfg.enabled || !channel.isUp || !state.agentId) return
  const maxDigits = cfg.scale >= 10 ? 2 : 1
  const digits = await channel.playAndGetDigits({
    min: 1, max: maxDigits, tries: 2, timeoutMs: cfg.timeoutMs, digitTimeoutMs: 2000, terminators: '#',
    file: cfg.prompt, regex: cfg.scale >= 10 ? '([1-9]|10)' : `[1-${cfg.scale}]`,
  })
  const score = Number(digits)
  if (Number.isInteger(score) && score >= 1 && score <= cfg.scale) {
    state.csat = score
    log.info({ csat: score }, 'CSAT received')
  } else {
    log.info({ digits }, 'no CSAT given')
  }
}
