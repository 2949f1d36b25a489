// Values many objects of a cluster hold alike (port lists, family lists),
// kept once and shared, frozen so that no holder can change them for the
// others: at 30,000 services each service and slice had its own copy of the
// same one-port list. Bounded: past `max` distinct values a table stops
// adding, and new values stay per object (correct, only larger).

export class SharedValues<T> {
  private readonly known = new Map<string, T>();

  constructor(private readonly max = 4096) {}

  /** The shared value whose text is `text`, `value` (frozen) when it is the first of its kind. */
  share(text: string, value: T, freeze: (v: T) => T): T {
    const known = this.known.get(text);
    if (known !== undefined) return known;
    if (this.known.size >= this.max) return value;
    const frozen = freeze(value);
    this.known.set(text, frozen);
    return frozen;
  }
}

/** Freezes a list, and its items that are records. */
export function freezeList<T>(list: T[]): T[] {
  for (const item of list) if (typeof item === 'object' && item !== null) Object.freeze(item);
  return Object.freeze(list) as T[];
}
