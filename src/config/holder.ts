import type { Logger } from '../log.ts'

/**
 * The live switchboard configuration. A reload validates the new document first; an
 * invalid one is rejected with the field named in the log and the running one stays.
 */
export class ConfigHolder<T> {
  private listeners: Array<(next: T) => void> = []
  constructor(private value: T, private readonly load: () => Promise<T>, private readonly log: Logger) {}

  current(): T { return this.value }

  onChange(listener: (next: T) => void): void { this.listeners.push(listener) }

  /** Replace the running config with an already validated one (e.g. a version activated through the API). */
  set(next: T): void {
    this.value = next
    for (const l of this.listeners) l(next)
  }

  /** Returns true when the new config was applied, false when it was rejected (and the old one kept). */
  async reload(): Promise<boolean> {
    try {
      this.set(await this.load())
      this.log.info('switchboard config reloaded')
      return true
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'config reload rejected; the running configuration stays')
      return false
    }
  }
}
