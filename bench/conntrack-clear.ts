// Cost of the conntrack hygiene's netlink call (native/conntrack.c): one dump
// of the family's table and a delete per match, against a table of N UDP
// entries in a lab node. Baseline in the same run: the dump alone (a rule
// that matches nothing). Root only: it builds a one-node lab.
import { createLab } from '../src/lab/lab.js';
import { clearConntrack } from '../src/dataplane/conntrack/netlink.js';
import { enterNetns } from '../src/lab/netns-thread.js';

const N = Number(process.env.ENTRIES ?? (process.env.QUICK ? 4000 : 20000));
const FILL = `
import socket, sys
n = int(sys.argv[1])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("10.244.1.99" if i % 2 else "10.244.1.98", 53))
    s.close()
`;

const lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }] });
try {
  const node = lab.node('node1');
  // Conntrack runs in a namespace once a ruleset there needs it.
  for (const r of [
    await lab.exec(node.netns, ['nft', '-f', '-'], { input: 'table ip bench {\n chain out {\n  type filter hook output priority 0;\n  ct state new accept\n }\n}\n' }),
    await lab.exec(node.netns, ['/usr/bin/python3', '-c', FILL, String(N)], { timeoutMs: 60_000 }),
  ]) if (r.code !== 0) throw new Error(r.stderr);
  const count = (await lab.exec(node.netns, ['cat', '/proc/sys/net/netfilter/nf_conntrack_count'])).stdout.trim();
  const rule = (address: string) => [{ family: 'IPv4' as const, protocol: 'UDP' as const, address, port: 53, keep: [] }];
  const back = enterNetns(node.netns);
  let dump: number;
  let clear: number;
  let deleted: number;
  try {
    clearConntrack(4, rule('10.96.9.9')); // binds the library: not part of the cost
    let t = performance.now();
    const none = clearConntrack(4, rule('10.96.9.9'));
    dump = performance.now() - t;
    t = performance.now();
    const r = clearConntrack(4, rule('10.244.1.99'));
    clear = performance.now() - t;
    deleted = r.deleted;
    if (none.error || r.error) throw new Error(none.error || r.error);
    // The first sync after a start: one rule per UDP frontend of the cluster.
    const many = Array.from({ length: 10_000 }, (_, i) => rule(`10.97.${i >> 8}.${i & 255}`)[0]!);
    t = performance.now();
    const m = clearConntrack(4, many);
    if (m.error) throw new Error(m.error);
    console.log(`  10,000 rules matching nothing: ${(performance.now() - t).toFixed(1)} ms`);
  } finally {
    back();
  }
  console.log(`conntrack entries ${count}: dump with no match ${dump.toFixed(1)} ms; dump + ${deleted} deletes ${clear.toFixed(1)} ms (${((clear - dump) * 1000 / Math.max(1, deleted)).toFixed(1)} us per delete); ratio ${(clear / dump).toFixed(1)}x`);
} finally {
  await lab.teardown();
}
