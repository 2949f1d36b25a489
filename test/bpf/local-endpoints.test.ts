// Finding a local backend's veth and MACs (src/dataplane/bpf/local-endpoints.ts)
// and the netfilter gate of the local redirect (netfilter-forward.ts), from
// the JSON `ip`, `bridge` and `nft` print: no root, no kernel.
import { describe, expect, it } from 'vitest';
import { parseIpAddressJson } from '../../src/dataplane/bpf/devices.js';
import { indexSnapshot, parseFdb, parseNeighbours, parseRoutes, resolveLocalEndpoint } from '../../src/dataplane/bpf/local-endpoints.js';
import { legacyForwardPathChains, nftForwardPathChains } from '../../src/dataplane/bpf/netfilter-forward.js';

// A lab node: pods behind the bridge br0, one pod on a routed veth (Calico's shape), a remote pod CIDR via node2.
const LINKS = JSON.stringify([
  { ifindex: 1, ifname: 'lo', address: '00:00:00:00:00:00' },
  { ifindex: 2, ifname: 'eth0', address: '02:00:00:00:00:0b', linkinfo: { info_kind: 'veth' } },
  { ifindex: 3, ifname: 'br0', address: '02:00:00:00:01:01', linkinfo: { info_kind: 'bridge' } },
  { ifindex: 4, ifname: 'vp1', address: '02:00:00:00:01:f1', master: 'br0', linkinfo: { info_kind: 'veth' } },
  { ifindex: 5, ifname: 'cali9', address: 'ee:ee:ee:ee:ee:ee', linkinfo: { info_kind: 'veth' } },
  { ifindex: 6, ifname: 'tap0', address: '02:00:00:00:01:f2', master: 'br0', linkinfo: { info_kind: 'tun' } },
]);
const ROUTES4 = JSON.stringify([
  { dst: '10.244.1.0/24', dev: 'br0', protocol: 'kernel', scope: 'link', prefsrc: '10.244.1.1' },
  { dst: '10.244.1.50', dev: 'cali9', scope: 'link' },
  { dst: '10.244.2.0/24', gateway: '172.18.0.12', dev: 'eth0' },
  { dst: '172.18.0.0/24', dev: 'eth0', scope: 'link' },
  { type: 'blackhole', dst: '10.244.9.0/24' },
]);
const NEIGH = JSON.stringify([
  { dst: '10.244.1.10', dev: 'br0', lladdr: '32:aa:00:00:00:10', state: ['REACHABLE'] },
  { dst: '10.244.1.11', dev: 'br0', lladdr: '32:aa:00:00:00:11', state: ['STALE'] },
  { dst: '10.244.1.12', dev: 'br0', state: ['FAILED'] },
  { dst: '10.244.1.13', dev: 'br0', lladdr: '32:aa:00:00:00:13', state: ['REACHABLE'] },
  { dst: '10.244.1.14', dev: 'br0', lladdr: '32:AA:00:00:00:14', state: ['DELAY'] },
  { dst: '10.244.1.50', dev: 'cali9', lladdr: '5a:00:00:00:00:50', state: ['PERMANENT'] },
]);
const FDB = JSON.stringify([
  { mac: '32:aa:00:00:00:10', ifname: 'vp1', master: 'br0', state: '' },
  { mac: '32:aa:00:00:00:11', ifname: 'vp1', master: 'br0', state: '' },
  { mac: '32:aa:00:00:00:14', ifname: 'tap0', master: 'br0', state: '' },
  { mac: '33:33:00:00:00:01', ifname: 'vp1', state: 'permanent' },
]);

const snap = indexSnapshot({ links: parseIpAddressJson(LINKS), routes: parseRoutes(ROUTES4, 4), neighbours: parseNeighbours(NEIGH), fdb: parseFdb(FDB) });
const takes = () => null;

describe('local endpoints: a backend address -> its veth and MACs', () => {
  it('a pod behind a bridge: the bridge port that learned its MAC, the pod\'s MAC, the bridge\'s MAC as the source', () => {
    expect(resolveLocalEndpoint('10.244.1.10', snap, takes)).toEqual({ ok: true, ep: { address: '10.244.1.10', ifindex: 4, device: 'vp1', mac: '32:aa:00:00:00:10', srcMac: '02:00:00:00:01:01' } });
  });

  it('a pod on a routed veth (a /32 route on it): that veth, the veth\'s own MAC as the source', () => {
    expect(resolveLocalEndpoint('10.244.1.50', snap, takes)).toEqual({ ok: true, ep: { address: '10.244.1.50', ifindex: 5, device: 'cali9', mac: '5a:00:00:00:00:50', srcMac: 'ee:ee:ee:ee:ee:ee' } });
  });

  it('a STALE neighbour is usable (the kernel would send to it too); the MAC is compared case-blind', () => {
    expect(resolveLocalEndpoint('10.244.1.11', snap, takes).ok).toBe(true);
  });

  it.each([
    ['10.244.1.12', /no usable neighbour/], // FAILED
    ['10.244.1.99', /no usable neighbour/], // never talked to
    ['10.244.1.13', /no forwarding entry on bridge br0/], // the bridge forgot (or never learned) its port
    ['10.244.1.14', /tap0 is not a veth/],
    ['10.244.2.10', /through a gateway/],
    ['10.244.9.1', /no route/], // a blackhole is no way to a pod
    ['192.0.2.1', /no route/],
  ])('%s is not redirected: %s', (address, reason) => {
    const r = resolveLocalEndpoint(address, snap, takes);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });

  it('a veth the kernel says takes no redirected frames is not redirected, with the kernel\'s reason', () => {
    const r = resolveLocalEndpoint('10.244.1.10', snap, (l) => (l.name === 'vp1' ? 'its peer runs no NAPI' : null));
    expect(r).toEqual({ ok: false, reason: 'its peer runs no NAPI' });
  });

  it('IPv6 routes: a host route without a prefix is a /128', () => {
    const r6 = parseRoutes(JSON.stringify([{ dst: 'fd00:244:1::10', dev: 'cali9' }, { dst: 'default', gateway: 'fd00:18::1', dev: 'eth0' }]), 6);
    expect(r6.map((r) => [r.dst.text, r.direct])).toEqual([['fd00:244:1::10/128', true], ['::/0', false]]);
  });
});

describe('the netfilter gate: does anything hook forwarded traffic?', () => {
  const nft = (items: object[]) => JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, ...items] });
  const chain = (family: string, table: string, name: string, hook: string, policy = 'accept') => ({ chain: { family, table, name, handle: 1, type: 'filter', hook, prio: 0, policy } });
  const rule = (family: string, table: string, ch: string) => ({ rule: { family, table, chain: ch, handle: 2, expr: [] } });

  it('nothing at all (a bpf-mode node): no chain', () => {
    expect(nftForwardPathChains(nft([]))).toEqual([]);
  });

  it('iptables-nft\'s FORWARD with kube-proxy\'s INVALID drop, a bridge-family forward chain with a rule: both named', () => {
    expect(nftForwardPathChains(nft([chain('ip', 'filter', 'FORWARD', 'forward'), rule('ip', 'filter', 'FORWARD'), chain('bridge', 'f', 'fw', 'forward'), rule('bridge', 'f', 'fw')])))
      .toEqual(['ip filter FORWARD (1 rules)', 'bridge f fw (1 rules)']);
  });

  it('empty forward-path chains with an accept policy, and input/output chains with rules, do not count; a drop policy does', () => {
    expect(nftForwardPathChains(nft([
      chain('ip', 'filter', 'FORWARD', 'forward'), chain('ip', 'filter', 'INPUT', 'input'), rule('ip', 'filter', 'INPUT'),
      chain('inet', 'fw', 'out', 'output'), rule('inet', 'fw', 'out'), chain('ip6', 'nat', 'pre', 'prerouting', 'drop'),
    ]))).toEqual(['ip6 nat pre (0 rules, policy drop)']);
  });

  it('legacy tables: rules in the forward-path built-in chains count, rules elsewhere do not', () => {
    const save = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '-A INPUT -j KUBE-FIREWALL', 'COMMIT',
      '*nat', ':PREROUTING ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', '-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE', 'COMMIT',
      '*mangle', ':FORWARD DROP [0:0]', 'COMMIT'].join('\n');
    expect(legacyForwardPathChains(save)).toEqual(['nat POSTROUTING', 'mangle FORWARD (policy DROP)']);
  });
});
