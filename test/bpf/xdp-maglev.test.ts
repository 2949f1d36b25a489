// Maglev for new flows in bpf/xdp.bpf.c under BPF_PROG_TEST_RUN: the backend
// a new flow gets is the slot of its set's table that the flow hash names
// (the hash of bpf/lib/maglev.h, which src/dataplane/bpf/maglev-hash.ts must
// compute alike), the address the packet was sent to plays no part, and
// removing one of N backends moves about 1/N of the flows. Local backends
// only: the picks show in the DNATed destination, with no route needed, so
// no lab. Maps are pinned in a directory of this test's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { maglevHashV4 } from '../../src/dataplane/bpf/maglev-hash.js';
import { XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { ipv4ToUint32 } from '../../src/util/ip.js';
import { parsePacket } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import { counterDelta, maglevIds, TEST_MAGLEV_M, testPinDir, XdpHarness, type TestSet } from './xdp-harness.js';
import { packet } from './xdp-nat-cases.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp Maglev packet tests skipped: loading BPF programs and pinning maps needs root');

const NODE1 = '172.18.0.11';
const NODE2 = '172.18.0.12';
const NODE_PORT = 30080;
const SET = 7 * 4 + 2;
const fe = (address: string): Frontend => ({ key: { address, port: NODE_PORT, protocol: 'TCP', family: 'IPv4' }, val: { svcId: 7, localSet: 7 * 4, extSet: SET, flags: FE_NODE_PORT } });
const backends = (n: number): TestSet['backends'] => Array.from({ length: n }, (_, i) => ({ id: 100 + i, address: `10.244.1.${10 + i}`, port: 80, protocol: 'TCP' as const, local: true }));

/** A spread of client flows: addresses and ports. */
const FLOWS = Array.from({ length: 2000 }, (_, i) => ({ client: `198.51.${(i >> 8) & 0xff}.${i & 0xff}`, sport: 1024 + ((i * 7919) % 60000) }));

describe.skipIf(!isRoot)('Maglev picks of xdp.bpf.o under BPF_PROG_TEST_RUN', () => {
  let h: XdpHarness;

  beforeAll(() => { h = XdpHarness.load(testPinDir('xdp-maglev')); });
  afterAll(() => h?.close());

  /** The backend address a new flow is DNATed to, from empty conntrack. */
  function pick(flow: { client: string; sport: number }, to = NODE1): string {
    h.clearFlows();
    const res = h.run(packet('TCP', flow.client, flow.sport, to, NODE_PORT));
    expect(res.retval).toBe(XDP_PASS);
    return parsePacket(res.data).ipv4!.dst;
  }

  it('a new flow gets the slot its hash names (client address and port, destination port, protocol): C and TypeScript agree', () => {
    const list = backends(5);
    h.setFrontends([fe(NODE1)]);
    h.setSets([{ id: SET, backends: list }]);
    const ids = maglevIds(list);
    const byId = new Map(list.map((b) => [b.id, b.address]));
    const before = h.readCounters();
    for (const f of FLOWS.slice(0, 300)) {
      const slot = maglevHashV4(ipv4ToUint32(f.client), f.sport, NODE_PORT, 6) % TEST_MAGLEV_M;
      expect(pick(f), `${f.client}:${f.sport}`).toBe(byId.get(ids[slot]!));
    }
    expect(counterDelta(before, h.readCounters())).toEqual({ 'event:pkt_local_new': 300 });
  });

  it('the address the flow was sent to plays no part: the same flow to another node address of the service lands on the same backend', () => {
    h.setFrontends([fe(NODE1), fe(NODE2)]);
    h.setSets([{ id: SET, backends: backends(5) }]);
    const picks = FLOWS.slice(0, 300).map((f) => [pick(f, NODE1), pick(f, NODE2)]);
    expect(picks.filter(([a, b]) => a !== b)).toEqual([]);
    expect(new Set(picks.map(([a]) => a)).size).toBe(5);
  });

  it('removing one of 5 backends moves about 1/5 of the flows, and only flows of the removed one must move', () => {
    const list = backends(5);
    h.setFrontends([fe(NODE1)]);
    h.setSets([{ id: SET, backends: list }]);
    const first = FLOWS.map((f) => pick(f));
    const removed = list[2]!.address;
    h.setSets([{ id: SET, backends: list.filter((b) => b.address !== removed) }]);
    const second = FLOWS.map((f) => pick(f));
    const moved = first.filter((a, i) => a !== second[i]).length / FLOWS.length;
    const onRemoved = first.filter((a) => a === removed).length / FLOWS.length;
    const strayed = first.filter((a, i) => a !== removed && a !== second[i]).length / FLOWS.length;
    console.log(`Maglev (M=${TEST_MAGLEV_M}), 5 -> 4 backends: ${(moved * 100).toFixed(1)}% of ${FLOWS.length} flows moved (ideal 20%); `
      + `${(onRemoved * 100).toFixed(1)}% were on the removed backend, ${(strayed * 100).toFixed(1)}% moved between surviving backends`);
    expect(second).not.toContain(removed);
    expect(moved).toBeGreaterThan(0.14);
    expect(moved).toBeLessThan(0.3);
    expect(strayed).toBeLessThan(0.08);
  });

  it('a slot naming a backend that is gone falls back to a random backend of the set, counted as pkt_maglev_miss', () => {
    const list = backends(2);
    h.setFrontends([fe(NODE1)]);
    h.setSets([{ id: SET, backends: list, maglev: false }]);
    h.setMaglev(SET, 0, new Uint32Array(TEST_MAGLEV_M).fill(999)); // no backend 999
    const before = h.readCounters();
    const got = new Set(FLOWS.slice(0, 50).map((f) => pick(f)));
    expect(got).toEqual(new Set(list.map((b) => b.address)));
    expect(counterDelta(before, h.readCounters())).toEqual({ 'event:pkt_local_new': 50, 'event:pkt_maglev_miss': 50 });
  });

  it('the table is the one slot array, row after row: a second set reads its own row', () => {
    const a = backends(3);
    const b = backends(6).slice(3);
    const other = 8 * 4 + 2;
    h.setFrontends([fe(NODE1), { key: { address: NODE1, port: 30081, protocol: 'TCP', family: 'IPv4' }, val: { svcId: 8, localSet: 32, extSet: other, flags: FE_NODE_PORT } }]);
    h.setSets([{ id: SET, backends: a }, { id: other, backends: b }]);
    const ofB = new Set(FLOWS.slice(0, 100).map((f) => { h.clearFlows(); return parsePacket(h.run(packet('TCP', f.client, f.sport, NODE1, 30081)).data).ipv4!.dst; }));
    expect(ofB).toEqual(new Set(b.map((x) => x.address)));
    expect(new Set(FLOWS.slice(0, 100).map((f) => pick(f)))).toEqual(new Set(a.map((x) => x.address)));
  });
});
