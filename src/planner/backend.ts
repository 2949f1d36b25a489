// The PlannedBackend the planner hands out: four fields (five for IPv6)
// instead of eight, with the address text, port, flags, node and zone read
// through getters. At 30,000 services x 10 endpoints the plain objects and
// the address strings they held were about 40 MB of heap; this keeps an
// IPv4 address as its number (the text is made when someone asks, which
// the bpf encoders do not need) and nodeName/zone in the interned place the
// model's packed endpoints share (packed-endpoints.ts).
import type { Place } from '../model/packed-endpoints.js';
import type { PlannedBackend } from './types.js';

const LOCAL = 1 << 16;
const TERMINATING = 1 << 17;

/** Dotted-quad text of IPv4 bits held as a signed int32. */
export function ipv4Text(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 0xff}.${(v4 >>> 8) & 0xff}.${v4 & 0xff}`;
}

/** An IPv4 backend. */
export class CompactBackend implements PlannedBackend {
  /** port | LOCAL | TERMINATING */
  private readonly bits: number;

  /** @param v4 the IPv4 bits as a signed int32 (0 for IPv6: CompactBackend6). */
  constructor(readonly id: number, readonly v4: number, port: number, local: boolean, terminating: boolean, private readonly place: Place) {
    this.bits = port | (local ? LOCAL : 0) | (terminating ? TERMINATING : 0);
  }

  get address(): string { return ipv4Text(this.v4); }
  get port(): number { return this.bits & 0xffff; }
  get local(): boolean { return (this.bits & LOCAL) !== 0; }
  get terminating(): boolean { return (this.bits & TERMINATING) !== 0; }
  get nodeName(): string | null { return this.place.nodeName; }
  get zone(): string | null { return this.place.zone; }

  /** The plain object, for JSON (a dump, a state file): getters are not own properties. */
  toJSON(): PlannedBackend {
    return { id: this.id, address: this.address, v4: this.v4, port: this.port, nodeName: this.nodeName, zone: this.zone, local: this.local, terminating: this.terminating };
  }
}

/** An IPv6 backend: the canonical text is kept (IPv6 endpoints are few, and their text costs a parse to make). */
export class CompactBackend6 extends CompactBackend {
  constructor(id: number, port: number, local: boolean, terminating: boolean, place: Place, private readonly text: string) {
    super(id, 0, port, local, terminating, place);
  }

  override get address(): string { return this.text; }
}
