// The endpoints of one service port in one family, joined from every slice of
// the service: a slice port matches by name and protocol (this is how named
// targetPorts resolve: the EndpointSlice carries the number). Pure.
import type { IPFamily, Protocol, SliceInfo } from '../model/types.js';
import { ipv6Words } from '../util/ip.js';
import type { PortEndpoint } from './topology.js';

function better(a: PortEndpoint, b: PortEndpoint): boolean {
  if (a.local !== b.local) return a.local;
  if (a.ready !== b.ready) return a.ready;
  if (a.serving !== b.serving) return a.serving;
  return false;
}

/** Scratch for comparing two IPv6 addresses without allocating. */
const words = new Uint32Array(8);

function compareIPv6(a: string, b: string): number {
  ipv6Words(a, words, 0);
  ipv6Words(b, words, 4);
  for (let i = 0; i < 4; i++) if (words[i] !== words[i + 4]) return words[i]! - words[i + 4]!;
  return 0;
}

/** Address, then port; IPv4 by number (`v4` read unsigned), IPv6 (`v4` 0) by bytes. Both endpoints of one family. */
export function compareEndpoints(a: PortEndpoint, b: PortEndpoint): number {
  if (a.v4 !== b.v4) return (a.v4 >>> 0) - (b.v4 >>> 0);
  return (a.v4 === 0 && a.address !== b.address ? compareIPv6(a.address, b.address) : 0) || a.port - b.port;
}

function sameEndpoint(a: PortEndpoint, b: PortEndpoint): boolean {
  return a.v4 === b.v4 && a.port === b.port && a.address === b.address;
}

/**
 * The same address and port can appear in two slices (during a slice
 * rebalance, say). It is used once: a local copy wins (as in kube-proxy),
 * then a ready one, then a serving one, then the slice whose name sorts first.
 * Result sorted by address, then port.
 */
export function endpointsForPort(
  slices: readonly SliceInfo[],
  family: IPFamily,
  portName: string,
  protocol: Protocol,
  nodeName: string,
): PortEndpoint[] {
  const all: PortEndpoint[] = [];
  const ordered = slices.length > 1 ? [...slices].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) : slices;
  for (const slice of ordered) {
    if (slice.family !== family) continue;
    const port = slice.ports.find((p) => p.name === portName && p.protocol === protocol);
    if (!port) continue;
    for (const ep of slice.endpoints) {
      // A literal, not a spread: one hidden class for every endpoint, and this runs per endpoint.
      all.push({
        address: ep.address,
        v4: ep.v4,
        ready: ep.ready,
        serving: ep.serving,
        terminating: ep.terminating,
        nodeName: ep.nodeName,
        zone: ep.zone,
        zoneHints: ep.zoneHints,
        nodeHints: ep.nodeHints,
        port: port.port,
        local: ep.nodeName !== null && ep.nodeName === nodeName,
        backend: null,
      });
    }
  }
  // The sort is stable: copies of one address and port stay in slice order,
  // so the first copy is kept unless a later one is better.
  all.sort(compareEndpoints);
  let n = 0;
  for (const pe of all) {
    if (n > 0 && sameEndpoint(all[n - 1]!, pe)) {
      if (better(pe, all[n - 1]!)) all[n - 1] = pe;
    } else {
      all[n++] = pe;
    }
  }
  all.length = n;
  return all;
}
