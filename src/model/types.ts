// The model: validated, normalized Services, EndpointSlices and Nodes. Pure
// data; produced from API objects by service.ts, endpointslice.ts and node.ts.
import type { IPFamily } from '../util/ip.js';

export type { IPFamily } from '../util/ip.js';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type TrafficPolicy = 'Cluster' | 'Local';

export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
/** IANA protocol numbers: what the kernel, and so every dataplane key, calls them. */
export const PROTOCOL_NUMBERS: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

export interface ServicePortSpec {
  /** "" when the service has a single unnamed port. */
  name: string;
  protocol: Protocol;
  port: number;
  /** Informational: kube-proxy matches endpoints by port name, the EndpointSlice carries the resolved number. */
  targetPort: number | string;
  /** 0 when the port has none. */
  nodePort: number;
}

/** A Service that passed validation. */
export interface ServiceInfo {
  namespace: string;
  name: string;
  /** "namespace/name" */
  key: string;
  type: ServiceType;
  /**
   * Why the service is not proxied at all, or null when it is. ExternalName
   * and headless services are kept in the model (a type change is a change)
   * but yield no frontends.
   */
  notProxied: 'ExternalName' | 'headless' | null;
  /** Canonical addresses, primary family first (spec.clusterIPs). */
  clusterIPs: string[];
  ipFamilies: IPFamily[];
  externalIPs: readonly string[];
  /** status.loadBalancer.ingress[].ip, minus those with ipMode: Proxy. */
  loadBalancerIPs: readonly string[];
  /** Canonical CIDR text. */
  loadBalancerSourceRanges: readonly string[];
  /** Seconds of ClientIP affinity, null for sessionAffinity: None. */
  sessionAffinityTimeout: number | null;
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  /** 0 when none. */
  healthCheckNodePort: number;
  trafficDistribution: string | null;
  ports: ServicePortSpec[];
  /** For ordering conflicts: the older object keeps a contested port. */
  creationTimestamp: string | null;
}

/**
 * One endpoint, unpacked: what a slice's packed endpoints
 * (packed-endpoints.ts) read as, for tests and debugging. The model keeps
 * the packed form only.
 */
export interface EndpointInfo {
  /** Canonical first address of the endpoint (kube-proxy uses only the first). */
  address: string;
  /**
   * The same address parsed once, here, for the planner and the dataplanes:
   * IPv4 as its 32 bits in a signed int32 (`| 0`, so V8 keeps it a small
   * integer: read it with `>>> 0`); 0 for IPv6, whose bytes come from
   * `address` (ipv6Words) when needed.
   */
  v4: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName: string | null;
  zone: string | null;
  /** Sorted; endpoints without hints share one empty array. */
  zoneHints: readonly string[];
  nodeHints: readonly string[];
}

export interface SlicePort {
  name: string;
  protocol: Protocol;
  port: number;
}

/** An EndpointSlice that passed validation. FQDN slices never get here. */
export interface SliceInfo {
  namespace: string;
  name: string;
  /** "namespace/name" of the slice. */
  key: string;
  /** "namespace/name" of the Service it belongs to (label kubernetes.io/service-name). */
  serviceKey: string;
  family: IPFamily;
  /** Ports whose number is set; kube-proxy ignores the others. */
  ports: SlicePort[];
  /**
   * The endpoints, packed (packed-endpoints.ts): strideOf(family) numbers
   * each, address first (kube-proxy uses only the first address of an
   * endpoint), then conditions and place. unpackEndpoints() reads them as objects.
   */
  packed: readonly number[];
}

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** status.addresses, canonical; InternalIP first. */
  addresses: { type: string; address: string }[];
  podCIDRs: string[];
  /** metadata.deletionTimestamp is set: /healthz turns unhealthy like kube-proxy's. */
  deleting: boolean;
}

export type Validated<T> =
  | { ok: true; value: T; warnings: string[] }
  | { ok: false; reason: string };

/** Settings that decide what an API server would have accepted. */
export interface ValidationConfig {
  /** --service-cluster-ip-range, canonical CIDRs; empty = not checked. */
  serviceClusterIPRanges: string[];
  /** --service-node-port-range, inclusive. */
  nodePortRange: { base: number; size: number };
}

export const DEFAULT_VALIDATION: ValidationConfig = {
  serviceClusterIPRanges: [],
  nodePortRange: { base: 30000, size: 2768 },
};

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const DEFAULT_AFFINITY_TIMEOUT = 10800;
export const MAX_AFFINITY_TIMEOUT = 86400;
