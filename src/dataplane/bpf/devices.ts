// The default --devices: which devices of the proxy's network namespace the
// XDP/TC programs attach to when the operator names none. kube-proxy serves
// NodePorts without a device list, so an operator replacing it expects the
// same; Cilium's default is the devices that carry the node's addresses.
//
// The rule (pure, `selectDefaultDevices`): a device is chosen when it holds
// one of the node's IPs: --bind-address when it names one, otherwise every
// global unicast address here (the Node object arrives from the sources
// after the programs are attached, so it cannot decide this at start: the
// devices holding the Node's InternalIP and ExternalIP are added when it
// arrives, `selectNodeDevices` and node-devices.ts). A device is
// never chosen when the programs cannot serve it: loopback, a link without
// Ethernet headers (the programs parse Ethernet: tun, wireguard, ipip), a
// bridge (its traffic is the pods', not the node's uplink) and a port of a
// bridge or bond (the upper device carries the address).
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalIP } from '../../util/ip.js';
import type { Logger } from '../../util/log.js';

export interface LinkAddress {
  address: string;
  /** The kernel's scope: 'global', 'link', 'host'. */
  scope: string;
}

export interface LinkInfo {
  ifindex: number;
  name: string;
  /** The link-layer address ('' when it has none). */
  mac: string;
  /** ip's link_type: 'ether', 'loopback', 'none', ... */
  linkType: string;
  /** ip's linkinfo.info_kind: 'bridge', 'veth', 'bond', ... ('' for a physical device). */
  kind: string;
  /** The bridge or bond this device is a port of ('' when none). */
  master: string;
  addresses: LinkAddress[];
}

export interface DeviceChoice {
  devices: string[];
  /** Devices holding an address that were left out, and why. */
  skipped: { device: string; why: string }[];
  /** What the addresses were matched against. */
  basis: string;
}

/** Why the programs cannot serve this device, or null when they can. */
export function unattachableReason(l: LinkInfo): string | null {
  if (l.linkType === 'loopback') return 'loopback';
  if (l.linkType !== 'ether') return `link type ${l.linkType || 'unknown'}: no Ethernet header for the programs to parse`;
  if (l.kind === 'bridge' || l.kind === 'openvswitch') return 'a bridge (pod traffic, not the node\'s uplink)';
  if (l.master !== '') return `a port of ${l.master} (the address is on the upper device)`;
  return null;
}

const isGlobalUnicast = (a: LinkAddress) => a.scope === 'global';

/**
 * The devices holding the node's addresses: `nodeIPs` when given, else every
 * global unicast address. Sorted by name, so every start logs the same list.
 */
export function selectDefaultDevices(links: readonly LinkInfo[], nodeIPs: readonly string[]): DeviceChoice {
  const wanted = new Set(nodeIPs.map(canonicalIP));
  const holds = wanted.size > 0
    ? (a: LinkAddress) => wanted.has(canonicalIP(a.address))
    : isGlobalUnicast;
  const devices: string[] = [];
  const skipped: DeviceChoice['skipped'] = [];
  for (const l of links) {
    if (!l.addresses.some(holds)) continue;
    const why = unattachableReason(l);
    if (why) skipped.push({ device: l.name, why });
    else devices.push(l.name);
  }
  devices.sort();
  return { devices, skipped, basis: wanted.size > 0 ? `the node IPs ${[...nodeIPs].join(', ')} (--bind-address)` : 'every global unicast address of this network namespace' };
}

/** The Node's address types whose device serves NodePorts from outside (kube-proxy's node IPs come from these). */
export const NODE_DEVICE_ADDRESS_TYPES: readonly string[] = ['InternalIP', 'ExternalIP'];

/** The Node object's InternalIP and ExternalIP addresses, InternalIP first (status.addresses as the model reads them). */
export function nodeDeviceAddresses(addresses: readonly { type: string; address: string }[]): string[] {
  return NODE_DEVICE_ADDRESS_TYPES.flatMap((t) => addresses.filter((a) => a.type === t).map((a) => a.address));
}

export interface NodeDeviceChoice {
  /** Devices holding one of the Node's addresses that the programs can serve, sorted, each with the addresses that chose it. */
  devices: { device: string; addresses: string[] }[];
  /** Devices holding one of them that the programs cannot serve, and why. */
  skipped: { device: string; addresses: string[]; why: string }[];
  /** The Node's addresses no local device holds (an ExternalIP behind a cloud NAT, a stale object). */
  unplaced: string[];
}

/**
 * Issue 7: the devices that carry the Node object's addresses (pure). The
 * default --devices is chosen at start, before any source has listed; this
 * says which devices the Node adds once it is known.
 */
export function selectNodeDevices(links: readonly LinkInfo[], nodeAddresses: readonly string[]): NodeDeviceChoice {
  const byDevice = new Map<LinkInfo, string[]>();
  const unplaced: string[] = [];
  for (const ip of new Set(nodeAddresses.map(canonicalIP).filter((x): x is string => x !== null))) {
    const l = links.find((x) => x.addresses.some((a) => canonicalIP(a.address) === ip));
    if (!l) {
      unplaced.push(ip);
      continue;
    }
    byDevice.set(l, [...(byDevice.get(l) ?? []), ip]);
  }
  const devices: NodeDeviceChoice['devices'] = [];
  const skipped: NodeDeviceChoice['skipped'] = [];
  for (const [l, addresses] of byDevice) {
    const why = unattachableReason(l);
    if (why) skipped.push({ device: l.name, addresses, why });
    else devices.push({ device: l.name, addresses });
  }
  devices.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  return { devices, skipped, unplaced };
}

/**
 * What following the Node changes: attach the devices it needs that are not
 * attached yet, and detach those attached for it alone (`added`) that it no
 * longer needs. Devices chosen at start (`base`) are never detached here.
 */
export function nodeDeviceChanges(base: readonly string[], added: readonly string[], wanted: readonly string[]): { attach: string[]; detach: string[] } {
  const want = new Set(wanted);
  return {
    attach: [...want].filter((d) => !base.includes(d) && !added.includes(d)).sort(),
    detach: added.filter((d) => !want.has(d) && !base.includes(d)).sort(),
  };
}

/**
 * `ip -j -d address show` output -> LinkInfo: the one parser of the node's
 * links, for the default devices and for the local redirect (local-endpoints.ts).
 */
export function parseIpAddressJson(text: string): LinkInfo[] {
  const raw = JSON.parse(text) as {
    ifindex: number; ifname: string; address?: string; link_type?: string; master?: string;
    linkinfo?: { info_kind?: string };
    addr_info?: { local?: string; scope?: string }[];
  }[];
  return raw.map((d) => ({
    ifindex: d.ifindex,
    name: d.ifname,
    mac: (d.address ?? '').toLowerCase(),
    linkType: d.link_type ?? '',
    kind: d.linkinfo?.info_kind ?? '',
    master: d.master ?? '',
    addresses: (d.addr_info ?? []).filter((a) => typeof a.local === 'string').map((a) => ({ address: a.local!, scope: a.scope ?? '' })),
  }));
}

/** What parseIpAddressJson reads. */
export const IP_ADDRESS_ARGV = ['ip', '-j', '-d', 'address', 'show'] as const;

/** The devices of this process's network namespace, with their addresses: once, at start, before anything is served. */
export function readLinks(): LinkInfo[] {
  return parseIpAddressJson(execFileSync('ip', [...IP_ADDRESS_ARGV.slice(1)], { encoding: 'utf8', timeout: 10_000 }));
}

/**
 * Set (to any value) by the test lab in the process that owns a lab, and
 * inherited by what it starts: there a proxy outside a named network
 * namespace (the lab's are named; the root namespace is not) must name its
 * devices, because the root namespace's lead to the machine's real network.
 */
export const LAB_GUARD_ENV = 'BPFPROXY_LAB_OWNER';

/**
 * Whether this process runs in a namespace named under /var/run/netns (the
 * lab's are): compared by the namespace's inode, which needs no access to
 * another process's /proc (pid 1's is refused inside some containers).
 */
function inNamedNetns(): boolean {
  try {
    const me = statSync('/proc/self/ns/net');
    return readdirSync(NETNS_DIR).some((n) => {
      try {
        const s = statSync(join(NETNS_DIR, n));
        return s.ino === me.ino && s.dev === me.dev;
      } catch {
        return false;
      }
    });
  } catch {
    return false; // cannot tell: assume the worst
  }
}
const NETNS_DIR = '/var/run/netns';

/**
 * The devices to attach to: the list given, or for 'auto' the default,
 * logged once with what was left out. Refuses 'auto' outside a named
 * network namespace in a process that owns a test lab (LAB_GUARD_ENV).
 */
export function resolveDevices(
  spec: readonly string[] | 'auto' | undefined, opts: { nodeIPs?: readonly string[]; log: Logger; links?: () => LinkInfo[] },
): string[] {
  if (spec === undefined) return [];
  if (spec !== 'auto') return [...spec];
  if (process.env[LAB_GUARD_ENV] && !inNamedNetns()) {
    throw new Error(`refusing to choose the default --devices outside the lab's network namespaces in a process that runs a test lab (${LAB_GUARD_ENV} is set): its devices lead to the real network; pass --devices explicitly (\`--devices ''\` for none)`);
  }
  const choice = selectDefaultDevices((opts.links ?? readLinks)(), opts.nodeIPs ?? []);
  opts.log.info({ devices: choice.devices, skipped: choice.skipped, basis: choice.basis },
    choice.devices.length > 0
      ? `--devices not given: attaching the XDP/TC programs to ${choice.devices.join(', ')} (devices holding ${choice.basis}); --devices '' for none`
      : `--devices not given and no device here holds ${choice.basis}: the XDP/TC programs are not attached`);
  return choice.devices;
}
