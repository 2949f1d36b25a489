// The plan in the rule modes' state file, compact: `bpfproxy trace` renders
// it again with the dataplane's own renderer. Each backend is written once
// (services share them), a backend set as its onEmpty and backend IDs, and a
// set that is the same object as an earlier one of its service (the planner
// shares internal, cluster and external when they hold the same backends) as
// a reference, so the renderers see the identity they saw. Maglev tables are
// left out: no rule mode reads them. Measured at 30k services x 10 endpoints:
// packing PlannedService objects as they are gave 91 MB; this form 17.5 MB
// (bench/state-file.ts).
import type { IPFamily, Protocol } from '../model/types.js';
import type { BackendSet, DesiredDataplane, Frontend, PlannedBackend, PlannedService } from '../planner/types.js';
import { ipv4ToUint32 } from '../util/ip.js';

/** [id, address, port, node, zone, local, terminating] */
type BackendTuple = [number, string, number, string | null, string | null, boolean, boolean];
/** A set: [onEmpty, backend IDs], or the index (0 internal, 1 cluster) of the earlier set it is. */
type SetTuple = ['reject' | 'drop', number[]] | number;
/** [key, namespace, name, port name, protocol, family, id, frontends [kind, address, port][], [internal, cluster, external], affinity, source ranges, preserve source, topology] */
type ServiceTuple = [string, string, string, string, Protocol, IPFamily, number, [Frontend['kind'], string, number][], [SetTuple, SetTuple, SetTuple], number | null, string[], boolean, string];

export interface CompactPlan {
  generation: number;
  nodePortAddresses: DesiredDataplane['nodePortAddresses'];
  backends: BackendTuple[];
  services: ServiceTuple[];
  /** The renderer's settings (NftConfig, XtConfig). */
  config: unknown;
}

export function encodePlan(desired: DesiredDataplane, config: unknown): CompactPlan {
  const backends: BackendTuple[] = [];
  const seen = new Uint8Array(backendRoom(desired).maxId + 1);
  const services: ServiceTuple[] = [];
  for (const s of desired.services.values()) {
    const order: BackendSet[] = [];
    const set = (b: BackendSet): SetTuple => {
      const earlier = order.indexOf(b);
      order.push(b);
      if (earlier >= 0) return earlier;
      for (const x of b.backends) {
        if (seen[x.id]) continue;
        seen[x.id] = 1;
        backends.push([x.id, x.address, x.port, x.nodeName, x.zone, x.local, x.terminating]);
      }
      return [b.onEmpty, b.backends.map((x) => x.id)];
    };
    services.push([
      s.key, s.namespace, s.name, s.portName, s.protocol, s.family, s.id,
      s.frontends.map((f): [Frontend['kind'], string, number] => [f.kind, f.address, f.port]),
      [set(s.internal), set(s.cluster), set(s.external)],
      s.affinityTimeout, s.sourceRanges, s.preserveSource, s.topology,
    ]);
  }
  return { generation: desired.generation, nodePortAddresses: desired.nodePortAddresses, backends, services, config };
}

/** As the model parses it at validation: the IPv4 bits in a signed int32, 0 for IPv6. */
const v4of = (address: string) => Math.max(0, ipv4ToUint32(address)) | 0;

export function decodePlan(p: CompactPlan): DesiredDataplane {
  const byId = new Map<number, PlannedBackend>();
  for (const [id, address, port, nodeName, zone, local, terminating] of p.backends) {
    byId.set(id, { id, address, v4: v4of(address), port, nodeName, zone, local, terminating });
  }
  const services = new Map<string, PlannedService>();
  for (const [key, namespace, name, portName, protocol, family, id, fes, sets, affinityTimeout, sourceRanges, preserveSource, topology] of p.services) {
    const made: BackendSet[] = [];
    for (const t of sets) {
      made.push(typeof t === 'number'
        ? made[t]!
        : { onEmpty: t[0], backends: t[1].map((b) => { const x = byId.get(b); if (!x) throw new Error(`state file: service ${key} names backend ${b}, which it does not hold`); return x; }) });
    }
    services.set(key, {
      key, namespace, name, portName, protocol, family, id,
      frontends: fes.map(([kind, address, port]) => ({ kind, address, v4: v4of(address), port })),
      internal: made[0]!, cluster: made[1]!, external: made[2]!,
      affinityTimeout, sourceRanges, preserveSource, maglev: null, topology,
    });
  }
  return { generation: p.generation, services, healthChecks: new Map(), nodePortAddresses: p.nodePortAddresses };
}

/** An upper bound of the backends the plan names (with repeats), and the largest backend ID. */
export function backendRoom(desired: DesiredDataplane): { count: number; maxId: number } {
  let count = 0;
  let maxId = 0;
  for (const s of desired.services.values()) {
    for (const set of [s.internal, s.cluster, s.external]) {
      count += set.backends.length;
      for (const b of set.backends) if (b.id > maxId) maxId = b.id;
    }
  }
  return { count, maxId };
}
