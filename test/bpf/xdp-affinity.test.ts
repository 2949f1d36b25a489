// sessionAffinity ClientIP on the external frontends of bpf/xdp.bpf.c, under
// BPF_PROG_TEST_RUN: a client's new flows follow its last backend while the
// entry is younger than the service's timeout, and only while that backend is
// in the set; the entry is per client address and per service. Local
// backends only (the pick shows in the DNATed destination), so no lab. The
// table case (a hit, counted) is in xdp-nat-cases.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AFF_KEY, AFF_VAL, FE_NODE_PORT, writeAddr } from '../../src/dataplane/bpf/layout.js';
import { parsePacket } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import { testPinDir, XdpHarness, type TestSet } from './xdp-harness.js';
import { packet } from './xdp-nat-cases.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp affinity packet tests skipped: loading BPF programs and pinning maps needs root');

const NODE1 = '172.18.0.11';
const CLIENT = '172.18.0.100';
const A = '10.244.1.10';
const B = '10.244.1.11';
const fe = (svc: number, port: number): Frontend => ({ key: { address: NODE1, port, protocol: 'TCP', family: 'IPv4' }, val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags: FE_NODE_PORT } });
const set = (svc: number, affinity: number, maglevAll: number): TestSet => ({
  id: svc * 4 + 2, affinity, maglevAll,
  backends: [{ id: svc * 10 + 1, address: A, port: 80, protocol: 'TCP', local: true }, { id: svc * 10 + 2, address: B, port: 80, protocol: 'TCP', local: true }],
});

describe.skipIf(!isRoot)('ClientIP affinity of xdp.bpf.o under BPF_PROG_TEST_RUN', () => {
  let h: XdpHarness;

  beforeAll(() => { h = XdpHarness.load(testPinDir('xdp-affinity')); });
  afterAll(() => h?.close());

  const dst = (client: string, sport: number, port = 30080) => parsePacket(h.run(packet('TCP', client, sport, NODE1, port)).data).ipv4!.dst;

  /** Writes the affinity entry of CLIENT for set `set`, last used `ageS` seconds ago. */
  function remember(setId: number, backend: number, ageS: number): void {
    const last = process.hrtime.bigint() - BigInt(Math.round(ageS * 1e9));
    const failed = h.aff.update(1, (_i, k, ko, v, vo) => {
      k.fill(0, ko, ko + AFF_KEY.size);
      writeAddr(k, ko + AFF_KEY.fields.client.offset, CLIENT);
      k.writeUInt32LE(setId, ko + AFF_KEY.fields.set.offset);
      k.writeUInt8(4, ko + AFF_KEY.fields.family.offset);
      v.fill(0, vo, vo + AFF_VAL.size);
      v.writeBigUInt64LE(last, vo + AFF_VAL.fields.last_ns.offset);
      v.writeUInt32LE(backend, vo + AFF_VAL.fields.backend.offset);
    });
    expect(failed).toEqual([]);
  }

  it('every new flow of a client follows its first one, whatever Maglev says, and other clients are not affected', () => {
    h.clearFlows();
    h.setFrontends([fe(1, 30080)]);
    h.setSets([set(1, 10800, 12)]); // Maglev names B everywhere
    remember(1 * 4 + 2, 11, 0);
    expect([40001, 40002, 40003].map((p) => dst(CLIENT, p))).toEqual([A, A, A]);
    expect(dst('172.18.0.101', 40001)).toBe(B);
  });

  it('an entry older than the timeout is ignored, and the new pick is remembered instead', () => {
    h.clearFlows();
    h.setFrontends([fe(1, 30080)]);
    h.setSets([set(1, 10, 12)]);
    remember(1 * 4 + 2, 11, 11);
    expect(dst(CLIENT, 40001)).toBe(B);
    h.setSets([set(1, 10, 11)]); // Maglev now names A; the client's fresh entry says B
    expect(dst(CLIENT, 40002)).toBe(B);
  });

  it('a remembered backend that left the set is not followed', () => {
    h.clearFlows();
    h.setFrontends([fe(1, 30080)]);
    h.setSets([{ ...set(1, 10800, 12), backends: [{ id: 12, address: B, port: 80, protocol: 'TCP', local: true }] }]);
    remember(1 * 4 + 2, 11, 0); // backend 11 (A) is no member any more
    expect(dst(CLIENT, 40001)).toBe(B);
  });

  it('a service without affinity ignores an entry, and affinity is per service', () => {
    h.clearFlows();
    h.setFrontends([fe(1, 30080), fe(2, 30081)]);
    h.setSets([set(1, 0, 12), set(2, 10800, 22)]);
    remember(1 * 4 + 2, 11, 0);
    expect(dst(CLIENT, 40001)).toBe(B); // service 1: no affinity, Maglev says B
    expect(dst(CLIENT, 40002, 30081)).toBe(B); // service 2: no entry yet, Maglev says B ...
    h.setSets([set(1, 0, 12), set(2, 10800, 21)]);
    expect(dst(CLIENT, 40003, 30081)).toBe(B); // ... and now its entry holds B though Maglev says A
  });
});
