// The small world the rule-mode unit tests (nftables, iptables) share: ClusterIP
// services on 10.96.0.<id>:80 with endpoints on :8080, one node address, and a
// client pod, so a case reads the same in both modes.
import type { Dataplane } from '../../src/dataplane/types.js';
import type { DesiredDataplane, PlannedService } from '../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from './planned.js';

/** The plan holding exactly `list`; the node's one address serves NodePorts. */
export function desired(list: PlannedService[]): DesiredDataplane {
  return { generation: 1, services: new Map(list.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: ['172.18.0.11'], IPv6: [] } };
}

/** ClusterIP 10.96.0.<id>:80 with an endpoint on :8080 at each of `backends`. */
export const svc = (id: number, backends: string[], extra: { affinity?: boolean } = {}): PlannedService =>
  plannedService({ id, frontends: [frontend('ClusterIP', `10.96.0.${id}`, 80)], backends: backends.map((a, i) => plannedBackend(id * 10 + i, a)), ...extra });

/** A new TCP connection from a pod that is not an endpoint, to port 80 of `dst`. */
export const fromPod = (dst: string) => ({ src: '10.244.1.99', dst, proto: 'TCP' as const, port: 80 });

/** What a fresh dataplane over an empty model holds after one full sync of `d`: what any sequence of syncs to `d` must leave. */
export async function fromScratch(fresh: { dp: Dataplane; fake: { model: { dump(): string } } }, d: DesiredDataplane): Promise<string> {
  await fresh.dp.sync(d, { full: true, changed: new Set() });
  return fresh.fake.model.dump();
}
