// Where a local backend's pod is plugged into the node: the host-side veth
// its frames must be redirected into, the pod's MAC and the gateway MAC the
// pod expects as the source (bpf/lib/redirect-local.h). Pure: it reads a
// snapshot of the node's links, routes, neighbours and bridge forwarding
// entries (read by local-redirect.ts with one `ip -batch` and `bridge`;
// links with devices.ts's parser), indexed once per refresh (indexSnapshot), and
// answers per address, with the reason when it cannot.
//
// The rule, for an address A:
// 1. the most specific main-table route to A, which must be direct (no
//    gateway: the pod is on a link of this node), names device D;
// 2. the neighbour entry for A on D gives the pod's MAC (none yet, or
//    FAILED/INCOMPLETE: not known, the stack's path resolves it);
// 3. D is the veth itself (routed CNIs: Calico, Cilium, kindnet), or a
//    bridge (the lab's br0, flannel's cni0) whose forwarding entry for that
//    MAC names the port: the veth;
// 4. the source MAC is D's: the pod's gateway, as forwarding would write it;
// 5. the veth must take redirected frames (its peer runs NAPI): asked of
//    the kernel by the caller (`takesRedirect`).
import { canonicalIP, cidrContains, familyOf, parseCidr, type Cidr } from '../../util/ip.js';
import type { LinkInfo } from './devices.js';

/** A link as devices.ts's parseIpAddressJson reads it (`ip -j -d address show`): one parser for both. */
export type SnapLink = LinkInfo;
export interface SnapRoute { dst: Cidr; dev: string; direct: boolean }
export interface SnapNeigh { address: string; dev: string; mac: string; usable: boolean }
export interface SnapFdb { mac: string; port: string; bridge: string }

export interface NodeNetSnapshot {
  links: SnapLink[];
  routes: SnapRoute[];
  neighbours: SnapNeigh[];
  fdb: SnapFdb[];
}

export interface LocalEndpoint {
  address: string;
  /** The host-side veth. */
  ifindex: number;
  device: string;
  /** The pod's MAC. */
  mac: string;
  /** The MAC of the device holding the pod's route. */
  srcMac: string;
}

export type Resolution = { ok: true; ep: LocalEndpoint } | { ok: false; reason: string };

/** Why a veth cannot take redirected frames, or null when it can. */
export type RedirectCheck = (link: SnapLink) => string | null;

const normMac = (m: string) => m.toLowerCase();

/**
 * A snapshot indexed once per refresh, so each backend address costs a few
 * map lookups instead of scans of every link, neighbour and bridge entry
 * (a node with hundreds of pods has as many of each).
 */
export interface IndexedSnapshot {
  links: ReadonlyMap<string, SnapLink>;
  /** "address%dev" (canonical address) -> entry. */
  neighbours: ReadonlyMap<string, SnapNeigh>;
  /** "bridge mac" -> the port that learned it (entries of the bridge device itself left out). */
  fdb: ReadonlyMap<string, string>;
  /** Host routes (/32, /128) by canonical address: the per-pod routes of routed CNIs. */
  hostRoutes: ReadonlyMap<string, SnapRoute>;
  /** The other routes, most specific first. */
  netRoutes: readonly SnapRoute[];
}

const neighKey = (address: string, dev: string) => `${canonicalIP(address) ?? address}%${dev}`;

export function indexSnapshot(snap: NodeNetSnapshot): IndexedSnapshot {
  const links = new Map(snap.links.map((l) => [l.name, l]));
  const neighbours = new Map(snap.neighbours.map((n) => [neighKey(n.address, n.dev), n]));
  const fdb = new Map<string, string>();
  for (const e of snap.fdb) {
    const k = `${e.bridge} ${normMac(e.mac)}`;
    if (e.port !== e.bridge && !fdb.has(k)) fdb.set(k, e.port);
  }
  const hostRoutes = new Map<string, SnapRoute>();
  const netRoutes: SnapRoute[] = [];
  for (const r of snap.routes) {
    const host = r.dst.prefix === (r.dst.family === 'IPv4' ? 32 : 128);
    if (host) hostRoutes.set(canonicalIP(r.dst.text.split('/')[0]!) ?? r.dst.text, r);
    else netRoutes.push(r);
  }
  netRoutes.sort((a, b) => b.dst.prefix - a.dst.prefix);
  return { links, neighbours, fdb, hostRoutes, netRoutes };
}

/** The most specific route to `address` (main table, unicast). */
function routeTo(address: string, idx: IndexedSnapshot): SnapRoute | null {
  return idx.hostRoutes.get(canonicalIP(address) ?? address) ?? idx.netRoutes.find((r) => cidrContains(r.dst, address)) ?? null;
}

export function resolveLocalEndpoint(address: string, snap: IndexedSnapshot, takesRedirect: RedirectCheck): Resolution {
  const no = (reason: string): Resolution => ({ ok: false, reason });
  const route = routeTo(address, snap);
  if (!route) return no('no route to it');
  if (!route.direct) return no(`routed through a gateway (dev ${route.dev}), not on a link of this node`);
  const dev = snap.links.get(route.dev);
  if (!dev) return no(`its route's device ${route.dev} is gone`);
  const neigh = snap.neighbours.get(neighKey(address, dev.name));
  if (!neigh || !neigh.usable) return no(`no usable neighbour entry on ${dev.name} yet`);
  let port = dev;
  if (dev.kind === 'bridge') {
    const name = snap.fdb.get(`${dev.name} ${normMac(neigh.mac)}`);
    const p = name !== undefined ? snap.links.get(name) : undefined;
    if (!p) return no(`no forwarding entry on bridge ${dev.name} for its MAC ${neigh.mac}`);
    port = p;
  }
  if (port.kind !== 'veth') return no(`${port.name} is not a veth (${port.kind || 'a physical device'})`);
  const why = takesRedirect(port);
  if (why) return no(why);
  return { ok: true, ep: { address, ifindex: port.ifindex, device: port.name, mac: normMac(neigh.mac), srcMac: normMac(dev.mac) } };
}

// ---- Parsing `ip -j` and `bridge -j` output ----------------------------------

/**
 * The main table's unicast routes (local, broadcast, blackhole, ... are not
 * ways to a pod) of an `ip -j route show` listing. `route show table all`
 * lists every table and both families: a main-table route carries no `table`
 * field (with `-d`, "main"); the others name theirs ("local", "100"). An
 * IPv6 route always carries `pref` (the kernel puts RTA_PREF on each), an IPv4
 * one never: that tells the family of a `default` route without a gateway.
 * `family`: that of a one-family listing (`ip -4`/`ip -6`), when known.
 */
export function parseRoutes(text: string, family?: 4 | 6): SnapRoute[] {
  const raw = JSON.parse(text) as { dst: string; dev?: string; gateway?: string; via?: unknown; type?: string; table?: string; pref?: string; nexthops?: unknown[] }[];
  const out: SnapRoute[] = [];
  for (const r of raw) {
    if ((r.table !== undefined && r.table !== 'main') || (r.type !== undefined && r.type !== 'unicast') || !r.dev) continue;
    const fam = family ?? routeFamily(r);
    const text = r.dst === 'default' ? (fam === 4 ? '0.0.0.0/0' : '::/0') : r.dst.includes('/') ? r.dst : `${r.dst}/${fam === 4 ? 32 : 128}`;
    const dst = parseCidr(text);
    // `via`: a gateway of the other family (an IPv4 route via an IPv6 next hop).
    if (dst) out.push({ dst, dev: r.dev, direct: r.gateway === undefined && r.via === undefined && r.nexthops === undefined });
  }
  return out;
}

function routeFamily(r: { dst: string; gateway?: string; pref?: string }): 4 | 6 {
  const known = familyOf(r.dst.split('/')[0]!) ?? (r.gateway !== undefined ? familyOf(r.gateway) : null);
  if (known) return known === 'IPv4' ? 4 : 6;
  return r.pref !== undefined ? 6 : 4;
}

/**
 * The top-level arrays and objects of a text holding several in a row, as
 * their texts: `ip -j -batch` prints one per line of input, and a value may
 * span lines or share one, so newlines say nothing. Throws on anything else
 * at the top level and on a value left open.
 */
export function splitJsonValues(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22 && depth > 0) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (depth++ === 0) start = i;
    } else if (c === 0x5d || c === 0x7d) {
      if (depth === 0) throw new Error(`unbalanced JSON at offset ${i}`);
      if (--depth === 0) out.push(text.slice(start, i + 1));
    } else if (depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      throw new Error(`not a JSON array or object at offset ${i}`);
    }
  }
  if (depth !== 0 || inString) throw new Error('JSON value left open at the end');
  return out;
}

/** Neighbour states whose MAC must not be used: the kernel itself would not send to it. */
export const UNUSABLE_NEIGH_STATES: ReadonlySet<string> = new Set(['FAILED', 'INCOMPLETE', 'NOARP', 'NONE']);

/** `ip -j neigh show`: states in which the MAC may be used (the kernel itself would send to it). */
export function parseNeighbours(text: string): SnapNeigh[] {
  const raw = JSON.parse(text) as { dst: string; dev: string; lladdr?: string; state?: string[] }[];
  return raw.filter((n) => familyOf(n.dst) !== null).map((n) => ({
    address: n.dst, dev: n.dev, mac: n.lladdr ?? '', usable: n.lladdr !== undefined && !(n.state ?? []).some((s) => UNUSABLE_NEIGH_STATES.has(s)),
  }));
}

/** `bridge -j fdb show`: the learned and static entries of bridge ports. */
export function parseFdb(text: string): SnapFdb[] {
  const raw = JSON.parse(text) as { mac: string; ifname: string; master?: string }[];
  return raw.filter((e) => e.master !== undefined).map((e) => ({ mac: e.mac, port: e.ifname, bridge: e.master! }));
}
