// Planned services and backends for dataplane tests and benchmarks, built
// the way the planner builds them (addresses parsed once, into `v4`).
import type { BackendSet, Frontend, PlannedBackend, PlannedService } from '../../src/planner/types.js';
import { ipv4ToUint32 } from '../../src/util/ip.js';

const v4of = (address: string) => Math.max(0, ipv4ToUint32(address)) | 0;

export function plannedBackend(id: number, address: string, port = 8080, extra: Partial<PlannedBackend> = {}): PlannedBackend {
  return { id, address, v4: v4of(address), port, nodeName: 'n1', zone: null, local: false, terminating: false, ...extra };
}

export function frontend(kind: Frontend['kind'], address: string, port: number): Frontend {
  return { kind, address, v4: v4of(address), port };
}

export interface ServiceShape {
  id: number;
  backends: PlannedBackend[];
  frontends: Frontend[];
  namespace?: string;
  /** A different backend list (and drop when empty) for external traffic. */
  localExternal?: PlannedBackend[];
  affinity?: boolean;
  protocol?: PlannedService['protocol'];
}

export function plannedService(s: ServiceShape): PlannedService {
  const ns = s.namespace ?? 'default';
  const internal: BackendSet = { backends: s.backends, onEmpty: 'reject' };
  const external: BackendSet = s.localExternal ? { backends: s.localExternal, onEmpty: 'drop' } : internal;
  return {
    key: `${ns}/s${s.id}:/IPv4`, namespace: ns, name: `s${s.id}`, portName: '', protocol: s.protocol ?? 'TCP', family: 'IPv4', id: s.id,
    frontends: s.frontends, internal, external, cluster: internal, affinityTimeout: s.affinity ? 10800 : null,
    sourceRanges: [], preserveSource: false, maglev: null, topology: '',
  };
}
