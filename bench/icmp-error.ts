// Per-packet cost of the ICMP error stage (bpf/lib/icmp-error.h) under
// BPF_PROG_TEST_RUN, as root, in the lab node the packet tests use:
//
//   npx vite-node bench/icmp-error.ts [runs=2000]
//
// A translated error rewrites its own quote, so a repeat of it would time a
// different path (the rewritten quote names no flow): it is timed one run at
// a time, `runs` runs, the median, against the XDP_PASS program timed the
// same way. The paths that change nothing (no flow, not an error) repeat
// 100,000 times per measurement. Cases: test/bpf/xdp-icmp-error-cases.ts.
import { enterNetns } from '../src/lab/netns-thread.js';
import { icmpErrorCases } from '../test/bpf/xdp-icmp-error-cases.js';
import { PASS_PROGRAM, testPinDir, XdpHarness } from '../test/bpf/xdp-harness.js';
import { natLab, prepare } from '../test/bpf/xdp-nat-lab.js';
import { median } from './stats.js';

const RUNS = Number(process.argv[2] ?? 2000);
const REPEAT = 100_000;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('bench/icmp-error.ts skipped: it builds a lab and loads BPF programs, which needs root');
    return;
  }
  const { lab, mac } = await natLab({ ipv6: true });
  const leave = enterNetns(lab.nodes[0]!.netns);
  const h = XdpHarness.load(testPinDir('bench-icmp-error'));
  try {
    h.loadTc();
    console.log(`ICMP error stage, BPF_PROG_TEST_RUN; translated errors one run at a time (median of ${RUNS}), the rest x ${REPEAT}; baseline: ${PASS_PROGRAM} timed the same way`);
    console.log(`${'case'.padEnd(100)} ${'ns/pkt'.padStart(7)} ${'baseline'.padStart(8)}`);
    for (const c of icmpErrorCases(mac)) {
      const port = prepare(h, c);
      const step = c.step(port);
      const translated = 'event' in c.counter && c.counter.event !== 'pkt_icmp_err_no_flow' && c.counter.event !== 'pkt_pass_icmp';
      const base = step.program === 'bpx_xdp' ? PASS_PROGRAM : null;
      let a: number;
      let b: number | null;
      if (translated) {
        const xs: number[] = [];
        const bs: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          xs.push(h.run(step.packet, { program: step.program, repeat: 1 }).durationNs);
          if (base) bs.push(h.run(step.packet, { program: base, repeat: 1 }).durationNs);
        }
        a = median(xs);
        b = base ? median(bs) : null;
      } else {
        a = h.run(step.packet, { program: step.program, repeat: REPEAT }).durationNs;
        b = base ? h.run(step.packet, { program: base, repeat: REPEAT }).durationNs : null;
      }
      console.log(`${c.name.slice(0, 100).padEnd(100)} ${String(a).padStart(7)} ${String(b ?? '-').padStart(8)}`);
    }
  } finally {
    h.close();
    leave();
    await lab.teardown();
  }
}

await main();
