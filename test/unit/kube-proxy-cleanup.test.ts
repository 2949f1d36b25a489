// What `bpfproxy cleanup --kube-proxy` removes, decided without root from
// iptables-save and ipvsadm -Sn text: kube-proxy's chains and the built-in
// chains' jumps to them; never a chain of other software or kubelet.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { removalRestore } from '../../src/dataplane/iptables/cleanup.js';
import { cleanupKubeProxy, KUBE_PROXY_REMOVAL, isKubeProxyChain, kubeProxyVirtualServers, parseAddresses, parseVirtualServers } from '../../src/cli/kube-proxy-cleanup.js';
import type { Logger } from '../../src/util/log.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const fixture = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'kube-proxy', 'iptables-v4.rules'), 'utf8');

describe('kube-proxy iptables leftovers', () => {
  it('knows kube-proxy\'s chains from kubelet\'s and everyone else\'s', () => {
    for (const c of ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-PROXY-CANARY', 'KUBE-SVC-NPX46M4PTMTKRN6Y', 'KUBE-SEP-IT2ZTR26TO4XFPTO', 'KUBE-XLB-GNZBNJ2PO5MGZ6GT', 'KUBE-NODE-PORT']) {
      expect(isKubeProxyChain(c), c).toBe(true);
    }
    for (const c of ['KUBE-FIREWALL', 'KUBE-KUBELET-CANARY', 'KUBE-MARK-DROP', 'KUBE-IPTABLES-HINT', 'KUBE-SVC-short', 'LAB-APP', 'BPX-SERVICES']) {
      expect(isKubeProxyChain(c), c).toBe(false);
    }
  });

  it('removes every kube-proxy chain of the fixture and only the built-in chains\' jumps to them', () => {
    const r = removalRestore(fixture, KUBE_PROXY_REMOVAL);
    expect(r.kept).toEqual([]);
    expect(r.removedChains).toContain('nat/KUBE-SVC-GNZBNJ2PO5MGZ6GT');
    expect(r.removedChains).toContain('mangle/KUBE-PROXY-CANARY');
    expect(r.removedChains.some((c) => /KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT)$|LAB-/.test(c))).toBe(false);
    expect(r.removedJumps).toEqual([
      'filter: -D INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'filter: -D INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
      'filter: -D INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES',
      'filter: -D FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'filter: -D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      'filter: -D FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'filter: -D FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES',
      'filter: -D OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
      'filter: -D OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'nat: -D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'nat: -D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      'nat: -D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]);
  });

  it('leaves a kube-proxy chain that another chain still jumps to, with what it reaches, and says which', () => {
    const saved = '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n' +
      '-A PREROUTING -j KUBE-SERVICES\n-A CNI-HOSTPORT-DNAT -j KUBE-SERVICES\n-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-NPX46M4PTMTKRN6Y\nCOMMIT\n';
    const r = removalRestore(saved, KUBE_PROXY_REMOVAL);
    expect(r.kept.sort()).toEqual(['nat/KUBE-SERVICES', 'nat/KUBE-SVC-NPX46M4PTMTKRN6Y']);
    expect(r.removedChains).toEqual(['nat/KUBE-MARK-MASQ']);
    expect(r.text).not.toContain('CNI-HOSTPORT-DNAT');
  });
});

describe('kube-proxy ipvs leftovers', () => {
  const save = [
    '-A -t 10.96.0.1:443 -s rr',
    '-a -t 10.96.0.1:443 -r 172.18.0.11:6443 -m -w 1',
    '-A -u 10.96.0.10:53 -s rr',
    '-A -t 172.18.0.11:30080 -s rr',
    '-A -t [fd00:96::1]:443 -s rr',
    '-A -t 192.0.2.7:80 -s wlc',
    '-A -t 172.18.0.11:8080 -s rr',
  ].join('\n');

  it('reads the virtual servers, and picks those on kube-ipvs0 and the NodePorts on local addresses', () => {
    const all = parseVirtualServers(save);
    expect(all).toHaveLength(6);
    const mine = kubeProxyVirtualServers(all, new Set(['10.96.0.1', '10.96.0.10', 'fd00:96::1']), new Set(['172.18.0.11']), { min: 30000, max: 32767 });
    expect(mine).toEqual([
      { proto: '-t', address: '10.96.0.1', port: 443 },
      { proto: '-u', address: '10.96.0.10', port: 53 },
      { proto: '-t', address: '172.18.0.11', port: 30080 },
      { proto: '-t', address: 'fd00:96::1', port: 443 },
    ]);
  });

  it('reads addresses from ip -o addr', () => {
    const text = '7: kube-ipvs0    inet 10.96.0.1/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n' +
      '7: kube-ipvs0    inet6 fd00:96::1/128 scope global \\       valid_lft forever preferred_lft forever\n';
    expect(parseAddresses(text)).toEqual(['10.96.0.1', 'fd00:96::1']);
  });
});

describe('kube-proxy ipvs leftovers beside bpfproxy\'s own ipvs mode', () => {
  /** A node where both left ipvs state: every command recorded, answers from `ipset`, `ipvsadm` and `ip` canned. */
  const node = (sets: string[]) => {
    const calls: string[] = [];
    const run = async (command: string, args: readonly string[]) => {
      calls.push(`${command} ${args.join(' ')}`);
      if (command === 'ipset' && args[0] === 'list') return { ok: true, stdout: sets.join('\n') + '\n', stderr: '' };
      if (command === 'ipvsadm' && args[0] === '-Sn') return { ok: true, stdout: '-A -t 10.96.0.1:443 -s rr\n', stderr: '' };
      if (command === 'ip' && args.includes('kube-ipvs0')) return { ok: true, stdout: '5: kube-ipvs0    inet 10.96.0.1/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n', stderr: '' };
      return { ok: true, stdout: '', stderr: '' };
    };
    const quiet = async () => ({ ok: false, stdout: '', stderr: 'not here' });
    return { calls, deps: { run, xt: quiet, nft: quiet, hasIpvs: () => true, nodePorts: { min: 30000, max: 32767 } } };
  };
  const log = { info: () => undefined, warn: vi.fn(), debug: () => undefined, error: () => undefined } as unknown as Logger;

  it('leaves every virtual server and kube-ipvs0 when bpfproxy\'s ipvs mode has state here, and says why', async () => {
    const { calls, deps } = node(['BPX-CLUSTER-IP', 'KUBE-CLUSTER-IP']);
    await cleanupKubeProxy(deps, log);
    expect(calls.filter((c) => c.startsWith('ipvsadm -D') || c.startsWith('ip link delete'))).toEqual([]);
    expect((log.warn as ReturnType<typeof vi.fn>).mock.calls.some((args: unknown[]) => args.some((a) => String(a).includes('shares kube-ipvs0')))).toBe(true);
    // kube-proxy's own ipsets are still removed: bpfproxy's are named BPX-.
    expect(calls).toContain('ipset destroy KUBE-CLUSTER-IP');
    expect(calls).not.toContain('ipset destroy BPX-CLUSTER-IP');
  });

  it('removes kube-proxy\'s virtual servers and kube-ipvs0 when only kube-proxy left ipvs state', async () => {
    const { calls, deps } = node(['KUBE-CLUSTER-IP']);
    await cleanupKubeProxy(deps, log);
    expect(calls).toContain('ipvsadm -D -t 10.96.0.1:443');
    expect(calls).toContain('ip link delete kube-ipvs0');
  });
});
