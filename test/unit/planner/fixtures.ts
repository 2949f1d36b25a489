// Small builders shared by the planner tests: API objects as a source would
// deliver them, and a ClusterState + Planner pair fed from them.
import type { KubeObject, ObjectKind } from '../../../src/model/objects.js';
import { ClusterState } from '../../../src/model/state.js';
import { DEFAULT_VALIDATION } from '../../../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner, type PlanResult } from '../../../src/planner/planner.js';
import { EMPTY_ID_HINTS, type IdHints } from '../../../src/planner/types.js';

export type Obj = Record<string, unknown>;

export function service(ns: string, name: string, spec: Obj, status?: Obj): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec, ...(status ? { status } : {}) };
}

export interface EndpointSpec {
  ip: string;
  node?: string;
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  zone?: string;
  hints?: { forZones?: { name: string }[]; forNodes?: { name: string }[] };
}

export function slice(
  ns: string,
  name: string,
  svc: string,
  ports: { name: string; port: number; protocol?: string }[],
  endpoints: EndpointSpec[],
  addressType: 'IPv4' | 'IPv6' = 'IPv4',
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    addressType,
    ports: ports.map((p) => ({ protocol: 'TCP', ...p })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.node ? { nodeName: e.node } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.conditions ? { conditions: e.conditions } : {}),
      ...(e.hints ? { hints: e.hints } : {}),
    })),
  };
}

export function nodeObject(name: string, labels: Record<string, string>, addresses: string[]): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, status: { addresses: addresses.map((address) => ({ type: 'InternalIP', address })) } };
}

export function keyOf(obj: KubeObject): string {
  return obj.kind === 'Node' ? obj.metadata!.name! : `${obj.metadata!.namespace}/${obj.metadata!.name}`;
}

/** A ClusterState and a Planner for node1, with errors in the objects failing the test. */
export class Harness {
  readonly state: ClusterState;
  readonly planner: Planner;
  readonly problems: string[] = [];

  constructor(hints: IdHints = EMPTY_ID_HINTS, localAddresses: string[] = ['172.18.0.11', 'fd00:18::11']) {
    this.state = new ClusterState('node1', DEFAULT_VALIDATION, {
      rejected: (r) => this.problems.push(`rejected ${r.key}: ${r.reason}`),
      warned: () => {},
    });
    this.planner = new Planner({ nodeName: 'node1', nodePortAddresses: [], maglevTableSize: 251, ...DEFAULT_PLANNER_LIMITS }, hints);
    this.planner.setLocalAddresses(localAddresses);
  }

  upsert(...objs: KubeObject[]): this {
    for (const o of objs) this.state.upsert(o.kind as ObjectKind, keyOf(o), o, 'test');
    return this;
  }

  delete(kind: ObjectKind, key: string): this {
    this.state.delete(kind, key);
    return this;
  }

  /**
   * What an incremental dataplane holds: each planned service as last
   * written, updated only for the keys a plan reports as changed.
   */
  readonly mirror = new Map<string, string>();

  /** Checkout and incremental plan. */
  plan(): PlanResult {
    this.state.markSynced();
    const co = this.state.checkout();
    const res = this.planner.plan(this.state, co.services, { nodeChanged: co.nodeChanged });
    for (const k of res.changed) {
      const s = res.desired.services.get(k);
      if (s) this.mirror.set(k, JSON.stringify(s));
      else this.mirror.delete(k);
    }
    return res;
  }
}
