// The local redirect's refresh loop (src/dataplane/bpf/local-redirect.ts)
// with its inputs replaced: fake `ip monitor` / `nft monitor` children, an
// injected reader of the node, a fake clock; real BPF hash maps stand in
// for its two maps (plain hashes: no device is named in a devmap). What it
// shows: an endpoint change reads at once; neighbour churn reads nothing; a
// MAC change reads once, after the debounce, without asking nftables; a
// ruleset change closes the gate; the safety period reads everything; the
// monitors run only while local backends exist and die with the proxy.
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_EP, LOCAL_EP_KEY } from '../../src/dataplane/bpf/layout.js';
import type { WatchedChild } from '../../src/dataplane/bpf/link-monitor.js';
import { parseRoutes, type NodeNetSnapshot, type SnapLink } from '../../src/dataplane/bpf/local-endpoints.js';
import { LocalRedirect } from '../../src/dataplane/bpf/local-redirect.js';
import { BpfMap } from '../../src/dataplane/bpf/map.js';
import * as native from '../../src/dataplane/bpf/native.js';
import type { DesiredDataplane } from '../../src/planner/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { ipBytes } from '../../src/util/ip.js';
import { silentLogger } from '../../src/util/log.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('local redirect refresh tests skipped: creating BPF maps needs root');

class FakeChild extends EventEmitter implements WatchedChild {
  readonly stdout = new EventEmitter();
  killed = false;
  kill(): boolean {
    this.killed = true;
    return true;
  }
  print(...lines: string[]): void {
    this.stdout.emit('data', lines.map((l) => `${l}\n`).join(''));
  }
}

const POD = '10.244.1.10';
const link = (ifindex: number, name: string, mac: string, kind: string, master = ''): SnapLink => ({ ifindex, name, mac, kind, master, linkType: 'ether', addresses: [] });

/** A node with one pod behind br0 on vp1, whose MAC the test changes. */
function node(mac: string): NodeNetSnapshot {
  return {
    links: [link(3, 'br0', '02:00:00:00:01:01', 'bridge'), link(4, 'vp1', '02:00:00:00:01:f1', 'veth', 'br0')],
    routes: parseRoutes(JSON.stringify([{ dst: '10.244.1.0/24', dev: 'br0', scope: 'link' }]), 4),
    neighbours: [{ address: POD, dev: 'br0', mac, usable: true }],
    fdb: [{ mac, port: 'vp1', bridge: 'br0' }],
  };
}

/** A plan with these addresses as local backends (only what localBackendAddresses reads). */
const plan = (local: string[]) => ({
  services: new Map([['web', { external: { backends: local.map((address) => ({ address, local: true })) }, internal: { backends: [] }, cluster: { backends: [] } }]]),
}) as unknown as DesiredDataplane;

describe.skipIf(!isRoot)('LocalRedirect: refreshed by events, read off the event loop', () => {
  const pins = { eps: `/sys/fs/bpf/bpfproxy-lrtest-eps-${process.pid}`, devs: `/sys/fs/bpf/bpfproxy-lrtest-devs-${process.pid}` };
  let eps: BpfMap;
  let devs: BpfMap;

  beforeAll(() => {
    execFileSync('bpftool', ['map', 'create', pins.eps, 'type', 'hash', 'key', String(LOCAL_EP_KEY.size), 'value', String(LOCAL_EP.size), 'entries', '16', 'name', 'lrtest_eps']);
    execFileSync('bpftool', ['map', 'create', pins.devs, 'type', 'hash', 'key', '4', 'value', '4', 'entries', '16', 'name', 'lrtest_devs']);
    eps = new BpfMap('lrtest_eps', native.objGet(pins.eps));
    devs = new BpfMap('lrtest_devs', native.objGet(pins.devs));
  });

  afterAll(() => {
    for (const m of [eps, devs]) if (m) native.closeFd(m.fd);
    for (const p of Object.values(pins)) rmSync(p, { force: true });
  });

  /** The pod MAC in the eps map, or null. */
  function entryMac(address: string): string | null {
    const k = Buffer.alloc(LOCAL_EP_KEY.size);
    k.set(ipBytes(address), LOCAL_EP_KEY.fields.addr.offset);
    k.writeUInt8(4, LOCAL_EP_KEY.fields.family.offset);
    const v = Buffer.alloc(LOCAL_EP.size);
    if (!native.lookup(eps.fd, k, v)) return null;
    return [...v.subarray(LOCAL_EP.fields.mac.offset, LOCAL_EP.fields.mac.offset + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  }

  it('follows the node by events, reads as little as it can, and stops watching when it has nothing to watch', async () => {
    const clock = new FakeClock();
    const children = new Map<string, FakeChild[]>();
    const spawn = (argv: readonly string[]) => {
      const c = new FakeChild();
      children.set(argv[0]!, [...(children.get(argv[0]!) ?? []), c]);
      return c;
    };
    let snapshot = node('32:aa:00:00:00:10');
    let gate: string | null = null;
    const reads = { node: 0, netfilter: 0 };
    const lr = new LocalRedirect({
      eps, devs, log: silentLogger(), clock, spawn, check: () => null,
      readNode: async () => { reads.node++; return snapshot; },
      netfilter: async () => { reads.netfilter++; return gate; },
    });
    const ip = () => children.get('ip')!.at(-1)!;
    const nft = () => children.get('nft')!.at(-1)!;
    try {
      expect(children.size).toBe(0); // no local backend yet: nothing watched

      lr.update(plan([POD]));
      await clock.advance(0);
      await lr.settled();
      expect(reads).toEqual({ node: 1, netfilter: 1 });
      expect(entryMac(POD)).toBe('32:aa:00:00:00:10');
      expect(lr.watching).toBe(true);

      // Neighbour churn (the same MAC, still usable) and neighbours of other hosts: no read.
      for (let i = 0; i < 20; i++) ip().print(`[NEIGH]${POD} dev br0 lladdr 32:aa:00:00:00:10 ${i % 2 ? 'STALE' : 'REACHABLE'} `, '[NEIGH]172.18.0.12 dev eth0 lladdr 02:00:00:00:00:0c STALE ');
      await clock.advance(1000);
      expect(reads).toEqual({ node: 1, netfilter: 1 });

      // The pod's MAC changes: a burst of neighbour and bridge events, one read after the debounce, nftables not asked.
      snapshot = node('32:aa:00:00:00:99');
      ip().print(`[NEIGH]Deleted ${POD} dev br0 lladdr 32:aa:00:00:00:10 STALE `, '[NEIGH]dev vp1 lladdr 32:aa:00:00:00:99 ', `[NEIGH]${POD} dev br0 lladdr 32:aa:00:00:00:99 REACHABLE `);
      await clock.advance(50);
      expect(reads.node).toBe(1);
      await clock.advance(50);
      await lr.settled();
      expect(reads).toEqual({ node: 2, netfilter: 1 });
      expect(entryMac(POD)).toBe('32:aa:00:00:00:99');

      // A forward-path rule: nft monitor reports it, the gate is read again and closes; the node is not read.
      gate = 'the node\'s netfilter hooks forwarded traffic (nftables ip filter FORWARD (1 rules))';
      nft().print('add rule ip filter FORWARD ct state invalid counter packets 0 bytes 0 drop', '# new generation 2 by process 1 (iptables)');
      await clock.advance(600);
      await lr.settled();
      expect(reads).toEqual({ node: 2, netfilter: 2 });
      expect(entryMac(POD)).toBeNull();

      // Set elements do not move the gate; the safety period reads it again, and it is open again.
      nft().print('add element ip kube-proxy cluster-ips { 10.96.0.10 }');
      await clock.advance(1000);
      expect(reads.netfilter).toBe(2);
      gate = null;
      await clock.advance(30_000);
      await lr.settled();
      expect(reads.netfilter).toBe(3);
      expect(entryMac(POD)).toBe('32:aa:00:00:00:99');

      // A monitor that dies is restarted, and what it may have missed is read.
      const before = reads.node;
      ip().emit('exit', 1, null);
      await clock.advance(1100);
      await lr.settled();
      expect(children.get('ip')).toHaveLength(2);
      expect(reads.node).toBe(before + 1);

      // No local backend left: the entry goes at once, without a read; the monitors are killed.
      const [ipNow, nftNow] = [ip(), nft()];
      lr.update(plan([]));
      expect(entryMac(POD)).toBeNull();
      expect(ipNow.killed && nftNow.killed).toBe(true);
      expect(lr.watching).toBe(false);
      await clock.advance(60_000);
      expect(children.get('ip')).toHaveLength(2);
    } finally {
      lr.dispose();
    }
    expect(clock.pendingTimers).toBe(0);
  });
});
