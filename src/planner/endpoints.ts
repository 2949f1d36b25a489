// The endpoints of one service port in one family, joined from every slice of
// the service: a slice port matches by name and protocol (this is how named
// targetPorts resolve: the EndpointSlice carries the number). Pure.
import { metaPlace, READY, SERVING, strideOf, TERMINATING } from '../model/packed-endpoints.js';
import type { IPFamily, Protocol, SliceInfo } from '../model/types.js';
import type { PortEndpoint } from './topology.js';

function better(a: PortEndpoint, b: PortEndpoint): boolean {
  if (a.local !== b.local) return a.local;
  if (a.ready !== b.ready) return a.ready;
  if (a.serving !== b.serving) return a.serving;
  return false;
}

/** IPv6 addresses by their packed words, read unsigned. */
function compareIPv6(a: PortEndpoint, b: PortEndpoint): number {
  for (let i = 0; i < 4; i++) {
    const x = a.packed[a.at + i]! >>> 0;
    const y = b.packed[b.at + i]! >>> 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/** Address, then port; IPv4 by number (`v4` read unsigned), IPv6 (`v4` 0) by bytes. Both endpoints of one family. */
export function compareEndpoints(a: PortEndpoint, b: PortEndpoint): number {
  if (a.v4 !== b.v4) return (a.v4 >>> 0) - (b.v4 >>> 0);
  return (a.v4 === 0 ? compareIPv6(a, b) : 0) || a.port - b.port;
}

function sameEndpoint(a: PortEndpoint, b: PortEndpoint): boolean {
  return a.port === b.port && compareEndpoints(a, b) === 0;
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
    const packed = slice.packed;
    const stride = strideOf(family);
    for (let at = 0; at < packed.length; at += stride) {
      const meta = packed[at + stride - 1]!;
      const place = metaPlace(meta);
      // A literal: one hidden class for every endpoint, and this runs per endpoint.
      all.push({
        packed,
        at,
        v4: family === 'IPv4' ? packed[at]! : 0,
        ready: (meta & READY) !== 0,
        serving: (meta & SERVING) !== 0,
        terminating: (meta & TERMINATING) !== 0,
        place,
        port: port.port,
        local: place.nodeName !== null && place.nodeName === nodeName,
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
