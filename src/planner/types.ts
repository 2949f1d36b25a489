// DesiredDataplane: what every dataplane renders. Produced by the planner from
// the model; pure data, deterministic for the same inputs and ID hints.
import type { IPFamily, Protocol } from '../model/types.js';
import { AddressIds } from './address-key.js';

export { AddressIds } from './address-key.js';

export type FrontendKind = 'ClusterIP' | 'NodePort' | 'ExternalIP' | 'LoadBalancer';

export interface Frontend {
  kind: FrontendKind;
  /** Canonical address. NodePort frontends carry one node address each. */
  address: string;
  /**
   * The address parsed: IPv4 as its 32 bits in a signed int32 (`| 0`, so V8
   * keeps it a small integer; read with `>>> 0`), 0 for IPv6 (the service's
   * `family` says which; IPv6 bytes come from `address`, see ipv6Words).
   * Dataplanes encode keys from it without parsing `address` again.
   */
  v4: number;
  port: number;
}

export interface PlannedBackend {
  /** Stable numeric ID, shared by every service that uses the same address, port and protocol. */
  id: number;
  address: string;
  /** `address` parsed, as Frontend.v4: the IPv4 bits in a signed int32, 0 for IPv6. */
  v4: number;
  port: number;
  nodeName: string | null;
  zone: string | null;
  /** On this node. */
  local: boolean;
  /** Serving but terminating: only used when nothing else is. */
  terminating: boolean;
}

/**
 * What happens to a new connection when the set is empty:
 * - reject: the service has no usable endpoints anywhere (kube-proxy REJECT: the client sees "refused").
 * - drop: endpoints exist, but none this traffic may use (a Local policy without local endpoints).
 */
export type EmptyAction = 'reject' | 'drop';

export interface BackendSet {
  /** Deterministic order: address, then port. */
  backends: PlannedBackend[];
  onEmpty: EmptyAction;
}

export interface PlannedService {
  /** "namespace/name:portName/family", unique. */
  key: string;
  namespace: string;
  name: string;
  portName: string;
  protocol: Protocol;
  family: IPFamily;
  /** Stable numeric ID, restorable from the dataplane's pinned state. */
  id: number;
  frontends: Frontend[];
  /**
   * internal: ClusterIP traffic (internalTrafficPolicy).
   * external: NodePort/ExternalIP/LoadBalancer traffic from outside the node (externalTrafficPolicy).
   * cluster: external frontends reached from this node or its pods, which kube-proxy
   *   short-circuits to the Cluster-policy endpoints whatever the external policy.
   * The three are the same object when they hold the same backends.
   */
  internal: BackendSet;
  external: BackendSet;
  cluster: BackendSet;
  /** ClientIP affinity in seconds, null for none. */
  affinityTimeout: number | null;
  /** loadBalancerSourceRanges: applies to LoadBalancer frontends only. Empty = everyone. */
  sourceRanges: string[];
  /** External traffic keeps its client source address (externalTrafficPolicy: Local). */
  preserveSource: boolean;
  /** Maglev for external frontends: table size and backends in table order. Null when no external frontend. */
  maglev: { m: number; backends: PlannedBackend[] } | null;
  /** How topology hints were applied, for logs and dumps: "" when none. */
  topology: string;
}

export interface HealthCheck {
  namespace: string;
  name: string;
  port: number;
  /** Ready, non-terminating endpoints on this node, as kube-proxy counts them. */
  localEndpoints: number;
}

export interface DesiredDataplane {
  /** Increases with every plan; for logs and metrics. */
  generation: number;
  /**
   * A planned service that did not change keeps the same object from one plan
   * to the next, so a dataplane may cache what it derives from it by identity.
   */
  services: ReadonlyMap<string, PlannedService>;
  /** healthCheckNodePort servers, by "namespace/name". */
  healthChecks: ReadonlyMap<string, HealthCheck>;
  /** Node addresses NodePort frontends were planned on, per family. */
  nodePortAddresses: Readonly<Record<IPFamily, readonly string[]>>;
}

/**
 * IDs found in a dataplane's state from an earlier run, to keep them stable
 * across restarts. Both tables are keyed by (IANA protocol, family 4|6,
 * address bytes, port) and filled from a map dump without building strings:
 *   hints.frontends.add(proto, family, dump, port, serviceId, addrOffset)
 */
export interface IdHints {
  /** Frontend -> the ID of the service it belonged to. */
  frontends: AddressIds;
  /** Backend -> its backend ID. */
  backends: AddressIds;
}

export function newIdHints(): IdHints {
  return { frontends: new AddressIds(), backends: new AddressIds() };
}

/** No hints: a first start. Shared, so sealed: add() throws. */
export const EMPTY_ID_HINTS: IdHints = { frontends: new AddressIds(true), backends: new AddressIds(true) };

/** NodePort, ExternalIP or LoadBalancer frontends: traffic kube-proxy calls external. */
export function hasExternalFrontends(frontends: readonly Frontend[]): boolean {
  return frontends.some((f) => f.kind !== 'ClusterIP');
}
