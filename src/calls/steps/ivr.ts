import type { CallContext } from '../context.ts'
import type { IvrOptionConfig } from '../../config/switchboard-file.ts'

export type IvrExit = { action: 'queue' | 'route' | 'extension' | 'hangup'; target?: string }

const MAX_MENU_HOPS = 10

/**
 * Run IVR menus from the config: prompt, collect one digit, follow the option.
 * Timeouts and invalid digits repeat the menu up to maxRetries, then the default
 * action. Every step (label, digit, time) goes into the call's IVR path (seed 004).
 */
export async function runIvr(ctx: CallContext, menuId: string): Promise<IvrExit> {
  const { channel, deps, state } = ctx
  let currentId = menuId
  for (let hop = 0; hop < MAX_MENU_HOPS && channel.isUp; hop++) {
    const menu = deps.config().ivr.find((m) => m.id === currentId)
    if (!menu) return { action: 'hangup' }
    let chosen: IvrOptionConfig | undefined
    for (let attempt = 0; attempt <= menu.maxRetries && channel.isUp && !chosen; attempt++) {
      const digit = await channel.playAndGetDigits({
        min: 1, max: 1, tries: 1, timeoutMs: menu.timeoutMs, file: menu.prompt,
        invalidFile: menu.invalidPrompt, regex: '[0-9*#]', terminators: 'none',
      })
      chosen = digit ? menu.options[digit] : undefined
      state.ivrPath.push({ menuId: menu.id, digit: digit || null, label: chosen?.label ?? (digit ? 'invalid' : 'no input'), at: new Date().toISOString() })
      if (!chosen && digit && menu.invalidPrompt && attempt < menu.maxRetries) await channel.playback(menu.invalidPrompt)
    }
    if (!chosen) {
      const fallback = menu.defaultAction ?? { action: 'hangup' as const }
      state.ivrPath.push({ menuId: menu.id, digit: null, label: `default: ${fallback.action}${fallback.target ? ` ${fallback.target}` : ''}`, at: new Date().toISOString() })
      if (fallback.action === 'menu' && fallback.target) { currentId = fallback.target; continue }
      return { action: fallback.action === 'menu' ? 'hangup' : fallback.action, target: fallback.target }
    }
    if (chosen.action === 'menu' && chosen.target) { currentId = chosen.target; continue }
    return { action: chosen.action === 'menu' ? 'hangup' : chosen.action, target: chosen.target }
  }
  return { action: 'hangup' }
}
