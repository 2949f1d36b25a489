// The load-balancing maps as the socket and packet programs see them, decoded
// from dumps through the declared tables (lb-tables.ts names the maps) and the
// codecs (layout.ts gives every field's offset): frontends, the live
// generation of each backend set, and the backends. Pure over the dumps, so
// formatting is tested without root; readLb() is the one part that opens pins.
import {
  BE_LOCAL, EMPTY_DROP, FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_KEY, FE_LOAD_BALANCER, FE_NODE_PORT, FE_PRESERVE_SRC,
  FE_SOURCE_RANGES, SET_KEY, SET_VAL, readBackend, readFeKey, readFeVal,
} from '../../dataplane/bpf/layout.js';
import { BACKENDS, FRONTENDS, HEADERS } from '../../dataplane/bpf/lb-tables.js';
import type { FrontendKind } from '../../planner/types.js';
import type { IPFamily } from '../../util/ip.js';
import type { Protocol } from '../../model/types.js';
import { withPinned } from './pins.js';

export interface Dump { keys: Buffer; values: Buffer; count: number; valueStride: number }

export interface LbFrontend {
  address: string;
  port: number;
  protocol: Protocol;
  family: IPFamily;
  svcId: number;
  /** The set connections made on this node use (the socket programs). */
  localSet: number;
  /** The set traffic from outside uses (the packet programs). */
  extSet: number;
  flags: number;
}

export interface LbSet {
  id: number;
  svcId: number;
  onEmpty: 'reject' | 'drop';
  /** ClientIP affinity timeout in seconds, 0 for none. */
  affinity: number;
  gen: number;
  /** Backend IDs of the live generation, in slot order; a missing slot is 0. */
  backends: number[];
}

export interface LbBackend {
  id: number;
  address: string;
  port: number;
  protocol: Protocol;
  family: IPFamily;
  local: boolean;
}

export interface LbView {
  frontends: LbFrontend[];
  sets: Map<number, LbSet>;
  backends: Map<number, LbBackend>;
}

export function frontendKind(flags: number): FrontendKind | 'unknown' {
  if (flags & FE_CLUSTER_IP) return 'ClusterIP';
  if (flags & FE_NODE_PORT) return 'NodePort';
  if (flags & FE_EXTERNAL_IP) return 'ExternalIP';
  if (flags & FE_LOAD_BALANCER) return 'LoadBalancer';
  return 'unknown';
}

export const preservesSource = (flags: number): boolean => (flags & FE_PRESERVE_SRC) !== 0;
export const hasSourceRanges = (flags: number): boolean => (flags & FE_SOURCE_RANGES) !== 0;

export function decodeLb(fe: Dump, set: Dump, be: Dump): LbView {
  const frontends: LbFrontend[] = [];
  for (let i = 0; i < fe.count; i++) {
    const k = readFeKey(fe.keys, i * FE_KEY.size);
    const v = readFeVal(fe.values, i * fe.valueStride);
    frontends.push({ ...k, svcId: v.svcId, localSet: v.localSet, extSet: v.extSet, flags: v.flags });
  }
  // Headers first (slot 0), then the slots of each header's live generation.
  const sets = new Map<number, LbSet>();
  const slots: { set: number; slot: number; gen: number; backend: number }[] = [];
  for (let i = 0; i < set.count; i++) {
    const ko = i * SET_KEY.size;
    const vo = i * set.valueStride;
    const id = set.keys.readUInt32LE(ko + SET_KEY.fields.set.offset);
    const slot = set.keys.readUInt16LE(ko + SET_KEY.fields.slot.offset);
    if (slot === 0) {
      sets.set(id, {
        id,
        svcId: set.values.readUInt32LE(vo + SET_VAL.fields.svc_id.offset),
        onEmpty: set.values.readUInt8(vo + SET_VAL.fields.empty.offset) === EMPTY_DROP ? 'drop' : 'reject',
        affinity: set.values.readUInt32LE(vo + SET_VAL.fields.affinity.offset),
        gen: set.values.readUInt8(vo + SET_VAL.fields.gen.offset),
        backends: new Array<number>(set.values.readUInt16LE(vo + SET_VAL.fields.count.offset)).fill(0),
      });
    } else {
      slots.push({ set: id, slot, gen: set.keys.readUInt8(ko + SET_KEY.fields.gen.offset), backend: set.values.readUInt32LE(vo + SET_VAL.fields.backend.offset) });
    }
  }
  for (const s of slots) {
    const h = sets.get(s.set);
    if (h && s.gen === h.gen && s.slot <= h.backends.length) h.backends[s.slot - 1] = s.backend;
  }
  const backends = new Map<number, LbBackend>();
  for (let i = 0; i < be.count; i++) {
    const id = be.keys.readUInt32LE(i * 4);
    const b = readBackend(be.values, i * be.valueStride);
    backends.set(id, { id, address: b.address, port: b.port, protocol: b.protocol, family: b.family, local: (b.flags & BE_LOCAL) !== 0 });
  }
  return { frontends, sets, backends };
}

/** The LB maps pinned under `pinDir`, decoded; null when they are not pinned there. */
export function readLb(pinDir: string): LbView | null {
  return withPinned(pinDir, FRONTENDS.map, (fe) => withPinned(pinDir, HEADERS.map, (set) => withPinned(pinDir, BACKENDS.map, (be) => {
    if (!fe || !set || !be) return null;
    return decodeLb(fe.dump(), set.dump(), be.dump());
  })));
}
