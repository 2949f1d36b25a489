// Stable numeric IDs. A planned service keeps its ID while it exists; a
// backend (protocol, address, port) keeps its ID while any service uses it.
// After a restart the IDs the datapath still holds are taken over (its
// affinity and flow entries name them), and new IDs are handed out above all
// known ones, so an ID is not reused while stale state could still name it.

export class IdAllocator {
  /** key -> its ID and how many holders it has */
  private readonly byKey = new Map<string, { id: number; refs: number }>();
  private readonly used = new Set<number>();
  private next = 1;

  /**
   * @param max the largest ID the dataplane can store.
   * @param hints key -> ID found in the datapath of an earlier run.
   */
  constructor(private readonly max: number, private hints: ReadonlyMap<string, number> = new Map()) {
    for (const id of hints.values()) if (id >= this.next && id <= max) this.next = id + 1;
  }

  get(key: string): number | undefined {
    return this.byKey.get(key)?.id;
  }

  /** The ID of `key`, allocating one (a hinted one if there is one) on first use; counts a reference. */
  acquire(key: string, hintKeys: readonly string[] = [key]): number {
    const have = this.byKey.get(key);
    if (have !== undefined) {
      have.refs++;
      return have.id;
    }
    let id: number | undefined;
    for (const h of hintKeys) {
      const hinted = this.hints.get(h);
      if (hinted !== undefined && hinted >= 1 && hinted <= this.max && !this.used.has(hinted)) {
        id = hinted;
        break;
      }
    }
    id ??= this.fresh();
    this.byKey.set(key, { id, refs: 1 });
    this.used.add(id);
    return id;
  }

  /** Drops one reference; the ID is freed with the last. */
  release(key: string): void {
    const have = this.byKey.get(key);
    if (!have) return;
    if (--have.refs > 0) return;
    this.byKey.delete(key);
    this.used.delete(have.id);
  }

  /** Hints only matter until every restored object has been planned once. */
  dropHints(): void {
    this.hints = new Map();
  }

  get size(): number {
    return this.byKey.size;
  }

  private fresh(): number {
    if (this.next <= this.max && !this.used.has(this.next)) return this.next++;
    // Wrapped (or the next one is taken): the lowest free ID above the
    // counter, then from 1. Only reached after ~max allocations.
    for (let i = 0; i < this.max; i++) {
      const id = ((this.next - 1 + i) % this.max) + 1;
      if (!this.used.has(id)) {
        this.next = id + 1;
        return id;
      }
    }
    throw new Error(`all ${this.max} IDs are in use`);
  }
}
