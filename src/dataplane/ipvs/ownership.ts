// Which of the kernel's IPVS state is ours. IPVS has no comments or owners,
// so our ipsets are the record: a virtual server is ours when its frontend is
// in one of our frontend sets (or its port in our NodePort set of its
// protocol), an address on kube-ipvs0 is ours when the device is (alias
// bpfproxy) or when one of our frontend sets holds it. A full sync after a
// restart prunes only these, and `bpfproxy cleanup` removes only these:
// kube-proxy's virtual servers, or anyone else's, are never touched.
//
// fwmark virtual servers (BPX-CLUSTER-POLICY's) are ours when the mark is one
// we make: a service ID in the upper 16 bits, nothing below but (perhaps) the
// masquerade bit, one bit below the drop bit whatever --iptables-masquerade-bit
// was when they were made.
import type { IPFamily } from '../../model/types.js';
import { canonicalIP } from '../../util/ip.js';
import { DROP_BIT, FWMARK_MASK, nodePortSet, setName, SETS } from './names.js';
import type { VirtualServer } from './objects.js';

const FRONTEND_SETS = [SETS.clusterIP, SETS.externalIP, SETS.externalIPLocal, SETS.loadBalancer] as const;

export function isOurVirtualServer(v: VirtualServer, entries: ReadonlySet<string>): boolean {
  const low = v.fwmark & 0xffff;
  if (v.proto === 'fwmark') return (v.fwmark & FWMARK_MASK) !== 0 && (low & (low - 1)) === 0 && low < 1 << DROP_BIT;
  const ipPort = `${v.address},${v.proto.toLowerCase()}:${v.port}`;
  return FRONTEND_SETS.some((id) => entries.has(`${setName(v.family, id)} ${ipPort}`)) ||
    entries.has(`${setName(v.family, nodePortSet(v.proto, false))} ${v.port}`);
}

export function ourVirtualServers(all: ReadonlyMap<string, VirtualServer>, entries: ReadonlySet<string>): Map<string, VirtualServer> {
  return new Map([...all].filter(([, v]) => isOurVirtualServer(v, entries)));
}

/** The frontend addresses our sets hold, per family. */
function frontendAddresses(entries: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  const names = new Set((['IPv4', 'IPv6'] as IPFamily[]).flatMap((f) => FRONTEND_SETS.map((id) => setName(f, id))));
  for (const e of entries) {
    const [set, entry] = e.split(' ');
    if (names.has(set!)) out.add(entry!.slice(0, entry!.lastIndexOf(',')));
  }
  return out;
}

export function ourAddresses(onDevice: readonly string[], deviceIsOurs: boolean, entries: ReadonlySet<string>): Set<string> {
  const canonical = onDevice.map((a) => canonicalIP(a) ?? a);
  if (deviceIsOurs) return new Set(canonical);
  const ours = frontendAddresses(entries);
  return new Set(canonical.filter((a) => ours.has(a)));
}
