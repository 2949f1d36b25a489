// The endpoints of one service port in one family, joined from every slice of
// the service: a slice port matches by name and protocol (this is how named
// targetPorts resolve: the EndpointSlice carries the number). Pure.
import type { IPFamily, Protocol, SliceInfo } from '../model/types.js';
import { compareIP } from '../util/ip.js';
import type { PortEndpoint } from './topology.js';

function better(a: PortEndpoint, b: PortEndpoint): boolean {
  if (a.local !== b.local) return a.local;
  if (a.ready !== b.ready) return a.ready;
  if (a.serving !== b.serving) return a.serving;
  return false;
}

export function compareEndpoints(a: { address: string; port: number }, b: { address: string; port: number }): number {
  return compareIP(a.address, b.address) || a.port - b.port;
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
  const byAddr = new Map<string, PortEndpoint>();
  const ordered = slices.length > 1 ? [...slices].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) : slices;
  for (const slice of ordered) {
    if (slice.family !== family) continue;
    const port = slice.ports.find((p) => p.name === portName && p.protocol === protocol);
    if (!port) continue;
    for (const ep of slice.endpoints) {
      // A literal, not a spread: one hidden class for every endpoint, and this runs per endpoint.
      const pe: PortEndpoint = {
        address: ep.address,
        ready: ep.ready,
        serving: ep.serving,
        terminating: ep.terminating,
        nodeName: ep.nodeName,
        zone: ep.zone,
        zoneHints: ep.zoneHints,
        nodeHints: ep.nodeHints,
        port: port.port,
        local: ep.nodeName !== null && ep.nodeName === nodeName,
      };
      const k = `${ep.address}/${port.port}`;
      const have = byAddr.get(k);
      if (!have || better(pe, have)) byAddr.set(k, pe);
    }
  }
  return [...byAddr.values()].sort(compareEndpoints);
}
