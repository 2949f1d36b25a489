// The two-node cluster the end-to-end suites (clusterip.test.ts for the socket
// hooks, rule-modes.suite.ts for the rule modes) serve their services in:
// endpoints a1 and a2 on node1, b1 on node2 beside the client pod, so every
// service has local and remote endpoints wherever it is reached from.
import type { Lab, LabSpec } from '../../src/lab/lab.js';

export const TWO_NODES: LabSpec['nodes'] = [
  { name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }] },
  { name: 'node2', pods: [{ name: 'b1' }, { name: 'client' }] },
];

/** The endpoint pods a1, a2, b1 with their nodes, as EndpointSlice entries of the family. */
export function endpointPods(lab: Lab, family: 'IPv4' | 'IPv6' = 'IPv4'): { ip: string; node: string }[] {
  return ([['a1', 'node1'], ['a2', 'node1'], ['b1', 'node2']] as const).map(([pod, node]) => {
    const p = lab.pod(pod);
    return { ip: family === 'IPv4' ? p.ipv4 : p.ipv6!, node };
  });
}
