// From a LabSpec to the lab's layout (who gets which namespace, address and
// device) and to the list of commands that builds it. Pure: no I/O here, so the
// plan can be checked without root.
import { join } from 'node:path';
import * as plan from './plan.js';
import { LabError } from './commands.js';

export interface LabSpec {
  /** sideLink: a second link from the node (eth1, 172.19.N.1) straight to the external client (sn<N>, 172.19.N.100); needs `external`. */
  nodes: { name: string; pods: { name: string; ipv6?: boolean }[]; sideLink?: boolean }[];
  /** Adds the external client namespace on the wire (172.18.0.100). */
  external?: boolean;
  /** Gives nodes, the external client and (unless they say otherwise) pods IPv6 addresses too. */
  ipv6?: boolean;
}

export interface LabPod {
  name: string;
  /** Name of the node the pod runs on. */
  node: string;
  netns: string;
  ipv4: string;
  ipv6?: string;
  /** Node-side end of the pod's veth, in the node's namespace. */
  hostVeth: string;
}

export interface LabNode {
  name: string;
  /** 1-based; the node's addresses derive from it. */
  index: number;
  netns: string;
  /** The cgroup the node's pods, pod servers and clients run in: attach cgroup programs here. */
  cgroup: string;
  /** Empty bpffs directory for the proxy under test to pin into. */
  bpffs: string;
  /** Wire addresses (device `eth0` in the node namespace). */
  ipv4: string;
  ipv6?: string;
  podCidrV4: string;
  podCidrV6?: string;
  /** The node's address on its pod bridge `br0`, the pods' next hop. */
  gatewayV4: string;
  gatewayV6?: string;
  /** The wire-side end of the node's uplink, in the wire namespace. */
  wirePort: string;
  /** The node's second link (spec `sideLink`): `device` in the node, `peerDevice` in the external client, one /24 between them. IPv4 only. */
  side?: { device: string; ipv4: string; peerDevice: string; peerV4: string };
  pods: LabPod[];
}

export interface LabExternal {
  netns: string;
  cgroup: string;
  ipv4: string;
  ipv6?: string;
}

export interface LabLayout {
  runId: string;
  ipv6: boolean;
  wireNetns: string;
  cgroupRoot: string;
  bpffsRoot: string;
  nodes: LabNode[];
  external?: LabExternal;
}

/** Commands run in one namespace through `ip -n NETNS -batch -`. */
export interface IpBatch {
  netns: string;
  commands: string[];
}

export interface BuildSteps {
  namespaces: string[];
  /** Written before any device exists, so new devices inherit them (no IPv6 DAD delay). */
  sysctls: { netns: string; values: [key: string, value: string][] }[];
  /** Each stage's batches run in parallel; a stage starts when the previous one is done. */
  stages: IpBatch[][];
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

/** Validates the spec and assigns namespaces, addresses, cgroups and bpffs directories. */
export function layoutLab(spec: LabSpec, runId: string, cgroupMount: string, bpffsMount: string): LabLayout {
  if (!plan.RUN_ID_PATTERN.test(runId)) throw new LabError(`lab: runId "${runId}" must be 6 lowercase hex digits`);
  if (!Array.isArray(spec.nodes) || spec.nodes.length === 0) throw new LabError('lab spec: nodes must list at least one node');
  if (spec.nodes.length > plan.MAX_NODES) throw new LabError(`lab spec: nodes has ${spec.nodes.length} entries, at most ${plan.MAX_NODES} fit the address plan`);
  const names = new Set<string>();
  const claim = (name: unknown, field: string): void => {
    if (typeof name !== 'string' || !NAME.test(name)) throw new LabError(`lab spec: ${field} "${String(name)}" must be a DNS-1123 name`);
    if (names.has(name)) throw new LabError(`lab spec: ${field} "${name}" is used twice (node and pod names share one namespace)`);
    names.add(name);
  };
  const labRoot = plan.labDirName(runId);
  const cgroupRoot = join(cgroupMount, labRoot);
  const bpffsRoot = join(bpffsMount, labRoot);
  const nodes = spec.nodes.map((ns, ni): LabNode => {
    const n = ni + 1;
    claim(ns.name, `nodes[${ni}].name`);
    if (!Array.isArray(ns.pods)) throw new LabError(`lab spec: nodes[${ni}].pods must be a list`);
    if (ns.pods.length > plan.MAX_PODS_PER_NODE) {
      throw new LabError(`lab spec: nodes[${ni}].pods has ${ns.pods.length} entries, at most ${plan.MAX_PODS_PER_NODE} fit a node's /24`);
    }
    const pods = ns.pods.map((ps, pi): LabPod => {
      claim(ps.name, `nodes[${ni}].pods[${pi}].name`);
      const i = pi + 1;
      const v6 = ps.ipv6 ?? spec.ipv6 ?? false;
      return {
        name: ps.name,
        node: ns.name,
        netns: plan.podNetns(runId, n, i),
        ipv4: plan.podV4(n, i),
        ...(v6 ? { ipv6: plan.podV6(n, i) } : {}),
        hostVeth: plan.hostVethOfPod(i),
      };
    });
    if (ns.sideLink && !spec.external) throw new LabError(`lab spec: nodes[${ni}].sideLink needs external: true (the link ends in the external client)`);
    const side = ns.sideLink ? { device: plan.NODE_SIDE_DEVICE, ipv4: plan.nodeSideV4(n), peerDevice: plan.externalSideDevice(n), peerV4: plan.externalSideV4(n) } : undefined;
    return { name: ns.name, index: n, netns: plan.nodeNetns(runId, n), cgroup: join(cgroupRoot, ns.name), bpffs: join(bpffsRoot, ns.name),
      ipv4: plan.nodeWireV4(n), podCidrV4: plan.podCidrV4(n), gatewayV4: plan.podGatewayV4(n), wirePort: plan.wirePortOfNode(n), ...(side ? { side } : {}), pods };
  });
  // The wire and the nodes carry IPv6 as soon as anything in the lab does.
  const ipv6 = spec.ipv6 === true || nodes.some((node) => node.pods.some((pod) => pod.ipv6 !== undefined));
  if (ipv6) {
    for (const node of nodes) {
      node.ipv6 = plan.nodeWireV6(node.index);
      node.podCidrV6 = plan.podCidrV6(node.index);
      node.gatewayV6 = plan.podGatewayV6(node.index);
    }
  }
  const external: LabExternal | undefined = spec.external
    ? { netns: plan.externalNetns(runId), cgroup: join(cgroupRoot, plan.OUTSIDE_CGROUP), ipv4: plan.EXTERNAL_V4, ...(ipv6 ? { ipv6: plan.EXTERNAL_V6 } : {}) }
    : undefined;
  return { runId, ipv6, wireNetns: plan.wireNetns(runId), cgroupRoot, bpffsRoot, nodes, ...(external ? { external } : {}) };
}

/** Every namespace of the layout, wire first. */
export function labNamespaces(layout: LabLayout): string[] {
  return [layout.wireNetns, ...(layout.external ? [layout.external.netns] : []),
    ...layout.nodes.flatMap((node) => [node.netns, ...node.pods.map((pod) => pod.netns)])];
}

/** The cgroup of processes on no node (external client, wire namespace). */
export const outsideCgroup = (layout: LabLayout): string => join(layout.cgroupRoot, plan.OUTSIDE_CGROUP);

/** Every cgroup of the layout, leaves first, the lab's root last. */
export function labCgroups(layout: LabLayout): string[] {
  return [...layout.nodes.map((node) => node.cgroup), outsideCgroup(layout), layout.cgroupRoot];
}

export function buildSteps(layout: LabLayout): BuildSteps {
  const { nodes, external } = layout;
  const D = plan.DEVICES;
  const noDad: [string, string][] = [
    ['net/ipv6/conf/all/accept_dad', '0'], ['net/ipv6/conf/default/accept_dad', '0'], ['net/ipv6/conf/default/accept_ra', '0'],
  ];
  const routing: [string, string][] = [
    ['net/ipv4/ip_forward', '1'], ['net/ipv6/conf/all/forwarding', '1'],
    // Traffic that a node sends back out of the interface it came in on (SNAT'd NodePort) is not a redirect.
    ['net/ipv4/conf/all/send_redirects', '0'], ['net/ipv4/conf/default/send_redirects', '0'],
  ];
  const sysctls = labNamespaces(layout).map((netns) => ({
    netns,
    values: nodes.some((node) => node.netns === netns) ? [...noDad, ...routing] : noDad,
  }));

  // Stage 1: switches and cables. Each veth is created with both ends already
  // in their lab namespaces, so no device ever appears in the root namespace.
  const bridge = (name: string) => [`link add ${name} type bridge mcast_snooping 0`, `link set ${name} up`];
  const cable = (local: string, bridgeName: string, peerNetns: string) =>
    [`link add ${local} type veth peer name ${D.uplink} netns ${peerNetns}`, `link set ${local} master ${bridgeName}`, `link set ${local} up`];
  const wire: IpBatch = {
    netns: layout.wireNetns,
    commands: ['link set lo up', ...bridge(D.wireBridge),
      ...nodes.flatMap((node) => cable(node.wirePort, D.wireBridge, node.netns)),
      ...(external ? cable(plan.WIRE_PORT_OF_EXTERNAL, D.wireBridge, external.netns) : [])],
  };
  const nodeBridges: IpBatch[] = nodes.map((node) => ({
    netns: node.netns,
    commands: ['link set lo up', ...bridge(D.podBridge),
      ...node.pods.flatMap((pod) => cable(pod.hostVeth, D.podBridge, pod.netns)),
      // Both ends created in lab namespaces, as every cable.
      ...(node.side && external ? [`link add ${node.side.device} type veth peer name ${node.side.peerDevice} netns ${external.netns}`] : []),
      `addr add ${node.gatewayV4}/24 dev ${D.podBridge}`,
      ...(node.gatewayV6 ? [`addr add ${node.gatewayV6}/64 dev ${D.podBridge} nodad`] : [])],
  }));

  // Stage 2: addresses and routes on the uplinks created in stage 1.
  const uplink = (v4: string, v6: string | undefined) => [
    'link set lo up', `link set ${D.uplink} up`, `addr add ${v4}/24 dev ${D.uplink}`,
    ...(v6 ? [`addr add ${v6}/64 dev ${D.uplink} nodad`] : []),
  ];
  const nodeRoutes: IpBatch[] = nodes.map((node) => ({
    netns: node.netns,
    commands: [
      ...uplink(node.ipv4, node.ipv6),
      ...(node.side ? [`link set ${node.side.device} up`, `addr add ${node.side.ipv4}/24 dev ${node.side.device}`] : []),
      ...nodes.filter((other) => other !== node).flatMap((other) => [
        `route add ${other.podCidrV4} via ${other.ipv4}`,
        ...(other.podCidrV6 && other.ipv6 ? [`route add ${other.podCidrV6} via ${other.ipv6}`] : []),
      ]),
      // The node's own sockets need a route to service addresses before a
      // netfilter dataplane can DNAT them; untranslated traffic dies on br0.
      `route add ${plan.SERVICE_CIDR_V4} dev ${D.podBridge}`,
      ...(layout.ipv6 ? [`route add ${plan.SERVICE_CIDR_V6} dev ${D.podBridge}`] : []),
    ],
  }));
  const podRoutes: IpBatch[] = nodes.flatMap((node) => node.pods.map((pod) => ({
    netns: pod.netns,
    commands: [
      'link set lo up', `link set ${D.uplink} up`, `addr add ${pod.ipv4}/24 dev ${D.uplink}`,
      ...[plan.POD_CIDR_V4, plan.WIRE_CIDR_V4, plan.SERVICE_CIDR_V4, ...(nodes.some((n) => n.side) ? [plan.SIDE_CIDR_V4] : [])]
        .map((dst) => `route add ${dst} via ${node.gatewayV4}`),
      ...(pod.ipv6 && node.gatewayV6
        ? [`addr add ${pod.ipv6}/64 dev ${D.uplink} nodad`,
          ...[plan.POD_CIDR_V6, plan.WIRE_CIDR_V6, plan.SERVICE_CIDR_V6].map((dst) => `route add ${dst} via ${node.gatewayV6}`)]
        : []),
    ],
  })));
  const externalUplink: IpBatch[] = external ? [{ netns: external.netns, commands: [...uplink(external.ipv4, external.ipv6),
    ...nodes.flatMap((node) => (node.side ? [`link set ${node.side.peerDevice} up`, `addr add ${node.side.peerV4}/24 dev ${node.side.peerDevice}`] : []))] }] : [];

  return {
    namespaces: labNamespaces(layout),
    sysctls,
    stages: [[wire, ...nodeBridges], [...nodeRoutes, ...podRoutes, ...externalUplink]],
  };
}
