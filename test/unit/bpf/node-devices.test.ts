// Issue 7: the default --devices follows the Node object's InternalIP and
// ExternalIP (src/dataplane/bpf/devices.ts selectNodeDevices and
// nodeDeviceChanges, src/dataplane/bpf/node-devices.ts). Pure choices over
// the node's links, and the follower with fake attach/detach.
import { describe, expect, it } from 'vitest';
import { nodeDeviceAddresses, nodeDeviceChanges, selectNodeDevices, type LinkInfo } from '../../../src/dataplane/bpf/devices.js';
import { NodeDeviceFollower } from '../../../src/dataplane/bpf/node-devices.js';
import { createLogger } from '../../../src/util/log.js';

const link = (name: string, addrs: string[], more: Partial<LinkInfo> = {}): LinkInfo => ({
  ifindex: 0, mac: '', name, linkType: 'ether', kind: '', master: '', addresses: addrs.map((address) => ({ address, scope: 'global' })), ...more,
});

// A node with its uplink, a second network on eth1, the pod bridge and a bond.
const LINKS: LinkInfo[] = [
  link('lo', ['127.0.0.1'], { linkType: 'loopback' }),
  link('eth0', ['172.18.0.11', 'fd00:18::11']),
  link('eth1', ['172.19.1.1', '2001:db8::5']),
  link('br0', ['10.244.1.1'], { kind: 'bridge' }),
  link('ens3', [], { master: 'bond0' }),
  link('bond0', ['10.1.0.5'], { kind: 'bond' }),
];

const addr = (type: string, address: string) => ({ type, address });

describe('the Node\'s addresses -> devices', () => {
  it('takes InternalIP then ExternalIP addresses, nothing else (Hostname, InternalDNS)', () => {
    expect(nodeDeviceAddresses([addr('Hostname', 'n1'), addr('ExternalIP', '203.0.113.7'), addr('InternalIP', '172.19.1.1'), addr('InternalDNS', 'n1.local')]))
      .toEqual(['172.19.1.1', '203.0.113.7']);
  });

  it('chooses the device holding each address, in either family and any spelling, once per device', () => {
    const c = selectNodeDevices(LINKS, ['172.19.1.1', '2001:0db8:0::5', '172.18.0.11']);
    expect(c.devices).toEqual([{ device: 'eth0', addresses: ['172.18.0.11'] }, { device: 'eth1', addresses: ['172.19.1.1', '2001:db8::5'] }]);
    expect(c.unplaced).toEqual([]);
    expect(c.skipped).toEqual([]);
  });

  it('an address on no local device is reported, not an error; one on a device the programs cannot serve is skipped with why', () => {
    const c = selectNodeDevices(LINKS, ['203.0.113.7', '10.244.1.1', '10.1.0.5']);
    expect(c.unplaced).toEqual(['203.0.113.7']);
    expect(c.skipped).toEqual([{ device: 'br0', addresses: ['10.244.1.1'], why: expect.stringMatching(/bridge/) }]);
    expect(c.devices).toEqual([{ device: 'bond0', addresses: ['10.1.0.5'] }]);
  });

  it('changes: attach what is neither chosen at start nor added; detach only added devices no longer wanted', () => {
    expect(nodeDeviceChanges(['eth0'], [], ['eth0', 'eth1'])).toEqual({ attach: ['eth1'], detach: [] });
    expect(nodeDeviceChanges(['eth0'], ['eth1'], ['eth0', 'eth1'])).toEqual({ attach: [], detach: [] });
    expect(nodeDeviceChanges(['eth0'], ['eth1'], ['eth2'])).toEqual({ attach: ['eth2'], detach: ['eth1'] });
    // A device chosen at start stays even when the Node holds nothing there.
    expect(nodeDeviceChanges(['eth0'], [], [])).toEqual({ attach: [], detach: [] });
  });
});

function follower(opts: { base?: string[]; pinned?: string[]; packetLoaded?: boolean; links?: LinkInfo[]; failAttach?: string } = {}) {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = createLogger('debug', 'json', { write: (l: string) => { lines.push(JSON.parse(l) as (typeof lines)[number]); } });
  const calls: string[] = [];
  let links = opts.links ?? LINKS;
  const f = new NodeDeviceFollower({
    base: opts.base ?? ['eth0'], pinned: opts.pinned ?? [], packetLoaded: opts.packetLoaded ?? true, links: () => links,
    attach: (d) => {
      calls.push(`attach ${d}`);
      if (d === opts.failAttach) throw new Error('EBUSY');
    },
    detach: (d) => {
      calls.push(`detach ${d}`);
      return [`xdp on ${d}`];
    },
    log,
  });
  return { f, calls, lines, setLinks: (l: LinkInfo[]) => { links = l; } };
}

describe('following the Node (NodeDeviceFollower)', () => {
  it('attaches the device of an InternalIP the start did not choose, logs it once, and does nothing more on a repeat', () => {
    const { f, calls, lines } = follower();
    expect(f.follow([addr('InternalIP', '172.19.1.1')])).toEqual({ attached: ['eth1'], detached: [] });
    expect(f.devices).toEqual(['eth0', 'eth1']);
    expect(f.follow([addr('InternalIP', '172.19.1.1')])).toEqual({ attached: [], detached: [] });
    expect(calls).toEqual(['attach eth1']);
    const added = lines.filter((l) => /attached the XDP\/TC programs to eth1/.test(l.msg));
    expect(added).toHaveLength(1);
    expect(added[0]!.msg).toMatch(/InternalIP 172\.19\.1\.1/);
  });

  it('an ExternalIP on a local device counts too; one on no device is warned about once and nothing breaks', () => {
    const { f, calls, lines } = follower();
    const node = [addr('InternalIP', '172.18.0.11'), addr('ExternalIP', '203.0.113.7'), addr('ExternalIP', '2001:db8::5')];
    expect(f.follow(node).attached).toEqual(['eth1']);
    f.follow(node);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns.map((l) => l.msg)).toEqual([expect.stringMatching(/ExternalIP 203\.0\.113\.7 is on no device/)]);
    expect(calls).toEqual(['attach eth1']);
  });

  it('detaches a device added for the Node once the Node moves off it, never one chosen at start', () => {
    const { f, calls } = follower();
    f.follow([addr('InternalIP', '172.19.1.1')]);
    expect(f.follow([addr('InternalIP', '10.1.0.5')])).toEqual({ attached: ['bond0'], detached: ['eth1'] });
    expect(f.follow([])).toEqual({ attached: [], detached: ['bond0'] });
    expect(f.devices).toEqual(['eth0']);
    expect(calls).toEqual(['attach eth1', 'attach bond0', 'detach eth1', 'detach bond0']);
  });

  it('follows an address that moved to another device while the Node stayed the same (re-read at each call)', () => {
    const { f, setLinks } = follower();
    const node = [addr('InternalIP', '192.0.2.9')];
    expect(f.follow(node).attached).toEqual([]);
    setLinks([...LINKS, link('eth2', ['192.0.2.9'])]);
    expect(f.follow(node).attached).toEqual(['eth2']);
  });

  it('a device an earlier run attached is detached when the Node does not hold it, kept when it does', () => {
    const stale = follower({ pinned: ['eth0', 'eth1'] });
    expect(stale.f.devices).toEqual(['eth0', 'eth1']);
    expect(stale.f.follow([addr('InternalIP', '172.18.0.11')])).toEqual({ attached: [], detached: ['eth1'] });
    const kept = follower({ pinned: ['eth1'] });
    expect(kept.f.follow([addr('InternalIP', '172.19.1.1')])).toEqual({ attached: [], detached: [] });
    expect(kept.calls).toEqual([]);
  });

  it('a failed attach is undone, warned about once, and tried again at the next call', () => {
    const { f, calls, lines } = follower({ failAttach: 'eth1' });
    const node = [addr('InternalIP', '172.19.1.1')];
    expect(f.follow(node).attached).toEqual([]);
    expect(f.follow(node).attached).toEqual([]);
    expect(calls).toEqual(['attach eth1', 'detach eth1', 'attach eth1', 'detach eth1']);
    expect(lines.filter((l) => /could not attach/.test(l.msg))).toHaveLength(1);
    expect(f.devices).toEqual(['eth0']);
  });

  it('without the packet programs loaded, says once that a restart is needed and attaches nothing', () => {
    const { f, calls, lines } = follower({ base: [], packetLoaded: false });
    f.follow([addr('InternalIP', '172.19.1.1')]);
    f.follow([addr('InternalIP', '172.19.1.1')]);
    expect(calls).toEqual([]);
    expect(lines.filter((l) => /restart the proxy/.test(l.msg))).toHaveLength(1);
  });
});
