// The lab node the packet NAT cases (xdp-nat-cases.ts) run in, shared by
// test/bpf/xdp-nat.test.ts, test/bpf/xdp-maglev.test.ts and bench/packets.ts:
// a two-node lab with node1's neighbours resolved, the MACs the cases name,
// and the steps that put a case's maps in place.
import { NAT_KEY } from '../../src/dataplane/bpf/layout.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import type { MacEnv, NatCase } from './xdp-nat-cases.js';
import type { XdpHarness } from './xdp-harness.js';

/**
 * The lab node1 the cases assume, its neighbours resolved, and the MACs the
 * cases name. With `ipv6`, the lab carries IPv6 too (xdp-nat6-cases.ts) and
 * node1's IPv6 neighbours are resolved as well.
 */
export async function natLab(opts: { ipv6?: boolean } = {}): Promise<{ lab: Lab; mac: MacEnv }> {
  const lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true, ...(opts.ipv6 ? { ipv6: true } : {}) });
  try {
    const [n1, n2] = lab.nodes as [Lab['nodes'][0], Lab['nodes'][0]];
    // Resolve node1's neighbours (node2, the client) the way any traffic would.
    await lab.client(n1, { proto: 'tcp', host: n2.ipv4, port: 80, count: 1, timeoutMs: 2000 });
    await lab.client('external', { proto: 'tcp', host: n1.ipv4, port: 80, count: 1, timeoutMs: 2000 });
    if (opts.ipv6) {
      await lab.client(n1, { proto: 'tcp', host: n2.ipv6!, port: 80, count: 1, timeoutMs: 2000 });
      await lab.client('external', { proto: 'tcp', host: n1.ipv6!, port: 80, count: 1, timeoutMs: 2000 });
    }
    const link = async (netns: string) => JSON.parse((await lab.exec(netns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout)[0] as { address: string; ifindex: number };
    const [l1, l2, lc] = await Promise.all([link(n1.netns), link(n2.netns), link(lab.external!.netns)]);
    return { lab, mac: { node1: l1.address, node2: l2.address, client: lc.address, eth0Ifindex: l1.ifindex } };
  } catch (err) {
    await lab.teardown();
    throw err;
  }
}

/** Runs a case's `before` steps, returns the SNAT port the flow got (0 when none). */
export function prepare(h: XdpHarness, c: NatCase): number {
  h.clearFlows();
  h.setFrontends(c.frontends);
  h.setSets(c.sets);
  h.setRanges(c.ranges ?? []);
  for (const s of c.before) h.run(s.packet, { program: s.program });
  if (c.setsAfter) h.setSets(c.setsAfter);
  return natPort(h);
}

/** The one SNAT port held, or 0. */
export function natPort(h: XdpHarness): number {
  const d = h.nat.dump();
  return d.count === 1 ? d.keys.readUInt16BE(NAT_KEY.fields.port.offset) : 0;
}
