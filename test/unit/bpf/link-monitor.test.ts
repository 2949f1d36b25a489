// The triggers of the local redirect (src/dataplane/bpf/link-monitor.ts): a
// long-lived child's lines, its restart with backoff, and what a line of
// `ip monitor label` / `nft monitor` says (lines captured from iproute2 6.1
// and nftables 1.0.6 on this image).
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/util/clock.js';
import { createLogger } from '../../../src/util/log.js';
import { ChildWatch, isNftRulesetChange, monitorEventMatters, parseIpMonitorLine, RESTART_BACKOFF_MS, type RedirectView, type WatchedChild } from '../../../src/dataplane/bpf/link-monitor.js';

class FakeChild extends EventEmitter implements WatchedChild {
  readonly stdout = new EventEmitter();
  killed: string | null = null;
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.killed = signal;
    return true;
  }
}

function harness() {
  const clock = new FakeClock();
  const lines: string[] = [];
  const logs: { level: number; msg: string }[] = [];
  const log = createLogger('debug', 'json', { write: (s: string) => { logs.push(JSON.parse(s)); } });
  const children: FakeChild[] = [];
  let restarts = 0;
  let missing = false;
  const w = new ChildWatch({
    argv: ['ip', 'monitor'], clock, log,
    onLine: (l) => lines.push(l),
    onRestart: () => restarts++,
    spawn: () => {
      const c = new FakeChild();
      children.push(c);
      if (missing) queueMicrotask(() => c.emit('error', Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' })));
      return c;
    },
  });
  return { clock, lines, logs, children, w, restarts: () => restarts, setMissing: () => { missing = true; } };
}

describe('ChildWatch: one long-lived child, its output as lines', () => {
  it('hands on complete lines, holding a line split across chunks until its end arrives', () => {
    const h = harness();
    h.w.start();
    h.children[0]!.stdout.emit('data', Buffer.from('[LINK]3: va@vb: <UP>\n    link/ether 02:00:00:00:00:aa\n[NEI'));
    expect(h.lines).toEqual(['[LINK]3: va@vb: <UP>', '    link/ether 02:00:00:00:00:aa']);
    h.children[0]!.stdout.emit('data', 'GH]10.9.0.5 dev br0 lladdr 02:00:00:00:00:05 REACHABLE \n');
    expect(h.lines[2]).toBe('[NEIGH]10.9.0.5 dev br0 lladdr 02:00:00:00:00:05 REACHABLE ');
  });

  it('a child that dies is started again with a doubling backoff, logged once; the owner is told after each restart', async () => {
    const h = harness();
    h.w.start();
    h.children[0]!.emit('exit', 1, null);
    expect(h.w.running).toBe(false);
    await h.clock.advance(RESTART_BACKOFF_MS.first - 1);
    expect(h.children).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.children).toHaveLength(2);
    expect(h.restarts()).toBe(1);
    h.children[1]!.emit('exit', null, 'SIGKILL');
    await h.clock.advance(2 * RESTART_BACKOFF_MS.first - 1);
    expect(h.children).toHaveLength(2);
    await h.clock.advance(1);
    expect(h.children).toHaveLength(3);
    expect(h.restarts()).toBe(2);
    expect(h.logs.filter((l) => /network watch of the local redirect stopped/.test(l.msg))).toHaveLength(1);
  });

  it('a child that ran a while before dying starts the backoff over', async () => {
    const h = harness();
    h.w.start();
    for (let i = 0; i < 4; i++) {
      h.children.at(-1)!.emit('exit', 1, null);
      await h.clock.advance(20_000); // each ran less than a minute: the backoff grows to 16 s
    }
    await h.clock.advance(120_000); // this one ran two minutes
    const n = h.children.length;
    h.children.at(-1)!.emit('exit', 1, null);
    await h.clock.advance(RESTART_BACKOFF_MS.first);
    expect(h.children).toHaveLength(n + 1);
  });

  it('stop() kills the child and nothing is started again, even when its exit arrives later', async () => {
    const h = harness();
    h.w.start();
    const c = h.children[0]!;
    h.w.stop();
    expect(c.killed).toBe('SIGTERM');
    c.emit('exit', null, 'SIGTERM');
    c.stdout.emit('data', '[LINK]late\n');
    await h.clock.advance(10 * RESTART_BACKOFF_MS.max);
    expect(h.children).toHaveLength(1);
    expect(h.lines).toEqual([]);
    expect(h.clock.pendingTimers).toBe(0);
    expect(h.logs.some((l) => /stopped/.test(l.msg))).toBe(false);
  });

  it('a tool that is not installed is not retried: one line says the periodic refresh covers it', async () => {
    const h = harness();
    h.setMissing();
    h.w.start();
    await h.clock.advance(10 * RESTART_BACKOFF_MS.max);
    h.w.stop();
    h.w.start(); // the owner watches again (local backends came back): still not retried
    await h.clock.advance(RESTART_BACKOFF_MS.max);
    expect(h.children).toHaveLength(1);
    expect(h.logs.filter((l) => /not installed/.test(l.msg))).toHaveLength(1);
  });
});

describe('parseIpMonitorLine: `ip monitor label link address route neigh`', () => {
  it.each([
    ['[LINK]3: va@vb: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default ', { kind: 'link' }],
    ['[ADDR]3: va    inet 10.9.0.1/24 scope global va', { kind: 'addr' }],
    ['[ROUTE]10.9.0.0/24 dev va proto kernel scope link src 10.9.0.1 ', { kind: 'route' }],
    ['[NEIGH]10.9.0.5 dev br0 lladdr 02:00:00:00:00:05 STALE ', { kind: 'neigh', address: '10.9.0.5', dev: 'br0', lladdr: '02:00:00:00:00:05', state: 'STALE', deleted: false }],
    ['[NEIGH]10.9.0.5 dev br0 FAILED ', { kind: 'neigh', address: '10.9.0.5', dev: 'br0', lladdr: null, state: 'FAILED', deleted: false }],
    ['[NEIGH]Deleted 10.9.0.5 dev br0 FAILED ', { kind: 'neigh', address: '10.9.0.5', dev: 'br0', lladdr: null, state: 'FAILED', deleted: true }],
    ['[NEIGH]fd00::5 dev br0 lladdr 02:00:00:00:00:05 PERMANENT ', { kind: 'neigh', address: 'fd00::5', dev: 'br0', lladdr: '02:00:00:00:00:05', state: 'PERMANENT', deleted: false }],
    ['[NEIGH]dev vp1 lladdr 02:00:00:00:00:99 PERMANENT ', { kind: 'fdb', mac: '02:00:00:00:00:99', port: 'vp1', deleted: false }],
    ['[NEIGH]Deleted dev vp1 lladdr 02:00:00:00:00:99 PERMANENT ', { kind: 'fdb', mac: '02:00:00:00:00:99', port: 'vp1', deleted: true }],
  ])('%s', (line, ev) => {
    expect(parseIpMonitorLine(line)).toEqual(ev);
  });

  it('continuation lines and unlabelled output say nothing', () => {
    expect(parseIpMonitorLine('    link/ether 02:00:00:00:00:ab brd ff:ff:ff:ff:ff:ff')).toBeNull();
    expect(parseIpMonitorLine('       valid_lft forever preferred_lft forever')).toBeNull();
    expect(parseIpMonitorLine('10.9.0.5 dev br0 lladdr 02:00:00:00:00:05 STALE')).toBeNull();
  });
});

describe('which events can change a redirect entry', () => {
  // Backend 10.244.1.10 has an entry (MAC ...:10); 10.244.1.11 is a backend without one.
  const view = (unresolved: boolean): RedirectView => ({
    isBackend: (a) => a === '10.244.1.10' || (unresolved && a === '10.244.1.11'),
    writtenMac: (a) => (a === '10.244.1.10' ? '32:aa:00:00:00:10' : undefined),
    writesMac: (m) => m === '32:aa:00:00:00:10',
    anyUnresolved: () => unresolved,
  });
  const ev = (line: string) => parseIpMonitorLine(line)!;
  const matters = (line: string, unresolved = false) => monitorEventMatters(ev(line), view(unresolved));

  it('neighbour churn of a backend with an entry (same MAC, still usable) does not; of anything else on the node neither', () => {
    expect(matters('[NEIGH]10.244.1.10 dev br0 lladdr 32:aa:00:00:00:10 STALE ')).toBe(false);
    expect(matters('[NEIGH]10.244.1.10 dev br0 lladdr 32:aa:00:00:00:10 REACHABLE ')).toBe(false);
    expect(matters('[NEIGH]172.18.0.12 dev eth0 lladdr 02:00:00:00:00:0c FAILED ')).toBe(false);
  });

  it('a backend\'s new MAC, a failed or deleted entry, and a backend without an entry do', () => {
    expect(matters('[NEIGH]10.244.1.10 dev br0 lladdr 32:aa:00:00:00:99 REACHABLE ')).toBe(true);
    expect(matters('[NEIGH]10.244.1.10 dev br0 FAILED ')).toBe(true);
    expect(matters('[NEIGH]Deleted 10.244.1.10 dev br0 lladdr 32:aa:00:00:00:10 STALE ')).toBe(true);
    expect(matters('[NEIGH]10.244.1.11 dev br0 lladdr 32:aa:00:00:00:11 REACHABLE ', true)).toBe(true);
  });

  it('bridge entries: an entry\'s MAC moving or leaving does; others only while a backend waits for one', () => {
    expect(matters('[NEIGH]dev vp9 lladdr 32:aa:00:00:00:10 ')).toBe(true);
    expect(matters('[NEIGH]Deleted dev vp1 lladdr 32:aa:00:00:00:10 ')).toBe(true);
    expect(matters('[NEIGH]dev vp2 lladdr 32:aa:00:00:00:55 ')).toBe(false);
    expect(matters('[NEIGH]dev vp2 lladdr 32:aa:00:00:00:55 ', true)).toBe(true);
  });

  it('links, addresses and routes always do', () => {
    expect(matters('[LINK]9: vp9@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0 state UP ')).toBe(true);
    expect(matters('[ROUTE]Deleted 10.244.1.50 dev cali9 scope link ')).toBe(true);
  });
});

describe('isNftRulesetChange: `nft monitor` lines that can open or close the netfilter gate', () => {
  it.each([
    ['add rule ip filter FORWARD ct state invalid counter packets 0 bytes 0 drop', true],
    ['add chain inet t c { type filter hook forward priority filter; policy accept; }', true],
    ['delete rule ip filter FORWARD handle 4', true],
    ['delete table inet t', true],
    ['flush ruleset', true],
    ['add element ip kube-proxy cluster-ips { 10.96.0.10 }', false],
    ['# new generation 2 by process 23703 (iptables)', false],
  ])('%s -> %s', (line, changes) => {
    expect(isNftRulesetChange(line)).toBe(changes);
  });
});
