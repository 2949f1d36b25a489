// PlannedService -> the map entries that implement it. Pure. Keys and values
// of frontends and backends are kept as their raw bytes in latin1 strings:
// that is what the maps hold, what a dump returns, and a string comparison is
// the cheapest diff there is.
import type { BackendSet, FrontendKind, PlannedService } from '../../planner/types.js';
import { hostPort } from '../../util/ip.js';
import {
  BACKEND, BE_LOCAL, EMPTY_DROP, EMPTY_REJECT, FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_KEY, FE_LOAD_BALANCER, FE_NODE_PORT,
  FE_PRESERVE_SRC, FE_SOURCE_RANGES, FE_VAL, writeBackend, writeFeKey, writeFeVal,
} from './layout.js';

/** A service's backend sets get IDs next to its own: svcId * SETS_PER_SERVICE + kind. */
export const SETS_PER_SERVICE = 4;
const SET_INTERNAL = 0;
const SET_CLUSTER = 1;
const SET_EXTERNAL = 2;

export const MAX_SERVICE_ID = Math.floor(0xffffffff / SETS_PER_SERVICE);
/** Slots are 16-bit. */
export const MAX_SET_BACKENDS = 0xffff;

export interface RenderedSet {
  id: number;
  svcId: number;
  backends: number[];
  empty: number;
  affinity: number;
  /**
   * Membership entries are written only for sets whose readers check them:
   * ClientIP affinity and unconnected-UDP flows must notice that a remembered
   * backend left the set. Other sets are read by slot only.
   */
  members: boolean;
}

export interface RenderedFrontend {
  /** Raw bytes of struct bpx_fe_key, as latin1. */
  key: string;
  /** Raw bytes of struct bpx_fe_val, as latin1. */
  val: string;
  /** "PROTO/address/port", for messages. */
  text: string;
}

export interface RenderedService {
  key: string;
  id: number;
  frontends: RenderedFrontend[];
  sets: RenderedSet[];
  /** Backend id -> raw bytes of struct bpx_backend, as latin1. */
  backends: Map<number, string>;
}

const scratch = Buffer.alloc(64);

export function rawFeKey(address: string, port: number, protocol: PlannedService['protocol'], family: PlannedService['family']): string {
  writeFeKey(scratch, 0, { address, port, protocol, family });
  return scratch.toString('latin1', 0, FE_KEY.size);
}

/** The service ID inside a raw struct bpx_fe_val. */
export function feValSvcId(raw: string): number {
  const o = FE_VAL.fields.svc_id.offset;
  return (raw.charCodeAt(o) | (raw.charCodeAt(o + 1) << 8) | (raw.charCodeAt(o + 2) << 16) | (raw.charCodeAt(o + 3) << 24)) >>> 0;
}

const KIND_FLAG: Readonly<Record<FrontendKind, number>> = {
  ClusterIP: FE_CLUSTER_IP,
  NodePort: FE_NODE_PORT,
  ExternalIP: FE_EXTERNAL_IP,
  LoadBalancer: FE_LOAD_BALANCER,
};

function sameSet(a: BackendSet, b: BackendSet): boolean {
  if (a === b) return true;
  if (a.onEmpty !== b.onEmpty || a.backends.length !== b.backends.length) return false;
  return a.backends.every((x, i) => x.id === b.backends[i]!.id);
}

export function renderService(svc: PlannedService): RenderedService {
  if (svc.id <= 0 || svc.id > MAX_SERVICE_ID) throw new Error(`service ${svc.key}: id ${svc.id} out of range`);
  const affinity = svc.affinityTimeout ?? 0;
  const members = affinity > 0 || svc.protocol === 'UDP';
  const sets: RenderedSet[] = [];
  const backends = new Map<number, string>();
  const setFor = (s: BackendSet, kind: number): number => {
    const id = svc.id * SETS_PER_SERVICE + kind;
    sets.push({
      id,
      svcId: svc.id,
      backends: s.backends.map((b) => b.id),
      empty: s.onEmpty === 'drop' ? EMPTY_DROP : EMPTY_REJECT,
      affinity,
      members,
    });
    for (const b of s.backends) {
      if (backends.has(b.id)) continue;
      writeBackend(scratch, 0, { address: b.address, port: b.port, protocol: svc.protocol, family: svc.family, flags: b.local ? BE_LOCAL : 0 });
      backends.set(b.id, scratch.toString('latin1', 0, BACKEND.size));
    }
    return id;
  };
  const internal = setFor(svc.internal, SET_INTERNAL);
  const cluster = sameSet(svc.cluster, svc.internal) ? internal : setFor(svc.cluster, SET_CLUSTER);
  const external = sameSet(svc.external, svc.internal)
    ? internal
    : sameSet(svc.external, svc.cluster) ? cluster : setFor(svc.external, SET_EXTERNAL);

  const frontends: RenderedFrontend[] = svc.frontends.map((f) => {
    const isCluster = f.kind === 'ClusterIP';
    let flags = KIND_FLAG[f.kind];
    if (!isCluster && svc.preserveSource) flags |= FE_PRESERVE_SRC;
    if (f.kind === 'LoadBalancer' && svc.sourceRanges.length > 0) flags |= FE_SOURCE_RANGES;
    writeFeVal(scratch, 0, {
      svcId: svc.id,
      // Connections made on this node: a ClusterIP follows the internal
      // policy; an external frontend reached from inside is short-circuited
      // to the Cluster-policy endpoints, as kube-proxy does.
      localSet: isCluster ? internal : cluster,
      extSet: isCluster ? internal : external,
      flags,
    });
    const val = scratch.toString('latin1', 0, FE_VAL.size);
    return { key: rawFeKey(f.address, f.port, svc.protocol, svc.family), val, text: `${svc.protocol}/${hostPort(f.address, f.port)}` };
  });
  return { key: svc.key, id: svc.id, frontends, sets, backends };
}
