// A change tracker after kube-proxy's (pkg/proxy/servicechangetracker.go):
// event handlers only record {previous, current} per object; an edit followed
// by its undo cancels out; applying changes is a checkout that returns what
// changed since the last one and clears the pending set.
import { plainEqual } from '../util/equal.js';

export interface Change<T> {
  /** The state at the last checkout (undefined: did not exist). */
  previous: T | undefined;
  /** The state now (undefined: gone). */
  current: T | undefined;
}

/** Structural equality of plain model values. */
export function sameValue<T>(a: T | undefined, b: T | undefined): boolean {
  return plainEqual(a, b);
}

export class ChangeTracker<T> {
  private pending = new Map<string, Change<T>>();

  constructor(private readonly equal: (a: T | undefined, b: T | undefined) => boolean = sameValue) {}

  /**
   * Records that `key` went from `previous` (its state as the caller last
   * applied it) to `current`. When it was already pending, the first
   * `previous` is kept, so a change and its undo cancel out.
   */
  update(key: string, previous: T | undefined, current: T | undefined): void {
    const p = this.pending.get(key);
    const prev = p ? p.previous : previous;
    if (this.equal(prev, current)) this.pending.delete(key);
    else this.pending.set(key, { previous: prev, current });
  }

  get size(): number {
    return this.pending.size;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  /** Everything that changed since the last checkout; the pending set starts empty again. */
  checkout(): Map<string, Change<T>> {
    const out = this.pending;
    this.pending = new Map();
    return out;
  }
}
