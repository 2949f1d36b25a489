// The default --devices, as a pure choice over the devices and addresses of
// the proxy's network namespace (src/dataplane/bpf/devices.ts).
import { describe, expect, it } from 'vitest';
import { parseIpAddressJson, resolveDevices, selectDefaultDevices, type LinkInfo } from '../../../src/dataplane/bpf/devices.js';
import { createLogger, silentLogger } from '../../../src/util/log.js';

const link = (name: string, addrs: [string, string][], more: Partial<LinkInfo> = {}): LinkInfo => ({
  ifindex: 0, mac: '', name, linkType: 'ether', kind: '', master: '', addresses: addrs.map(([address, scope]) => ({ address, scope })), ...more,
});

// A node as the lab builds it, plus what real nodes have besides.
const NODE: LinkInfo[] = [
  link('lo', [['127.0.0.1', 'host'], ['::1', 'host']], { linkType: 'loopback' }),
  link('eth0', [['172.18.0.11', 'global'], ['fe80::1', 'link']], { kind: 'veth' }),
  link('br0', [['10.244.1.1', 'global']], { kind: 'bridge' }),
  link('vp1', [], { kind: 'veth', master: 'br0' }),
  link('eth1', [['192.168.7.5', 'global'], ['2001:db8::5', 'global']]),
  link('wg0', [['10.9.0.1', 'global']], { linkType: 'none', kind: 'wireguard' }),
  link('bond0', [['10.1.0.5', 'global']], { kind: 'bond' }),
  link('ens3', [['10.1.0.6', 'global']], { master: 'bond0' }),
  link('eth2', [['fe80::2', 'link']]),
];

describe('the default --devices', () => {
  it('without a node IP: every device with a global unicast address the programs can serve', () => {
    const c = selectDefaultDevices(NODE, []);
    expect(c.devices).toEqual(['bond0', 'eth0', 'eth1']);
    expect(c.skipped.map((s) => s.device).sort()).toEqual(['br0', 'ens3', 'wg0']);
    expect(c.skipped.find((s) => s.device === 'wg0')!.why).toMatch(/Ethernet/);
    expect(c.skipped.find((s) => s.device === 'ens3')!.why).toMatch(/port of bond0/);
    // Loopback and link-local-only devices hold no global address: not even considered.
    expect(c.skipped.some((s) => s.device === 'lo' || s.device === 'eth2')).toBe(false);
  });

  it('with node IPs: only the devices holding them (either family, any spelling)', () => {
    expect(selectDefaultDevices(NODE, ['172.18.0.11']).devices).toEqual(['eth0']);
    expect(selectDefaultDevices(NODE, ['2001:0db8::0005']).devices).toEqual(['eth1']);
    expect(selectDefaultDevices(NODE, ['172.18.0.11', '192.168.7.5']).devices).toEqual(['eth0', 'eth1']);
  });

  it('a node IP on a device the programs cannot serve is reported, not attached', () => {
    const c = selectDefaultDevices(NODE, ['10.244.1.1']);
    expect(c.devices).toEqual([]);
    expect(c.skipped).toEqual([{ device: 'br0', why: expect.stringMatching(/bridge/) }]);
    expect(selectDefaultDevices(NODE, ['127.0.0.1']).devices).toEqual([]);
  });

  it('a node IP held by no device: none', () => {
    expect(selectDefaultDevices(NODE, ['203.0.113.9']).devices).toEqual([]);
  });

  it('reads ip -j -d address show', () => {
    const links = parseIpAddressJson(JSON.stringify([
      { ifindex: 1, ifname: 'lo', link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', scope: 'host' }] },
      { ifindex: 2, ifname: 'eth0', link_type: 'ether', address: '02:00:00:00:00:0B', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: '172.18.0.11', scope: 'global' }] },
      { ifindex: 3, ifname: 'vp1', link_type: 'ether', master: 'br0', linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' }, addr_info: [] },
    ]));
    expect(links).toEqual([
      { ifindex: 1, mac: '00:00:00:00:00:00', name: 'lo', linkType: 'loopback', kind: '', master: '', addresses: [{ address: '127.0.0.1', scope: 'host' }] },
      { ifindex: 2, mac: '02:00:00:00:00:0b', name: 'eth0', linkType: 'ether', kind: 'veth', master: '', addresses: [{ address: '172.18.0.11', scope: 'global' }] },
      { ifindex: 3, mac: '', name: 'vp1', linkType: 'ether', kind: 'veth', master: 'br0', addresses: [] },
    ]);
  });

  it('a given list is used as it is; none given means none', () => {
    const links = () => { throw new Error('must not list devices'); };
    expect(resolveDevices(['eth9'], { log: silentLogger(), links })).toEqual(['eth9']);
    expect(resolveDevices([], { log: silentLogger(), links })).toEqual([]);
    expect(resolveDevices(undefined, { log: silentLogger(), links })).toEqual([]);
  });

  it('refuses to choose devices outside a named (lab) network namespace when the process runs a test lab', () => {
    const prev = process.env.BPFPROXY_LAB_OWNER;
    process.env.BPFPROXY_LAB_OWNER = '1';
    try {
      // This test runs in the namespace it was started in, which no lab names.
      expect(() => resolveDevices('auto', { log: silentLogger(), links: () => NODE })).toThrow(/refusing to choose the default --devices.*pass --devices explicitly/);
      // A list given is never refused: it is what the guard asks for.
      expect(resolveDevices([], { log: silentLogger() })).toEqual([]);
    } finally {
      if (prev === undefined) delete process.env.BPFPROXY_LAB_OWNER;
      else process.env.BPFPROXY_LAB_OWNER = prev;
    }
  });

  it('logs the chosen list once', () => {
    const lines: { msg: string; devices: string[] }[] = [];
    const log = createLogger('info', 'json', { write: (s: string) => { lines.push(JSON.parse(s)); } });
    const prev = process.env.BPFPROXY_LAB_OWNER;
    delete process.env.BPFPROXY_LAB_OWNER;
    try {
      expect(resolveDevices('auto', { nodeIPs: ['172.18.0.11'], log, links: () => NODE })).toEqual(['eth0']);
    } finally {
      if (prev !== undefined) process.env.BPFPROXY_LAB_OWNER = prev;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/attaching the XDP\/TC programs to eth0/);
    expect(lines[0]!.devices).toEqual(['eth0']);
  });
});
