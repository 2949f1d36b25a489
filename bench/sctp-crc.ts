// What the incremental SCTP CRC32c update (bpf/lib/sctp-crc.h) costs per
// packet, through BPF_PROG_TEST_RUN, as root:
//
//   npx vite-node bench/sctp-crc.ts [runs=3000] [pairs=5]
//
// A known SCTP association to a local backend (xdp-sctp-cases.ts: DNAT from
// the NodePort to another target port) against the very same packet with its
// checksum field 0, which takes the same path and skips the CRC work
// (sctp-crc.h leaves an offloaded 0 alone): the difference is the update.
// Its cost should not depend on the length (two multiplications whatever
// it is: sctp-crc.h), so three lengths are timed. A UDP known flow
// (xdp-nat-cases.ts) is the TCP/UDP reference.
// Each measurement is the median of `runs` single runs (repeat=1: every run
// gets the packet as the client sent it, so the flow stays known), A/B
// alternated in pairs as bench/packets.ts does. Printed, not recorded.
import { enterNetns } from '../src/lab/netns-thread.js';
import { testPinDir, XdpHarness } from '../test/bpf/xdp-harness.js';
import { natCases } from '../test/bpf/xdp-nat-cases.js';
import { natLab, prepare } from '../test/bpf/xdp-nat-lab.js';
import { SCTP_CLIENT_PORT, SCTP_NODE_PORT, sctpCases, sctpPacket, withZeroCrc } from '../test/bpf/xdp-sctp-cases.js';
import { CLIENT, NODE1 } from '../test/bpf/xdp-nat-cases.js';
import { median } from './stats.js';

const RUNS = Number(process.argv[2] ?? 3000);
const PAIRS = Number(process.argv[3] ?? 5);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('SCTP CRC benchmark skipped: loading BPF programs needs root');
    return;
  }
  const { lab, mac } = await natLab();
  const leave = enterNetns(lab.nodes[0]!.netns);
  const h = XdpHarness.load(testPinDir('bench-sctp'));
  try {
    const timed = (p: Buffer) => () => {
      const xs: number[] = [];
      for (let i = 0; i < RUNS; i++) xs.push(h.run(p).durationNs);
      return median(xs);
    };
    const pairs = (a: () => number, b: () => number) => {
      a(); b();
      const as: number[] = [];
      const bs: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        if (i % 2 === 0) { as.push(a()); bs.push(b()); } else { bs.push(b()); as.push(a()); }
      }
      return { a: median(as), b: median(bs) };
    };
    console.log(`known flow to a local backend, DNAT with a port change; median of ${RUNS} single BPF_PROG_TEST_RUN runs, ${PAIRS} A/B pairs`);
    console.log(`${'case'.padEnd(60)} ${'CRC'.padStart(6)} ${'CRC 0'.padStart(6)} ${'update'.padStart(7)}  (ns/pkt)`);
    const known = sctpCases(mac).find((c) => c.name.startsWith('IPv4 SCTP: known association to a local backend'))!;
    for (const len of [32, 1020, 2044]) {
      prepare(h, known);
      const p = sctpPacket(CLIENT, SCTP_CLIENT_PORT, NODE1, SCTP_NODE_PORT, { src: mac.client, dst: mac.node1 }, Buffer.alloc(len - 12, 0x5a));
      const r = pairs(timed(p), timed(withZeroCrc(p)));
      console.log(`${`SCTP, ${len} bytes`.padEnd(60)} ${String(r.a).padStart(6)} ${String(r.b).padStart(6)} ${String(r.a - r.b).padStart(7)}`);
    }
    const udp = natCases(mac).find((c) => c.name.startsWith('UDP: known flow to a local backend'))!;
    prepare(h, udp);
    console.log(`${'UDP (reference: the TCP/UDP path, ones\' complement update)'.padEnd(60)} ${String(timed(udp.step(0).packet)()).padStart(6)}`);
  } finally {
    h.close();
    leave();
    await lab.teardown();
  }
}

await main();
