// PlannedService -> the map entries that implement it. Pure.
import type { BackendSet, FrontendKind, PlannedService } from '../../planner/types.js';
import {
  BE_LOCAL, EMPTY_DROP, EMPTY_REJECT, FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_LOAD_BALANCER, FE_NODE_PORT,
  FE_PRESERVE_SRC, FE_SOURCE_RANGES, type BackendVal, type FeKey, type FeVal,
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
}

export interface RenderedFrontend {
  /** "PROTO/address/port", also how dumped keys are indexed. */
  keyText: string;
  key: FeKey;
  val: FeVal;
}

export interface RenderedService {
  key: string;
  id: number;
  frontends: RenderedFrontend[];
  sets: RenderedSet[];
  backends: Map<number, BackendVal>;
}

export function feKeyText(k: FeKey): string {
  return `${k.protocol}/${k.address}/${k.port}`;
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
  const sets: RenderedSet[] = [];
  const backends = new Map<number, BackendVal>();
  const setFor = (s: BackendSet, kind: number): number => {
    const id = svc.id * SETS_PER_SERVICE + kind;
    sets.push({
      id,
      svcId: svc.id,
      backends: s.backends.map((b) => b.id),
      empty: s.onEmpty === 'drop' ? EMPTY_DROP : EMPTY_REJECT,
      affinity,
    });
    for (const b of s.backends) {
      backends.set(b.id, {
        address: b.address,
        port: b.port,
        protocol: svc.protocol,
        family: svc.family,
        flags: b.local ? BE_LOCAL : 0,
      });
    }
    return id;
  };
  const internal = setFor(svc.internal, SET_INTERNAL);
  const cluster = sameSet(svc.cluster, svc.internal) ? internal : setFor(svc.cluster, SET_CLUSTER);
  const external = sameSet(svc.external, svc.internal)
    ? internal
    : sameSet(svc.external, svc.cluster) ? cluster : setFor(svc.external, SET_EXTERNAL);

  const frontends: RenderedFrontend[] = svc.frontends.map((f) => {
    const key: FeKey = { address: f.address, port: f.port, protocol: svc.protocol, family: svc.family };
    const isCluster = f.kind === 'ClusterIP';
    let flags = KIND_FLAG[f.kind];
    if (!isCluster && svc.preserveSource) flags |= FE_PRESERVE_SRC;
    if (f.kind === 'LoadBalancer' && svc.sourceRanges.length > 0) flags |= FE_SOURCE_RANGES;
    return {
      keyText: feKeyText(key),
      key,
      val: {
        svcId: svc.id,
        // Connections made on this node: a ClusterIP follows the internal
        // policy; an external frontend reached from inside is short-circuited
        // to the Cluster-policy endpoints, as kube-proxy does.
        localSet: isCluster ? internal : cluster,
        extSet: isCluster ? internal : external,
        flags,
      },
    };
  });
  return { key: svc.key, id: svc.id, frontends, sets, backends };
}
