// The synthetic cluster the end-to-end benchmarks use (bench/sync.ts feeds it
// to the model directly, bench/apiserver.ts serves it to a real proxy): N
// ClusterIP services of one TCP port, each with one EndpointSlice of E
// endpoints on another node, so nothing is local and every endpoint is a
// backend. Addresses: services in the lab's service range 10.96.0.0/16 (up to
// 65,279 services), endpoints from 10.128.0.0 on (up to 8 million), outside
// every lab pod range: nothing answers there, only the maps are exercised.
import type { KubeObject } from '../src/model/objects.js';
import { median } from './stats.js';

export const NAMESPACE = 'bench';

export const clusterIP = (i: number): string => `10.96.${(i >> 8) & 255}.${i & 255}`;

/** The j-th endpoint of service i in a cluster of `e` endpoints per service: distinct for every (i, j). */
export function endpointIP(i: number, j: number, e: number): string {
  const n = i * e + j;
  return `10.${128 | ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
}

export function service(i: number): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: `s${i}`, namespace: NAMESPACE },
    spec: { clusterIP: clusterIP(i), ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

export function slice(i: number, ips: readonly string[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `s${i}-1`, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': `s${i}` } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: 'other', conditions: { ready: true } })),
  };
}

export const endpointsOf = (i: number, e: number): string[] => Array.from({ length: e }, (_, j) => endpointIP(i, j, e));

/**
 * Map sizes (the --bpf-map-size settings) that hold n x e with room for a
 * second generation of every backend set and the changes a bench makes:
 * the defaults hold 262,144 backends, short of 30,000 x 10.
 */
export function mapSizesFor(n: number, e: number): Record<string, number> {
  return {
    frontends: Math.max(131072, n * 2),
    backendSets: Math.max(524288, n * (e + 1) * 2),
    backends: Math.max(262144, n * e * 2),
  };
}

/** Statistics the benches print. */
// One definition for every bench (stats.ts); re-exported where the benches have always found them.
export { median, quantile } from './stats.js';

/** "median (min..max, n pairs)" of per-pair ratios. */
export function ratioSummary(ratios: readonly number[]): string {
  return `${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}, ${ratios.length} pair${ratios.length === 1 ? '' : 's'})`;
}
