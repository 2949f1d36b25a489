// Node -> NodeInfo: what the proxy needs from a node (its addresses for
// NodePorts, its labels for topology, its pod CIDRs, whether it is going away).
// Addresses are status written by the kubelet or a cloud controller: one bad
// entry is skipped with a warning rather than losing the whole node.
import type { KubeObject } from './objects.js';
import { familyOf } from '../util/ip.js';
import type { NodeInfo, Validated } from './types.js';
import {
  Findings,
  dns1123SubdomainErrors,
  parseCIDR,
  parseIP,
  readList,
  readObject,
  readString,
  readStringList,
  readStringMap,
  readTimestamp,
  startObject,
} from './validation.js';

/** Address types whose value must be an IP; the others (Hostname, InternalDNS, ExternalDNS) hold names. */
const IP_ADDRESS_TYPES = ['InternalIP', 'ExternalIP'];

export function nodeFromObject(obj: KubeObject): Validated<NodeInfo> {
  const { f, name, meta } = startObject(obj, 'Node', dns1123SubdomainErrors);
  const labels = readStringMap(f, meta.labels, 'metadata.labels');
  const spec = readObject(f, obj.spec, 'spec');
  const status = readObject(f, obj.status, 'status');
  const addresses = readAddresses(f, status.addresses);
  const podCIDRs = readPodCIDRs(f, spec);
  return f.accept<NodeInfo>({
    name,
    labels,
    addresses,
    podCIDRs,
    deleting: readTimestamp(meta.deletionTimestamp) !== null,
  });
}

/**
 * status.addresses with a usable IP, canonical, InternalIP entries first
 * (kube-proxy's choice of node IP), the rest in their order. Entries naming
 * a host rather than an address are left out: nothing can be programmed for them.
 */
function readAddresses(f: Findings, v: unknown): { type: string; address: string }[] {
  const internal: { type: string; address: string }[] = [];
  const rest: { type: string; address: string }[] = [];
  readList(f, v, 'status.addresses').forEach((item, i) => {
    const path = `status.addresses[${i}]`;
    const o = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
    const type = typeof o.type === 'string' ? o.type : '';
    const text = typeof o.address === 'string' ? o.address : '';
    const parsed = parseIP(text);
    if (!parsed) {
      if (type === '' || IP_ADDRESS_TYPES.includes(type)) f.warn(path, `ignored: ${JSON.stringify(item)} is not a valid node address`);
      return;
    }
    (type === 'InternalIP' ? internal : rest).push({ type, address: parsed.ip });
  });
  return [...internal, ...rest];
}

/** spec.podCIDRs (or the older single spec.podCIDR): at most one per family, canonical. */
function readPodCIDRs(f: Findings, spec: Record<string, unknown>): string[] {
  let list = readStringList(f, spec.podCIDRs, 'spec.podCIDRs');
  let path = 'spec.podCIDRs';
  if (list.length === 0) {
    const single = readString(f, spec.podCIDR, 'spec.podCIDR');
    if (single) {
      list = [single];
      path = 'spec.podCIDR';
    }
  }
  const out: string[] = [];
  list.forEach((text, i) => {
    const at = path === 'spec.podCIDR' ? path : `${path}[${i}]`;
    const cidr = parseCIDR(text);
    if (typeof cidr === 'string') f.invalid(at, text, cidr);
    else if (out.includes(cidr.text)) f.duplicate(at, text);
    else out.push(cidr.text);
  });
  const families = new Set(out.map((c) => familyOf(c.split('/')[0] ?? '')));
  if (list.length > 2 || families.size < out.length) {
    f.invalid(path, list, 'may specify no more than one CIDR for each IP family');
  }
  return out;
}
