/**
 * In-process phone index: E.164 → client id, for millions of numbers.
 *
 * Layout: E.164 digits fit in a double exactly (≤ 15 digits < 2^53), so the bulk of the
 * index is a sorted Float64Array of keys with a parallel Uint32Array of client slots,
 * searched by binary search (~20 probes for 1 M). That is ~12 bytes per number instead
 * of ~100 for a Map<string, string>, and it is built once per snapshot (nightly import).
 * A small Map overlay takes incremental upserts/removals (live lookups, CRM edits)
 * without rebuilding; `compact()` folds it back in. See bench/routing.ts for figures.
 */

export interface PhoneEntry {
  e164: string
  clientId: string
}

export interface PhoneIndexStats {
  phones: number
  clients: number
  duplicates: number
  rejected: number
  overlay: number
  bytes: number
}

const E164_RE = /^\+[1-9][0-9]{6,14}$/

/** '+74951234567' → 74951234567, or NaN if the string is not E.164. */
export function e164Key(e164: string): number {
  if (!E164_RE.test(e164)) return Number.NaN
  return Number(e164.slice(1))
}

const REMOVED = -1

export class PhoneIndex {
  private keys: Float64Array
  private slots: Uint32Array
  private clientIds: string[]
  private slotOf: Map<string, number>
  /** key → slot, or REMOVED */
  private overlay = new Map<number, number>()
  private duplicates = 0
  private rejected = 0

  private constructor(keys: Float64Array, slots: Uint32Array, clientIds: string[], slotOf: Map<string, number>) {
    this.keys = keys
    this.slots = slots
    this.clientIds = clientIds
    this.slotOf = slotOf
  }

  static empty(): PhoneIndex {
    return new PhoneIndex(new Float64Array(0), new Uint32Array(0), [], new Map())
  }

  /**
   * Build from (E.164, clientId) pairs. Numbers not in E.164 are counted as rejected;
   * a number listed for two clients keeps the first one and is counted as a duplicate
   * (the import should report it — a shared reception number is not a client's line).
   */
  static build(entries: Iterable<PhoneEntry>): PhoneIndex {
    const clientIds: string[] = []
    const slotOf = new Map<string, number>()
    let keys = new Float64Array(1024)
    let slots = new Uint32Array(1024)
    let n = 0
    let rejected = 0
    for (const { e164, clientId } of entries) {
      const k = e164Key(e164)
      if (Number.isNaN(k)) { rejected++; continue }
      let slot = slotOf.get(clientId)
      if (slot === undefined) { slot = clientIds.length; clientIds.push(clientId); slotOf.set(clientId, slot) }
      if (n === keys.length) {
        const k2 = new Float64Array(keys.length * 2); k2.set(keys); keys = k2
        const s2 = new Uint32Array(slots.length * 2); s2.set(slots); slots = s2
      }
      keys[n] = k
      slots[n] = slot
      n++
    }
    // Sort by key, stable by insertion order so "first wins" for duplicates.
    const order = new Uint32Array(n)
    for (let i = 0; i < n; i++) order[i] = i
    const ks = keys
    order.sort((a, b) => (ks[a] - ks[b]) || (a - b))
    const outKeys = new Float64Array(n)
    const outSlots = new Uint32Array(n)
    let m = 0
    let duplicates = 0
    for (let i = 0; i < n; i++) {
      const j = order[i]
      if (m > 0 && outKeys[m - 1] === keys[j]) { duplicates++; continue }
      outKeys[m] = keys[j]
      outSlots[m] = slots[j]
      m++
    }
    const index = new PhoneIndex(outKeys.slice(0, m), outSlots.slice(0, m), clientIds, slotOf)
    index.duplicates = duplicates
    index.rejected = rejected
    return index
  }

  /** Client id for an E.164 number, or undefined. */
  lookup(e164: string): string | undefined {
    const k = e164Key(e164)
    if (Number.isNaN(k)) return undefined
    return this.lookupKey(k)
  }

  /** Lookup by numeric key (E.164 digits as a number). */
  lookupKey(k: number): string | undefined {
    if (this.overlay.size > 0) {
      const o = this.overlay.get(k)
      if (o !== undefined) return o === REMOVED ? undefined : this.clientIds[o]
    }
    const keys = this.keys
    let lo = 0
    let hi = keys.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = keys[mid]
      if (v < k) lo = mid + 1
      else if (v > k) hi = mid - 1
      else return this.clientIds[this.slots[mid]]
    }
    return undefined
  }

  /** Add or re-point a number (live lookup result, CRM edit). */
  upsert(e164: string, clientId: string): boolean {
    const k = e164Key(e164)
    if (Number.isNaN(k)) return false
    let slot = this.slotOf.get(clientId)
    if (slot === undefined) { slot = this.clientIds.length; this.clientIds.push(clientId); this.slotOf.set(clientId, slot) }
    this.overlay.set(k, slot)
    return true
  }

  remove(e164: string): boolean {
    const k = e164Key(e164)
    if (Number.isNaN(k)) return false
    const had = this.lookupKey(k) !== undefined
    this.overlay.set(k, REMOVED)
    return had
  }

  /** Fold the overlay into the sorted arrays (O(n log n)); returns a new index. */
  compact(): PhoneIndex {
    const self = this
    function* all(): Generator<PhoneEntry> {
      for (const [k, slot] of self.overlay) if (slot !== REMOVED) yield { e164: `+${k}`, clientId: self.clientIds[slot] }
      for (let i = 0; i < self.keys.length; i++) {
        const k = self.keys[i]
        if (self.overlay.has(k)) continue
        yield { e164: `+${k}`, clientId: self.clientIds[self.slots[i]] }
      }
    }
    return PhoneIndex.build(all())
  }

  get size(): number {
    let n = this.keys.length
    for (const [k, slot] of this.overlay) {
      const inBase = this.baseHas(k)
      if (slot === REMOVED && inBase) n--
      else if (slot !== REMOVED && !inBase) n++
    }
    return n
  }

  private baseHas(k: number): boolean {
    const keys = this.keys
    let lo = 0
    let hi = keys.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (keys[mid] < k) lo = mid + 1
      else if (keys[mid] > k) hi = mid - 1
      else return true
    }
    return false
  }

  stats(): PhoneIndexStats {
    return {
      phones: this.size,
      clients: this.clientIds.length,
      duplicates: this.duplicates,
      rejected: this.rejected,
      overlay: this.overlay.size,
      bytes: this.keys.byteLength + this.slots.byteLength,
    }
  }
}
