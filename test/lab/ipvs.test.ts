// The shared rule-mode lab suite (rule-modes.suite.ts) for --proxy-mode ipvs,
// plus what only ipvs has: the schedulers, seen on real traffic.
//
// It needs IPVS in the kernel. This repository's host kernel has none and
// loads no modules: here the suite prints one line and skips. `make test-vm`
// runs it in a VM whose Debian kernel has ip_vs and its schedulers as modules,
// loaded below when they are not yet.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import type { ClientResult } from '../../src/lab/client.js';
import { parseConnectionCounts } from '../../src/dataplane/ipvs/graceful.js';
import { canonicalIP } from '../../src/util/ip.js';
import { endpointPods } from '../helpers/lab-cluster.js';
import { HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';
import { binaryRuns, ruleModeSuite } from './rule-modes.suite.js';

/** ip_vs, the schedulers the cases use or a user may pick, and dummy for kube-ipvs0. */
const MODULES = ['ip_vs', 'ip_vs_rr', 'ip_vs_lc', 'ip_vs_sh', 'ip_vs_dh', 'ip_vs_sed', 'ip_vs_nq', 'ip_vs_mh', 'dummy'];
/**
 * br_netfilter: a reply from an endpoint to a client pod on the same node
 * crosses the pod bridge without routing; IPVS sees it (and undoes its NAT)
 * only when bridged packets go through the IP hooks. The host kernel has it
 * built in (bridge-nf-call-iptables=1); Debian's guest kernel has it as a
 * module. Measured in the VM without it: every connection to the endpoint on
 * the client's own node timed out.
 *
 * What the mode's ipsets and rules make the kernel load on first use. Each
 * autoload is one modprobe, which took tens of seconds in the TCG guest: one
 * modprobe for all of them keeps the first sync inside the proxy's start budget.
 */
const RULE_MODULES = [
  'br_netfilter', 'ip_set_hash_ipport', 'ip_set_hash_ipportip', 'ip_set_hash_ipportnet', 'ip_set_bitmap_port', 'xt_set', 'xt_addrtype', 'xt_mark',
  'xt_comment', 'xt_conntrack', 'xt_MASQUERADE', 'xt_tcpudp', 'ipt_REJECT', 'ip6t_REJECT', 'nft_compat', 'nft_chain_nat',
];

function modprobe(args: string[]): void {
  try {
    execFileSync('modprobe', args, { stdio: 'pipe' });
  } catch {
    // What is missing shows below (ip_vs) or as built in (the rest).
  }
}

function ipvsUnavailable(): string | null {
  if (!existsSync('/proc/net/ip_vs')) modprobe(['-a', ...MODULES]);
  if (existsSync('/proc/net/ip_vs')) modprobe(['-a', '-q', ...RULE_MODULES]);
  if (!existsSync('/proc/net/ip_vs')) return `the kernel has no IPVS (no /proc/net/ip_vs; \`modprobe -a ${MODULES.join(' ')}\` found no ip_vs); \`make test-vm\` runs them in a VM whose kernel has it`;
  if (!binaryRuns('ipvsadm', ['--version'])) return 'no ipvsadm (apt-get install ipvsadm)';
  if (!binaryRuns('ipset', ['version'])) return 'no ipset (apt-get install ipset)';
  return null;
}

const run = async (lab: Lab, netns: string, argv: string[]) => {
  const r = await lab.exec(netns, argv);
  return r.code === 0 ? r.stdout : '';
};

function counts(results: ClientResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) {
    const k = r.ok ? r.pod : `error:${r.error}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

const WEB = ['a1', 'a2', 'b1'];

ruleModeSuite({
  mode: 'ipvs',
  unavailable: ipvsUnavailable,
  // iptables whose iptables-restore does not exist falls back to ipvs (which runs the iptables on the PATH).
  fallback: (dir) => ({ args: ['--proxy-mode', 'iptables'], env: { BPFPROXY_IPTABLES_DIR: join(dir, 'no-such-iptables') } }),
  fallbackReason: /^fallback: the iptables dataplane cannot run here: `.*no-such-iptables\/iptables-restore --noflush` failed/,
  listRules: (lab, node) => run(lab, node.netns, ['ipvsadm', '-S', '-n']),
  rulesShow: /^-A -t 10\.96\.2\.10:80 -s rr$/m,
  leftovers: async (lab, node) => {
    const lines = [
      ...(await run(lab, node.netns, ['ipvsadm', '-S', '-n'])).split('\n'),
      ...(await run(lab, node.netns, ['ipset', 'save'])).split('\n').filter((l) => / BPX6?-/.test(l)),
      ...(await run(lab, node.netns, ['iptables-save'])).split('\n').filter((l) => /BPX-|bpfproxy-ipvs/.test(l)).map((l) => l.replace(/ \[\d+:\d+\]$/, '')),
      ...(await run(lab, node.netns, ['ip6tables-save'])).split('\n').filter((l) => /BPX-|bpfproxy-ipvs/.test(l)).map((l) => l.replace(/ \[\d+:\d+\]$/, '')),
      // All links and addresses, filtered: naming an absent device makes the kernel run `modprobe netdev-kube-ipvs0`.
      ...(await run(lab, node.netns, ['ip', '-o', 'addr', 'show'])).split('\n').filter((l) => / kube-ipvs0 /.test(l)).map((l) => l.replace(/^\d+: /, '')),
      ...(await run(lab, node.netns, ['ip', '-o', 'link', 'show'])).split('\n').filter((l) => /^\d+: kube-ipvs0:/.test(l)).map((l) => l.replace(/^\d+: (\S+):.*/, '$1')),
    ];
    return lines.filter((l) => l.trim() !== '').sort().join('\n');
  },
  // IPVS keeps its own connection table beside nf_conntrack, and a UDP flow that keeps its source port
  // stays on its IPVS connection whatever happens to the conntrack entry. kube-proxy deletes a UDP real
  // server at once and relies on net.ipv4.vs.expire_nodest_conn=1 ("existing connections will be deleted
  // on the next packet", pkg/proxy/ipvs/graceful_termination.go), which this mode sets too; since 5.9 the
  // kernel also flushes a deleted real server's connections at once, and drops their conntrack entries
  // with them, so the janitor may find nothing left to delete. What must hold: no IPVS connection of the
  // frontend on any node still points to the removed endpoint (the flow itself was checked to move).
  staleFlowsCleared: async (lab, frontend, removed) => {
    for (const n of lab.nodes) {
      const conns = (await run(lab, n.netns, ['ipvsadm', '-L', '-n', '-c'])).split('\n').filter((l) => /^UDP\s/.test(l) && l.includes(` ${frontend} `));
      expect(conns.filter((l) => l.includes(` ${removed}:`)), `${n.name}: IPVS connections of ${frontend}`).toEqual([]);
    }
  },
  // The scheduler of node2's proxy (the client's node), on 60 sequential connections to a ClusterIP with three endpoints.
  moreCases: (ctx) => {
    const cases = [
      { scheduler: 'rr', what: 'takes the endpoints in turn: 20 connections each', check: (c: Map<string, number>) => {
        expect([...c.keys()].sort()).toEqual(WEB);
        for (const n of c.values()) expect(Math.abs(n - 20)).toBeLessThanOrEqual(1);
      } },
      { scheduler: 'lc', what: 'sends each new connection to the endpoint with the fewest: finished ones still count a while, so all three share', check: (c: Map<string, number>) => {
        expect([...c.keys()].sort()).toEqual(WEB);
        expect(Math.max(...c.values()) - Math.min(...c.values())).toBeLessThanOrEqual(6);
      } },
      { scheduler: 'sh', what: 'hashes the client\'s address: one endpoint for every connection of one client', check: (c: Map<string, number>) => {
        expect(c.size).toBe(1);
        expect(WEB).toContain([...c.keys()][0]);
      } },
    ];
    let base: LabProxy['opts'] | null = null;
    const restart = async (extra: string[]) => {
      const ps = ctx.proxies();
      const old = ps[1]!;
      base ??= old.opts;
      expect(await old.stop()).toBe(0);
      ps[1] = LabProxy.start(ctx.lab(), old.node, { ...base, args: [...(base.args ?? []), ...extra] });
      await ps[1].waitSynced();
    };
    for (const c of cases) {
      it(`--ipvs-scheduler ${c.scheduler} ${c.what}`, async () => {
        const lab = ctx.lab();
        await restart(['--ipvs-scheduler', c.scheduler]);
        // The restart found the virtual servers of the previous scheduler and edited them (-E), not recreated them.
        expect(await run(lab, lab.node('node2').netns, ['ipvsadm', '-S', '-n'])).toMatch(new RegExp(`^-A -t 10\\.96\\.2\\.10:80 -s ${c.scheduler}${c.scheduler === 'sh' ? ' -b sh-fallback' : ''}$`, 'm'));
        const results = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 60, timeoutMs: 2000 });
        const seen = counts(results);
        console.log(`ipvs ${c.scheduler}: ${JSON.stringify(Object.fromEntries(seen))}`);
        c.check(seen);
      });
    }
    // kube-proxy's graceful termination (src/dataplane/ipvs/graceful.ts): a TCP endpoint that leaves
    // keeps its open connections, at weight 0, until IPVS counts none (checked once a minute: the
    // deletion itself is in the unit tests, a minute is too long for a lab case under emulation).
    it('drains a removed TCP endpoint: its open connection keeps working, new connections avoid it, its real server stays at weight 0', async () => {
      const lab = ctx.lab();
      const ps = ctx.proxies();
      const change = async (file: string) => {
        const marks = ps.map((p) => p.logs.length);
        put(ctx.dir(), 'drain.yaml', file);
        await Promise.all(ps.map((p, i) => p.waitSynced(marks[i])));
      };
      const eps = endpointPods(lab);
      await change(`${service('drain', '10.96.2.40', HTTP)}---\n${slice('drain', HTTP, eps)}`);
      const conn = await lab.openConnection(lab.pod('client'), '10.96.2.40', 80);
      try {
        const chosen = conn.greeting.pod;
        const ip = lab.pod(chosen).ipv4;
        await change(`${service('drain', '10.96.2.40', HTTP)}---\n${slice('drain', HTTP, eps.filter((e) => e.ip !== ip))}`);
        const node2 = lab.node('node2').netns;
        expect(await run(lab, node2, ['ipvsadm', '-S', '-n'])).toMatch(new RegExp(`^-a -t 10\\.96\\.2\\.40:80 -r ${ip.replace(/\./g, '\\.')}:\\d+ -m -w 0$`, 'm'));
        // The listing the drain check reads, as this ipvsadm prints it: the open connection is counted.
        const conns = parseConnectionCounts(await run(lab, node2, ['ipvsadm', '-L', '-n']), canonicalIP);
        expect([...conns].filter(([k, n]) => k.startsWith(`TCP 10.96.2.40 80 ${ip} `) && n > 0)).toHaveLength(1);
        expect(await conn.send('still there')).toMatch(new RegExp(`^${chosen} `));
        const after = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.2.40', port: 80, count: 30, timeoutMs: 2000 });
        expect(after.filter((r) => !r.ok), JSON.stringify(Object.fromEntries(counts(after)))).toEqual([]);
        expect(pods(after).has(chosen)).toBe(false);
      } finally {
        await conn.close();
      }
    });

    it('back on the default scheduler (rr) for the cases after these', async () => {
      await restart([]);
      const lab = ctx.lab();
      expect(await run(lab, lab.node('node2').netns, ['ipvsadm', '-S', '-n'])).toMatch(/^-A -t 10\.96\.2\.10:80 -s rr$/m);
    });
  },
});
