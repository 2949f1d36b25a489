// Graceful termination of TCP real servers, as kube-proxy's ipvs mode does it
// (pkg/proxy/ipvs/graceful_termination.go): an endpoint that leaves a virtual
// server which stays is not deleted at once, which would cut its open
// connections (expire_nodest_conn=1 drops their next packet); its weight goes
// to 0, so no new connection is scheduled to it (expire_quiescent_template=1
// also ends the persistence templates that point to it), and it is deleted
// once IPVS counts no active and no inactive connection to it, checked at a
// sync at most once a minute (kube-proxy's rsCheckDeleteInterval).
// UDP and SCTP real servers go at once, as in kube-proxy: their flows move
// with expire_nodest_conn, and conntrack clearing (mode.ts) does the rest.
// A virtual server that goes (its service gone or without endpoints) takes
// its real servers with it: here a service without endpoints has no virtual
// server (the filter table refuses, render-service.ts), a deviation from
// kube-proxy, which keeps the virtual server and drains its real servers.
//
// What drains is kept here and laid over the planned table before the diff,
// so a draining real server is neither re-added nor deleted by a sync; a
// restarted proxy finds weight-0 real servers in `ipvsadm -S` and keeps them
// draining the same way (the kernel table is the record).
import { compareIP } from '../../util/ip.js';
import { vsKey, type RealServer, type VirtualServer } from './objects.js';

/** kube-proxy: rsCheckDeleteInterval. */
export const DRAIN_CHECK_INTERVAL_MS = 60_000;

const realKey = (r: Pick<RealServer, 'address' | 'port'>) => `${r.address} ${r.port}`;

/** kube-proxy's IsRsGracefulTerminationNeeded, plus fwmark virtual servers (their protocol is the packet's). */
export const drainsOnRemoval = (v: Pick<VirtualServer, 'proto'>) => v.proto === 'TCP' || v.proto === 'fwmark';

export class Draining {
  /** vsKey -> real servers at weight 0, waiting for their connections to end. */
  private readonly byVs = new Map<string, Map<string, RealServer>>();

  get size(): number {
    let n = 0;
    for (const m of this.byVs.values()) n += m.size;
    return n;
  }

  /** The draining real servers, as [vsKey, real] pairs. */
  *entries(): IterableIterator<[string, RealServer]> {
    for (const [k, m] of this.byVs) for (const r of m.values()) yield [k, r];
  }

  /** `v` with its draining real servers added at weight 0 (a copy when there are any). */
  overlay(v: VirtualServer): VirtualServer {
    const d = this.byVs.get(vsKey(v));
    if (!d || d.size === 0) return v;
    const have = new Set(v.reals.map(realKey));
    const extra = [...d.values()].filter((r) => !have.has(realKey(r)));
    if (extra.length === 0) return v;
    const reals = [...v.reals, ...extra].sort((x, y) => compareIP(x.address, y.address) || x.port - y.port);
    return { ...v, reals };
  }

  /**
   * Decides one virtual server's draining after a change from `before` (what
   * the kernel holds, draining real servers included) to `planned`, and
   * returns what the kernel should hold: `planned` with the draining real
   * servers at weight 0. A real server of `before` that `planned` lacks
   * starts (or goes on) draining, unless `expired` says its connections
   * are gone; one that `planned` has again stops draining.
   */
  settle(key: string, before: VirtualServer | undefined, planned: VirtualServer | undefined, expired?: ReadonlySet<string>): VirtualServer | undefined {
    if (!planned || !drainsOnRemoval(planned)) {
      this.byVs.delete(key);
      return planned;
    }
    const wanted = new Set(planned.reals.map(realKey));
    const d = this.byVs.get(key) ?? new Map<string, RealServer>();
    for (const k of [...d.keys()]) if (wanted.has(k)) d.delete(k);
    for (const r of before?.reals ?? []) {
      const k = realKey(r);
      if (wanted.has(k) || d.has(k)) continue;
      d.set(k, { address: r.address, port: r.port, weight: 0 });
    }
    if (expired) for (const k of [...d.keys()]) if (expired.has(`${key} ${k}`)) d.delete(k);
    if (d.size > 0) this.byVs.set(key, d);
    else this.byVs.delete(key);
    return this.overlay(planned);
  }

  /** Every draining real server whose connections `counts` (parseConnectionCounts) says are gone, as "vsKey address port". */
  expired(counts: ReadonlyMap<string, number>): Set<string> {
    const out = new Set<string>();
    for (const [k, r] of this.entries()) {
      const id = `${k} ${realKey(r)}`;
      // A real server the listing does not show is gone already: nothing to wait for.
      if ((counts.get(id) ?? 0) === 0) out.add(id);
    }
    return out;
  }
}

const PROTO: Record<string, VirtualServer['proto']> = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' };

/** "10.0.0.1:80" / "[fd00::1]:80" -> address, port. */
function splitAddrPort(text: string): { address: string; port: number } | null {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  return m ? { address: m[1]!, port: Number(m[2]) } : null;
}

/**
 * `ipvsadm -L -n` -> "vsKey address port" -> ActiveConn + InActConn, keyed as
 * vsKey() and Draining.expired() key them. The listing (ipvsadm.c,
 * print_service_entry): a virtual server line "TCP  10.96.0.1:80 rr ...",
 * "FWM  65536 rr" or "FWM  65536 IPv6 rr", then one line per real server,
 * "  -> 10.244.1.10:8080  Masq  1  0  3" (forward, weight, active, inactive).
 */
export function parseConnectionCounts(text: string, canonical: (a: string) => string | null): Map<string, number> {
  const out = new Map<string, number>();
  let vs: string | null = null;
  for (const line of text.split('\n')) {
    const tk = line.trim().split(/\s+/);
    if (tk[0] === '->') {
      const ap = vs !== null ? splitAddrPort(tk[1] ?? '') : null;
      const address = ap ? canonical(ap.address) : null;
      if (!ap || !address || tk.length < 6) continue; // the header line "-> RemoteAddress:Port ..."
      const active = Number(tk[4]);
      const inactive = Number(tk[5]);
      if (Number.isFinite(active) && Number.isFinite(inactive)) out.set(`${vs} ${address} ${ap.port}`, active + inactive);
      continue;
    }
    if (tk[0] === 'FWM') {
      vs = vsKey({ family: tk[2] === 'IPv6' ? 'IPv6' : 'IPv4', proto: 'fwmark', address: '', port: 0, fwmark: Number(tk[1]) });
      continue;
    }
    const proto = PROTO[tk[0] ?? ''];
    const ap = proto ? splitAddrPort(tk[1] ?? '') : null;
    const address = ap ? canonical(ap.address) : null;
    vs = proto && ap && address ? vsKey({ family: 'IPv4', proto, address, port: ap.port, fwmark: 0 }) : null;
  }
  return out;
}
