// bpf/xdp.bpf.o through BPF_PROG_TEST_RUN: every case of xdp-cases.ts (the
// same table `make bench` times) gives its verdict, leaves its output packet,
// and moves exactly its one counter by one. Maps are pinned in a directory of
// this test's own and removed after; nothing is attached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFeKey, writeFeVal } from '../../src/dataplane/bpf/layout.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { COUNTERS_MAP, DROP_REASONS, EVENTS, SLOT_COUNT, SLOT_EVENTS } from '../../src/dataplane/bpf/reasons.js';
import { XDP_DROP, XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';
import { buildPacket, parsePacket } from '../helpers/packet.js';
import { FRONTENDS, XDP_CASES } from './xdp-cases.js';
import { icmpErrorCases } from './xdp-icmp-error-cases.js';
import { natCases } from './xdp-nat-cases.js';
import { sctpCases } from './xdp-sctp-cases.js';
import { counterDelta, testPinDir, XdpHarness, PASS_PROGRAM } from './xdp-harness.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp packet tests skipped: loading BPF programs and pinning maps needs root');

const VERDICT = { XDP_PASS, XDP_DROP } as const;

describe('the case table', () => {
  it('names only counters that exist, and every drop reason and packet event is covered', () => {
    const drops = new Set(DROP_REASONS.map((r) => r.label));
    const events = new Set(EVENTS.map((r) => r.label));
    for (const c of XDP_CASES) {
      if ('drop' in c.counter) expect(drops, c.name).toContain(c.counter.drop);
      else expect(events, c.name).toContain(c.counter.event);
    }
    const macs = { node1: '02:00:00:00:00:01', node2: '02:00:00:00:00:02', client: '02:00:00:00:00:03', eth0Ifindex: 2 };
    const all = [...XDP_CASES, ...natCases(macs), ...icmpErrorCases(macs), ...sctpCases(macs)];
    const covered = new Set(all.flatMap((c) => ['drop' in c.counter ? c.counter.drop : c.counter.event, ...('also' in c ? c.also ?? [] : [])]));
    // truncated_l2 cannot be fed to TEST_RUN: see the test below. nat_ports_exhausted
    // and refuse_rate_limited have their own tests in xdp-nat.test.ts (every
    // port held first; a thousand refusals in a row).
    expect([...drops].filter((d) => !covered.has(d))).toEqual(['truncated_l2', 'nat_ports_exhausted', 'refuse_rate_limited']);
    // pkt_pass_no_endpoints is retired (kept so its value is never reused); the
    // redirect events need the redirect maps filled: test/bpf/xdp-redirect.test.ts.
    expect([...events].filter((e) => e.startsWith('pkt_') && !covered.has(e))).toEqual(['pkt_pass_no_endpoints', 'pkt_local_redirect', 'pkt_routed_redirect']);
  });
});

describe.skipIf(!isRoot)('xdp.bpf.o under BPF_PROG_TEST_RUN', () => {
  let h: XdpHarness;

  beforeAll(() => { h = XdpHarness.load(testPinDir('xdp')); });
  afterAll(() => h?.close());

  for (const c of XDP_CASES) {
    it(c.name, () => {
      h.setFrontends(c.frontends);
      try {
        const before = h.readCounters();
        const res = h.run(c.packet);
        const moved = counterDelta(before, h.readCounters());
        expect(res.retval).toBe(VERDICT[c.verdict]);
        expect(res.data.toString('hex')).toBe(c.output.toString('hex'));
        expect(moved).toEqual('drop' in c.counter ? { [`drop:${c.counter.drop}`]: 1 } : { [`event:${c.counter.event}`]: 1 });
      } finally {
        h.clearFrontends();
      }
    });
  }

  it('leaves a frontend\'s packet as it came: addresses, ports and checksums', () => {
    const c = XDP_CASES.find((x) => 'event' in x.counter && x.counter.event === 'pkt_frontend_untranslated')!;
    h.setFrontends(c.frontends);
    try {
      const out = parsePacket(h.run(c.packet).data);
      expect(out.ipv4).toMatchObject({ src: '172.18.0.100', dst: '172.18.0.11', checksumOk: true });
      expect(out.l4).toMatchObject({ sport: 40000, dport: 30080, checksumOk: true });
    } finally {
      h.clearFrontends();
    }
  });

  it('a packet to a frontend is no frontend\'s once the frontend is gone', () => {
    const packet = XDP_CASES[0]!.packet;
    h.setFrontends(FRONTENDS);
    const before = h.readCounters();
    h.run(packet);
    h.clearFrontends();
    h.run(packet);
    expect(counterDelta(before, h.readCounters())).toEqual({ 'event:pkt_frontend_untranslated': 1, 'event:pkt_pass_no_frontend': 1 });
  });

  it('counts repeated runs once per run, per reason', () => {
    const c = XDP_CASES.find((x) => 'drop' in x.counter)!;
    const before = h.readCounters();
    h.run(c.packet, { repeat: 1000 });
    expect(Object.values(counterDelta(before, h.readCounters()))).toEqual([1000]);
  });

  it('cannot be handed a frame shorter than Ethernet: the kernel refuses it (EINVAL), so truncated_l2 is for the verifier and runts only', () => {
    expect(() => h.run(Buffer.alloc(13))).toThrow(/Invalid argument/);
  });

  it('the counters map has room for more reasons than this build has', () => {
    expect(h.counters.capacity).toBe(SLOT_COUNT);
    expect(DROP_REASONS.length).toBeLessThanOrEqual(SLOT_EVENTS);
    expect(EVENTS.length).toBeLessThanOrEqual(SLOT_COUNT - SLOT_EVENTS);
    expect(h.counters.name).toBe(COUNTERS_MAP);
  });

  it('the baseline program passes everything untouched', () => {
    const p = XDP_CASES[0]!.packet;
    const res = h.run(p, { program: PASS_PROGRAM });
    expect([res.retval, res.data.equals(p)]).toEqual([XDP_PASS, true]);
  });
});

describe.skipIf(!isRoot)('xdp.bpf.o and sock.bpf.o in one pin directory', () => {
  const pinDir = testPinDir('shared');
  let sock: native.ObjectHandle | null = null;
  let h: XdpHarness | null = null;

  afterAll(() => {
    if (sock) native.objectClose(sock);
    h?.close(); // removes the pin directory
  });

  it('share one frontend map and one counters map: a frontend written through sock.bpf.o\'s fd is seen by XDP', () => {
    sock = native.objectLoad(`${BPF_OBJECT_DIR}/sock.bpf.o`, pinDir, {}).handle;
    h = XdpHarness.load(pinDir);
    const sockFe = native.objectMapFd(sock, 'bpx_fe_v1');
    expect(native.mapInfo(sockFe).id).toBe(native.mapInfo(h.fe.fd).id);
    expect(native.mapInfo(native.objectMapFd(sock, COUNTERS_MAP)).id).toBe(native.mapInfo(h.counters.fd).id);

    const packet = buildPacket({ ipv6: { src: 'fd00:18::100', dst: 'fd00:96::7' }, l4: { proto: 'udp', sport: 40000, dport: 53 } });
    const before = h.readCounters();
    h.run(packet);
    const key = Buffer.alloc(20);
    const val = Buffer.alloc(16);
    writeFeKey(key, 0, { address: 'fd00:96::7', port: 53, protocol: 'UDP', family: 'IPv6' });
    writeFeVal(val, 0, { svcId: 9, localSet: 18, extSet: 19, flags: 0 });
    expect(native.update(sockFe, key, val)).toBe(0);
    h.run(packet);
    expect(counterDelta(before, h.readCounters())).toEqual({ 'event:pkt_pass_no_frontend': 1, 'event:pkt_frontend_untranslated': 1 });
  });
});
