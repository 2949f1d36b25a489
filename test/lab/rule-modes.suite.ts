// The end-to-end cases every rule-based mode must pass, for real: bpfproxy
// --proxy-mode <mode> in each node of a lab cluster. Nothing is attached to
// the lab's cgroups in these modes, so every connection below goes through the
// rules in the node's namespace: pods to ClusterIPs (DNAT in prerouting,
// forwarded), the external client on the wire to NodePorts (DNAT, masquerade
// for the Cluster policy). Run once per mode by test/lab/<mode>.test.ts; what
// differs between modes (how the fallback into it is provoked, where to look
// for its rules) is the ModeCase.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeStateFilesUnder } from '../../src/dataplane/state-file.js';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { labMs } from '../../src/lab/time-scale.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { expectRefusedAtOnce, expectUdpSpread } from '../helpers/lab-checks.js';
import { endpointPods, TWO_NODES } from '../helpers/lab-cluster.js';
import { DNS, HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';
import { udpFlow } from '../helpers/udp-flow.js';

export interface ModeCase {
  mode: 'nftables' | 'iptables' | 'ipvs';
  /** Why the mode cannot be tested here, or null. */
  unavailable(): string | null;
  /** How node1 is started so that it falls back into this mode (dir: the test's scratch directory). */
  fallback(dir: string): { args: string[]; env?: Record<string, string> };
  /** The fallback's reason, as logged in "dataplane: <mode>". */
  fallbackReason: RegExp;
  /** The mode's rules for 10.96.2.10:80, as the node's kernel lists them. */
  listRules(lab: Lab, node: LabNode): Promise<string>;
  /** What listRules must show. */
  rulesShow: RegExp;
  /** Everything of ours the node's kernel holds, as text that does not change when nothing does ("" when cleaned up). */
  leftovers(lab: Lab, node: LabNode): Promise<string>;
  /** Cases only this mode has, run after the shared ones and before the restart and cleanup cases. */
  moreCases?(ctx: SuiteContext): void;
  /**
   * After the sync that removed UDP endpoint `removed` of `frontend` (ADDR:PORT): that nothing of the
   * mode still steers flows to it. Default: the conntrack janitor says it deleted their entries.
   */
  staleFlowsCleared?(lab: Lab, frontend: string, removed: string): Promise<void>;
}

/** The running suite, for moreCases: proxies()[1] is node2's (the client's node), started with --proxy-mode MODE --no-fallback. */
export interface SuiteContext {
  lab(): Lab;
  proxies(): LabProxy[];
  /** The manifests directory both proxies read (put() a file there to change the cluster). */
  dir(): string;
}

export function binaryRuns(file: string, args: string[]): boolean {
  try {
    execFileSync(file, args, { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** What the rules of the three modes and the conntrack janitor make the kernel load on first use. */
const RULE_MODULES = [
  'nft_chain_nat', 'nft_nat', 'nft_ct', 'nft_masq', 'nft_numgen', 'nft_fib_ipv4', 'nft_fib_ipv6', 'nft_reject_ipv4', 'nft_reject_ipv6',
  'nft_reject_inet', 'nft_compat', 'xt_comment', 'xt_conntrack', 'xt_mark', 'xt_MASQUERADE', 'xt_nat', 'xt_tcpudp', 'xt_addrtype',
  'xt_statistic', 'xt_recent', 'ipt_REJECT', 'ip6t_REJECT', 'nf_conntrack_netlink',
];
const BRIDGE_NF_CALL = '/proc/sys/net/bridge/bridge-nf-call-iptables';

/**
 * Loads what the suite needs where the kernel has it as modules, and says why
 * the suite cannot run, or null.
 *
 * br_netfilter: the lab's pods sit on a Linux bridge (br0), as with the bridge
 * CNI plugin, kubenet or flannel's cni0. The reply of an endpoint to a client
 * pod on the same bridge is switched, not routed, and has the ClusterIP's DNAT
 * undone only when br_netfilter passes bridged packets through the IP hooks
 * (bridge-nf-call-iptables, 1 in every namespace once loaded). Kubernetes asks
 * for it on such nodes (kubeadm's preflight checks it). The host kernel has it
 * built in; Debian's kernels have it as a module that nothing loads on its
 * own. Measured in the 6.1 guest without it: every case where the client pod
 * reached b1, the endpoint beside it on node2, failed (TCP timed out; UDP was
 * answered from b1's own address): 11 of the 26 cases of the
 * nftables and iptables files.
 *
 * The rule modules: each autoload is one modprobe, which took tens of seconds
 * in a loaded TCG guest (a first nftables sync still unfinished after 150 s,
 * after the iptables file had loaded its own): one modprobe for all of them
 * before the proxies start. Kernels without modules (this repository's host)
 * have what they have built in.
 */
export function prepareKernel(): string | null {
  if (existsSync('/proc/modules')) binaryRuns('modprobe', ['-a', '-q', 'br_netfilter', ...RULE_MODULES]);
  return existsSync(BRIDGE_NF_CALL) ? null : 'the kernel has no br_netfilter (`modprobe br_netfilter` failed), which the lab\'s pod bridge needs';
}

export function ruleModeSuite(mc: ModeCase): void {
  const isRoot = process.getuid?.() === 0;
  const why = isRoot ? (mc.unavailable() ?? prepareKernel()) : 'they build network namespaces, which needs root';
  if (why) console.log(`${mc.mode} lab tests skipped: ${why}`);

  describe.skipIf(why !== null)(`ClusterIP and NodePort through --proxy-mode ${mc.mode} in a lab cluster`, () => {
    let lab: Lab;
    let dir: string;
    let proxies: LabProxy[] = [];
    const backends = () => endpointPods(lab);
    const client = () => lab.pod('client');
    /** A UDP service on a ClusterIP and a NodePort, with the endpoint pods `keep` accepts. */
    const flowService = (keep: (pod: string) => boolean) => `${service('flow', '10.96.2.70', [{ ...DNS[0]!, nodePort: 30053 }], ['type: NodePort'])}---\n` +
      slice('flow', DNS, (['a1', 'a2', 'b1'] as const).filter(keep).map((p) => ({ ip: lab.pod(p).ipv4, node: lab.pod(p).node })));

    beforeAll(async () => {
      lab = await createLab({
        nodes: TWO_NODES,
        external: true,
        ipv6: true,
      });
      dir = mkdtempSync(join(tmpdir(), `bpfproxy-lab-${mc.mode}-`));
      put(dir, 'web.yaml', `${service('web', '10.96.2.10', HTTP)}---\n${slice('web', HTTP, backends())}`);
      put(dir, 'dns.yaml', `${service('dns', '10.96.2.53', DNS)}---\n${slice('dns', DNS, backends())}`);
      put(dir, 'empty.yaml', `${service('empty', '10.96.2.99', [...HTTP, ...DNS])}---\n${slice('empty', [...HTTP, ...DNS], [])}`);
      put(dir, 'web6.yaml', `${service('web6', 'fd00:96::210', HTTP, ['ipFamilies: [IPv6]'])}---\n` +
        slice('web6', HTTP, endpointPods(lab, 'IPv6'), 'IPv6'));
      put(dir, 'shrink.yaml', `${service('shrink', '10.96.2.20', HTTP)}---\n${slice('shrink', HTTP, backends())}`);
      put(dir, 'sticky.yaml', `${service('sticky', '10.96.2.30', HTTP, ['sessionAffinity: ClientIP'])}---\n${slice('sticky', HTTP, backends())}`);
      put(dir, 'np.yaml', `${service('np', '10.96.2.60', [{ ...HTTP[0]!, nodePort: 30080 }], ['type: NodePort'])}---\n${slice('np', HTTP, backends())}`);
      put(dir, 'flow.yaml', flowService(() => true));
      put(dir, 'nplocal.yaml', `${service('nplocal', '10.96.2.61', [{ ...HTTP[0]!, nodePort: 30081 }], ['type: NodePort', 'externalTrafficPolicy: Local'])}---\n` +
        slice('nplocal', HTTP, backends().filter((b) => b.node === 'node1')));
      // node1 asks for an earlier mode that cannot run: it must fall back to this one.
      // No periodic full sync (30 s by default) inside a case: in a loaded guest one landed between a
      // change and the sync that was to write it, and the partial sync the case waits for was not the next one.
      const common = ['--cluster-cidr', '10.244.0.0/16,fd00:244::/32', '--min-sync-period', '0s', '--sync-period', '1h'];
      const fb = mc.fallback(dir);
      proxies = [
        LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: [...common, ...fb.args], ...(fb.env ? { env: fb.env } : {}) }),
        LabProxy.start(lab, lab.node('node2'), { manifests: dir, args: [...common, '--proxy-mode', mc.mode, '--no-fallback'] }),
      ];
      await Promise.all(proxies.map((p) => p.waitSynced()));
    });

    afterAll(async () => {
      for (const p of proxies) await p.stop().catch(() => undefined);
      await lab?.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
      // node1's fallback pins under dir: its state file for `bpfproxy status` is keyed by that path.
      if (dir) removeStateFilesUnder(dir);
    });

    it(`runs in ${mc.mode} mode, asked for or as a fallback; its rules are in the node, nothing is attached to the node cgroup`, async () => {
      const started = proxies[1]!.logs.find((l) => l.msg === `dataplane: ${mc.mode}`);
      expect(started).toMatchObject({ mode: mc.mode, reason: `--proxy-mode ${mc.mode}` });
      const fellBack = proxies[0]!.logs.find((l) => l.msg === `dataplane: ${mc.mode}`);
      expect(String(fellBack?.reason)).toMatch(mc.fallbackReason);
      expect(proxies[0]!.logs.filter((l) => new RegExp(`falling back to ${mc.mode}$`).test(l.msg))).toHaveLength(1);
      expect(execFileSync('bpftool', ['cgroup', 'show', lab.node('node1').cgroup], { encoding: 'utf8' }).trim()).toBe('');
      expect(await mc.listRules(lab, lab.node('node2'))).toMatch(mc.rulesShow);
      expect(execFileSync('bpftool', ['cgroup', 'show', lab.node('node2').cgroup], { encoding: 'utf8' }).trim()).toBe('');
    });

    it('spreads TCP connections over every backend; the client sees the ClusterIP, the backend sees the client', async () => {
      const results = await lab.client(client(), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 60, timeoutMs: 2000 });
      expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
      for (const r of results) {
        if (!r.ok) continue;
        expect(r.peer).toBe('10.96.2.10:80');
        expect(r.client.split(':')[0]).toBe(client().ipv4); // a pod of the cluster CIDR: not masqueraded
      }
    });

    it('spreads UDP, connected and unconnected, over every backend and answers from the ClusterIP', async () => {
      await expectUdpSpread(lab, client(), '10.96.2.53', ['a1', 'a2', 'b1']);
    });

    it('serves an IPv6 ClusterIP', async () => {
      const results = await lab.client(client(), { proto: 'tcp', host: 'fd00:96::210', port: 80, count: 40, timeoutMs: 2000 });
      expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
      for (const r of results) if (r.ok) expect(r.peer).toBe('[fd00:96::210]:80');
    });

    it('keeps a client on one backend with sessionAffinity ClientIP', async () => {
      const results = await lab.client(client(), { proto: 'tcp', host: '10.96.2.30', port: 80, count: 20, timeoutMs: 2000 });
      expect(results.every((r) => r.ok)).toBe(true);
      expect(pods(results).size).toBe(1);
    });

    it('refuses a connection to a service without endpoints at once', async () => {
      await expectRefusedAtOnce(lab, client(), '10.96.2.99');
    });

    it('NodePort from outside the cluster: every endpoint, masqueraded (externalTrafficPolicy Cluster)', async () => {
      const node1 = lab.node('node1');
      const results = await lab.client('external', { proto: 'tcp', host: node1.ipv4, port: 30080, count: 60, timeoutMs: 2000 });
      expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
      for (const r of results) {
        if (!r.ok) continue;
        expect(r.peer).toBe(`${node1.ipv4}:30080`);
        // The backend sees node1 (its wire or bridge address), so its reply comes back through node1.
        expect([node1.ipv4, node1.gatewayV4]).toContain(r.client.split(':')[0]);
      }
    });

    it('NodePort with externalTrafficPolicy Local: local endpoints with the client address kept, dropped on a node without any', async () => {
      const ext = lab.external!.ipv4;
      const onNode1 = await lab.client('external', { proto: 'tcp', host: lab.node('node1').ipv4, port: 30081, count: 30, timeoutMs: 2000 });
      expect(pods(onNode1)).toEqual(new Set(['a1', 'a2']));
      for (const r of onNode1) if (r.ok) expect(r.client.split(':')[0]).toBe(ext);
      const onNode2 = await lab.client('external', { proto: 'tcp', host: lab.node('node2').ipv4, port: 30081, count: 1, timeoutMs: 700 });
      expect(onNode2[0]).toMatchObject({ ok: false, error: 'ETIMEDOUT' });
    });

    it('sends no new connection to an endpoint once the sync that removed it is done', async () => {
      const before = await lab.client(client(), { proto: 'tcp', host: '10.96.2.20', port: 80, count: 40, timeoutMs: 2000 });
      expect(pods(before)).toContain('b1');
      const marks = proxies.map((p) => p.logs.length);
      put(dir, 'shrink.yaml', `${service('shrink', '10.96.2.20', HTTP)}---\n${slice('shrink', HTTP, backends().filter((b) => b.node === 'node1'))}`);
      const synced = await Promise.all(proxies.map((p, i) => p.waitSynced(marks[i])));
      // A partial sync: only the changed service's rules were written.
      expect(synced[1]).toMatchObject({ full: false, changed: 1 });
      const after = await lab.client(client(), { proto: 'tcp', host: '10.96.2.20', port: 80, count: 60, timeoutMs: 2000 });
      expect(pods(after)).toEqual(new Set(['a1', 'a2']));
    });

    // kube-proxy's conntrack hygiene: a datagram matching a conntrack entry is
    // NATed by the entry, not by the rules, so without it a client that keeps
    // its source port keeps reaching the removed endpoint (whose pod still
    // answers here) until the entry times out.
    it.each([
      { via: 'a ClusterIP, from a pod', host: () => '10.96.2.70', port: 53, from: () => client(), sport: 40053 },
      { via: 'a NodePort, from outside the cluster', host: () => lab.node('node1').ipv4, port: 30053, from: () => 'external' as const, sport: 40054 },
    ])('moves a UDP flow that keeps its source port off a removed endpoint within a second ($via)', async ({ host, port, from, sport }) => {
      const first = await udpFlow(lab, from(), host(), port, sport, 0.5);
      expect(first.length).toBeGreaterThan(0);
      const chosen = first[0]!.pod;
      // One conntrack entry: every datagram of the flow reaches the same endpoint.
      expect(new Set(first.map((r) => r.pod))).toEqual(new Set([chosen]));
      const marks = proxies.map((p) => p.logs.length);
      try {
        // The flow's client must be answering before the change: a lab wait (python's start took over
        // a second in a loaded TCG guest, and no reply came before the change); the flow outlasts it.
        const lead = labMs(1000);
        // Long enough for the change's syncs on both nodes as well (12 s and more in a guest at load 20).
        const flow = udpFlow(lab, from(), host(), port, sport, 2 + (3 * lead) / 1000);
        await new Promise((r) => setTimeout(r, lead));
        put(dir, 'flow.yaml', flowService((p) => p !== chosen));
        const synced = await Promise.all(proxies.map((p, i) => p.waitSynced(marks[i])));
        const changedAt = Math.max(...synced.map((l) => Date.parse(String(l.time))));
        const replies = await flow;
        expect(replies.filter((r) => r.t < changedAt).map((r) => r.pod)).toContain(chosen);
        expect(replies.filter((r) => r.pod === chosen && r.t > changedAt + 1000)).toEqual([]);
        // The flow goes on, to an endpoint that is still there.
        const after = replies.filter((r) => r.t > changedAt + 1000);
        expect(after.length).toBeGreaterThan(0);
        expect(after.every((r) => r.pod !== chosen)).toBe(true);
        if (mc.staleFlowsCleared) await mc.staleFlowsCleared(lab, `${host()}:${port}`, lab.pod(chosen).ipv4);
        else expect(proxies.some((p, i) => p.logs.slice(marks[i]).some((l) => l.msg === 'deleted conntrack entries that pointed to removed endpoints'))).toBe(true);
      } finally {
        const back = proxies.map((p) => p.logs.length);
        put(dir, 'flow.yaml', flowService(() => true));
        await Promise.all(proxies.map((p, i) => p.waitSynced(back[i])));
      }
    });

    mc.moreCases?.({ lab: () => lab, proxies: () => proxies, dir: () => dir });

    it('a restarted proxy converges on the same rules: nothing duplicated, nothing left behind', async () => {
      const before = await mc.leftovers(lab, lab.node('node2'));
      const old = proxies[1]!;
      expect(await old.stop()).toBe(0);
      proxies[1] = LabProxy.start(lab, old.node, old.opts);
      const synced = await proxies[1].waitSynced();
      expect(synced).toMatchObject({ full: true });
      expect(await mc.leftovers(lab, lab.node('node2'))).toBe(before);
    });

    it('keeps serving after the proxy stops; bpfproxy cleanup removes what it made', async () => {
      const node2 = proxies[1]!;
      expect(await node2.stop()).toBe(0);
      const still = await lab.client(client(), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 10, timeoutMs: 2000 });
      expect([...pods(still)].every((p) => ['a1', 'a2', 'b1'].includes(p))).toBe(true);
      expect(await mc.leftovers(lab, node2.node)).not.toBe('');
      await lab.exec(node2.node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--bpf-fs', node2.node.bpffs]);
      expect(await mc.leftovers(lab, node2.node)).toBe('');
    });
  });
}
