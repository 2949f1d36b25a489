// What the packet NAT test files (xdp-nat, xdp-nat6, xdp-clusterip) share:
// the lab node their cases run in, entered by this thread with the packet
// programs loaded, and the one way a case is run and checked. (Not in
// xdp-nat-lab.ts: bench/packets.ts imports that, and this imports vitest.)
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import { enterNetns } from '../../src/lab/netns-thread.js';
import { NAT_PORT_MAX, NAT_PORT_MIN, type MacEnv, type NatCase } from './xdp-nat-cases.js';
import { counterDelta, testPinDir, XdpHarness } from './xdp-harness.js';
import { natLab, natPort, prepare } from './xdp-nat-lab.js';

/** Filled before the suite's first test. */
export interface NatLabState {
  lab: Lab;
  mac: MacEnv;
  h: XdpHarness;
}

/** MACs for building the cases' names before the lab exists (the names do not depend on them). */
export const PLACEHOLDER_MACS: MacEnv = { node1: '02:00:00:00:00:01', node2: '02:00:00:00:00:02', client: '02:00:00:00:00:03', eth0Ifindex: 0 };

/**
 * The suite's lab (natLab), `setup` run in it, then this thread in node1's
 * namespace with xdp.bpf.o and tc.bpf.o loaded under a pin directory named
 * after the suite; all of it undone after the suite.
 */
export function useNatLab(pinName: string, opts: { ipv6?: boolean; setup?: (lab: Lab) => Promise<void> } = {}): NatLabState {
  const state = {} as NatLabState;
  let leave: (() => void) | undefined;
  beforeAll(async () => {
    ({ lab: state.lab, mac: state.mac } = await natLab(opts.ipv6 ? { ipv6: true } : {}));
    await opts.setup?.(state.lab);
    leave = enterNetns(state.lab.nodes[0]!.netns);
    state.h = XdpHarness.load(testPinDir(pinName));
    state.h.loadTc();
  });
  afterAll(async () => {
    state.h?.close();
    leave?.();
    await state.lab?.teardown();
  });
  return state;
}

/**
 * One test per case: its verdict, the one counter it moves (and the events
 * it names besides), the SNAT ports held, the SNAT port (in range, kept by a
 * known flow) and its output packet byte for byte (the expected packets
 * carry valid checksums: packet.ts builds them so).
 */
export function itNatCases(names: readonly string[], caseAt: (i: number) => NatCase, state: NatLabState): void {
  names.forEach((name, i) => {
    it(name, () => {
      const { h } = state;
      const c = caseAt(i);
      const before = prepare(h, c);
      const counters = h.readCounters();
      const step = c.step(before);
      const res = h.run(step.packet, { program: step.program });
      const moved = counterDelta(counters, h.readCounters());
      const port = natPort(h);
      expect(res.retval).toBe(c.verdict);
      const also = Object.fromEntries((c.also ?? []).map((e) => [`event:${e}`, 1]));
      expect(moved).toEqual({ ...also, ...('drop' in c.counter ? { [`drop:${c.counter.drop}`]: 1 } : { [`event:${c.counter.event}`]: 1 }) });
      if (c.natHeldAfter !== undefined) expect(h.nat.dump().count).toBe(c.natHeldAfter);
      if (c.snat) {
        expect(port).toBeGreaterThanOrEqual(NAT_PORT_MIN);
        expect(port).toBeLessThanOrEqual(NAT_PORT_MAX);
        if (before) expect(port).toBe(before); // a known flow keeps its port
      }
      expect(res.data.toString('hex')).toBe(c.output(port).toString('hex'));
    });
  });
}
