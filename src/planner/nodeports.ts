// Which node addresses NodePort frontends listen on: kube-proxy's
// --nodeport-addresses (pkg/proxy/util/nodeport_addresses.go). Pure.
import type { IPFamily } from '../model/types.js';
import { canonicalIP, cidrContains, compareIP, familyOf, isLinkLocal, isLoopback, parseCidr, type Cidr } from '../util/ip.js';

export interface NodePortAddressInput {
  /** --nodeport-addresses: [] (all), ["primary"], or CIDRs. Validated by the config. */
  spec: readonly string[];
  /** Addresses on this node's interfaces (the proxy's network namespace). */
  localAddresses: readonly string[];
  /** The node's primary IPs, at most one per family (see nodeHostIPs in planner.ts). */
  primaryIPs: readonly string[];
}

/**
 * - unset: every local address. Loopback is left out (kube-proxy's nftables
 *   mode does the same; localhost NodePorts need route_localnet tricks) and so
 *   are IPv6 link-local addresses, which cannot be used without a zone.
 * - "primary": the node's primary IP of each family, when it is a local address.
 * - CIDRs: the local addresses inside them; 0.0.0.0/0 or ::/0 means every
 *   address of that family.
 */
export function selectNodePortAddresses(input: NodePortAddressInput): Record<IPFamily, string[]> {
  const out: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  const add = (ip: string) => {
    const f = familyOf(ip);
    if (f && !out[f].includes(ip)) out[f].push(ip);
  };
  const usable = input.localAddresses.filter((ip) => !isLoopback(ip) && !(familyOf(ip) === 'IPv6' && isLinkLocal(ip)));
  if (input.spec.length === 0) {
    usable.forEach(add);
  } else if (input.spec.length === 1 && input.spec[0] === 'primary') {
    // kube-proxy turns "primary" into <node IP>/32 and /128 CIDRs, so a node
    // IP that is on no local interface gets no NodePort.
    const primary = new Set(input.primaryIPs.map((ip) => canonicalIP(ip)));
    for (const ip of input.localAddresses) if (!isLoopback(ip) && primary.has(canonicalIP(ip))) add(ip);
  } else {
    const cidrs = input.spec.map(parseCidr).filter((c): c is Cidr => c !== null);
    for (const ip of input.localAddresses) {
      if (cidrs.some((c) => c.prefix === 0 ? c.family === familyOf(ip) && !isLoopback(ip) : cidrContains(c, ip))) add(ip);
    }
  }
  out.IPv4.sort(compareIP);
  out.IPv6.sort(compareIP);
  return out;
}
