// Packet micro-benchmark of bpf/xdp.bpf.c, as root. Run (also by `make bench`):
//
//   npx vite-node bench/packets.ts [repeat=100000] [pairs=7]
//
// Every case of test/bpf/xdp-cases.ts (the tables the tests check) runs
// through BPF_PROG_TEST_RUN `repeat` times per measurement; the kernel reports
// the mean ns per run. The baseline, measured in the same run, is an XDP
// program that only returns XDP_PASS (bpx_xdp_pass, same object). Measurements
// alternate A B, B A in pairs so drift hits both alike; printed: the medians
// of each, the median of the per-pair ratios and its spread (min..max).
// Maps are pinned in a directory of this process's own and removed at the end.
import { XDP_CASES } from '../test/bpf/xdp-cases.js';
import { PASS_PROGRAM, testPinDir, XDP_PROGRAM, XdpHarness } from '../test/bpf/xdp-harness.js';

const REPEAT = Number(process.argv[2] ?? 100_000);
const PAIRS = Number(process.argv[3] ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function main(): void {
  if (process.getuid?.() !== 0) {
    console.log('packet benchmark skipped: loading BPF programs needs root');
    return;
  }
  const h = XdpHarness.load(testPinDir('bench'));
  try {
    const ns = (program: string, packet: Buffer) => h.run(packet, { program, repeat: REPEAT }).durationNs;
    console.log(`xdp.bpf.o, BPF_PROG_TEST_RUN x ${REPEAT} per measurement, ${PAIRS} A/B pairs per case; baseline: ${PASS_PROGRAM} (returns XDP_PASS)`);
    console.log(`${'case'.padEnd(78)} ${'ns/pkt'.padStart(7)} ${'baseline'.padStart(8)} ${'ratio (min..max)'.padStart(20)}`);
    const allRatios: number[] = [];
    const allOver: number[] = [];
    for (const c of XDP_CASES) {
      h.setFrontends(c.frontends);
      ns(XDP_PROGRAM, c.packet); // warm up: first-touch of map and counters
      const a: number[] = [];
      const b: number[] = [];
      const ratios: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        let x: number;
        let y: number;
        if (i % 2 === 0) { x = ns(XDP_PROGRAM, c.packet); y = ns(PASS_PROGRAM, c.packet); } else { y = ns(PASS_PROGRAM, c.packet); x = ns(XDP_PROGRAM, c.packet); }
        a.push(x);
        b.push(y);
        ratios.push(x / Math.max(y, 1));
      }
      h.clearFrontends();
      const r = median(ratios);
      allRatios.push(r);
      allOver.push(median(a) - median(b));
      const spread = `${r.toFixed(2)} (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})`;
      console.log(`${c.name.slice(0, 78).padEnd(78)} ${String(median(a)).padStart(7)} ${String(median(b)).padStart(8)} ${spread.padStart(20)}`);
    }
    console.log(`over all ${XDP_CASES.length} cases: median ratio ${median(allRatios).toFixed(2)} (${Math.min(...allRatios).toFixed(2)}..${Math.max(...allRatios).toFixed(2)}), `
      + `median cost over the baseline ${median(allOver)} ns/pkt`);
  } finally {
    h.close();
  }
}

main();
