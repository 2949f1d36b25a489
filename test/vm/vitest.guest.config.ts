// The batch each guest kernel runs (make test-vm), booted once per kernel.
// Not the default config's: the host's `npx vitest run` never sees the
// *.vm.ts files, and runs the lab files below on the host kernel as before.
//
// Which lab files: those that show something a kernel can change (socket
// hooks, XDP/TC attach modes, nftables/iptables/ipvs in the kernel), within
// the CI budget (docs/vm.md has the times measured under TCG).
import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

export const GUEST_LAB_FILES = [
  'test/lab/clusterip.test.ts',
  'test/lab/nftables.test.ts',
  'test/lab/iptables.test.ts',
  'test/lab/nodeport-xdp.test.ts',
  'test/lab/nodeport-xdp6.test.ts',
  'test/lab/nodeport-sctp.test.ts',
  'test/lab/udp-dead-backend.test.ts',
  'test/lab/ipvs.test.ts',
];

// A file of the batch that is not in the tree says so, once: the guest never skips silently.
for (const f of GUEST_LAB_FILES) if (!existsSync(f)) console.log(`VM batch: ${f} is not in this tree: not run in the guest`);

export default defineConfig({
  test: {
    include: ['test/vm/guest/**/*.vm.ts', ...GUEST_LAB_FILES.filter((f) => existsSync(f))],
    fileParallelism: false,
    // Userland in a TCG guest runs about 10x slower than on the host.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // The serial console is a terminal: without the live summary, the log kept on the host reads line by line.
    reporters: [['default', { summary: false }]],
  },
});
