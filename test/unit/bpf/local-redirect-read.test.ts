// The local redirect's read of the node (src/dataplane/bpf/local-redirect.ts
// readSnapshot): one `ip -j -d -batch -` printing three JSON values in a row,
// split by splitJsonValues; the main table's routes of both families kept from
// `route show table all` (parseRoutes); the input reaching the child's stdin
// through the worker (off-loop-exec.ts). Listings captured from iproute2 6.1.
import { describe, expect, it } from 'vitest';
import { indexSnapshot, parseRoutes, resolveLocalEndpoint, splitJsonValues } from '../../../src/dataplane/bpf/local-endpoints.js';
import { IP_BATCH_ARGV, IP_BATCH_INPUT, readSnapshot } from '../../../src/dataplane/bpf/local-redirect.js';
import { OffLoopExec, type Exec } from '../../../src/dataplane/bpf/off-loop-exec.js';

// `ip -j -d route show table all` in a namespace with a veth vp1 (10.244.1.0/24,
// fd00:244:1::/64), a pod host route, an IPv4 default via a gateway, an IPv6
// default without one, a route via an IPv6 next hop, and the same /24 on d1 in table 100.
const TABLE_ALL = JSON.stringify([
  { type: 'unicast', dst: '10.244.1.0/24', dev: 'd1', table: '100', protocol: 'boot', scope: 'link', flags: [] },
  { type: 'unicast', dst: 'default', gateway: '10.244.1.254', dev: 'vp1', table: 'main', protocol: 'boot', scope: 'global', flags: [] },
  { type: 'unicast', dst: '10.244.1.0/24', dev: 'vp1', table: 'main', protocol: 'kernel', scope: 'link', prefsrc: '10.244.1.1', flags: [] },
  { type: 'unicast', dst: '10.244.1.50', dev: 'vp1', table: 'main', protocol: 'boot', scope: 'link', flags: [] },
  { type: 'unicast', dst: '10.244.7.0/24', via: { family: 'inet6', host: 'fd00:244:1::2' }, dev: 'vp1', table: 'main', protocol: 'boot', scope: 'global', flags: [] },
  { type: 'local', dst: '10.244.1.1', dev: 'vp1', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '10.244.1.1', flags: [] },
  { type: 'broadcast', dst: '10.244.1.255', dev: 'vp1', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '10.244.1.1', flags: [] },
  { type: 'unicast', dst: 'fd00:244:1::/64', dev: 'vp1', table: 'main', protocol: 'kernel', scope: 'global', metric: 256, flags: [], pref: 'medium' },
  { type: 'unicast', dst: 'default', dev: 'vp1', table: 'main', protocol: 'boot', scope: 'global', metric: 1024, flags: [], pref: 'medium' },
  { type: 'local', dst: 'fd00:244:1::1', dev: 'vp1', table: 'local', protocol: 'kernel', scope: 'global', metric: 0, flags: [], pref: 'medium' },
  { type: 'multicast', dst: 'ff00::/8', dev: 'vp1', table: 'local', protocol: 'kernel', scope: 'global', metric: 256, flags: [], pref: 'medium' },
]);

describe('splitJsonValues', () => {
  it('splits arrays printed in a row, with or without newlines between them', () => {
    expect(splitJsonValues('[{"a":1}]\n[]\n[{"b":[2,3]}]\n')).toEqual(['[{"a":1}]', '[]', '[{"b":[2,3]}]']);
    expect(splitJsonValues('[1][]{"c":{}}')).toEqual(['[1]', '[]', '{"c":{}}']);
    expect(splitJsonValues('[\n  {"a": 1},\n  {"a": 2}\n]\n[]')).toEqual(['[\n  {"a": 1},\n  {"a": 2}\n]', '[]']);
  });

  it('is not fooled by brackets, braces and escaped quotes inside strings', () => {
    const alias = [{ ifname: 'eth0', ifalias: 'uplink ] } [ "x\\" {' }];
    const text = `${JSON.stringify(alias)}\n[{"dst":"10.0.0.1"}]\n`;
    const [a, b] = splitJsonValues(text);
    expect(JSON.parse(a!)).toEqual(alias);
    expect(JSON.parse(b!)).toEqual([{ dst: '10.0.0.1' }]);
  });

  it('returns what is there when a listing printed nothing, and nothing for empty output', () => {
    expect(splitJsonValues('[1]\n[2]\n')).toHaveLength(2);
    expect(splitJsonValues('')).toEqual([]);
    expect(splitJsonValues(' \n')).toEqual([]);
  });

  it('throws on text outside a value and on a value left open', () => {
    expect(() => splitJsonValues('[1]\nError: something\n')).toThrow(/offset 4/);
    expect(() => splitJsonValues('[1]]')).toThrow(/unbalanced/);
    expect(() => splitJsonValues('[{"a":1}')).toThrow(/left open/);
    expect(() => splitJsonValues('[{"a":"1}]')).toThrow(/left open/);
  });
});

describe('parseRoutes of `route show table all`', () => {
  const routes = parseRoutes(TABLE_ALL);

  it('keeps the main table\'s unicast routes of both families, each with its own family', () => {
    expect(routes.map((r) => [r.dst.text, r.dev, r.direct])).toEqual([
      ['0.0.0.0/0', 'vp1', false],
      ['10.244.1.0/24', 'vp1', true],
      ['10.244.1.50/32', 'vp1', true],
      ['10.244.7.0/24', 'vp1', false],
      ['fd00:244:1::/64', 'vp1', true],
      ['::/0', 'vp1', true],
    ]);
  });

  it('takes a route without a table field as the main table\'s (the listing without -d)', () => {
    const plain = parseRoutes(JSON.stringify([
      { dst: 'default', dev: 'eth0', scope: 'link', metric: 50, flags: [] },
      { dst: '10.9.0.0/24', gateway: '10.9.0.2', dev: 'eth0', table: '100', flags: [] },
      { dst: 'default', gateway: 'fd00::1', dev: 'eth0', metric: 1024, flags: [], pref: 'medium' },
    ]));
    expect(plain.map((r) => [r.dst.text, r.direct])).toEqual([['0.0.0.0/0', true], ['::/0', false]]);
  });

  it('resolves a pod address through the main table, not another table\'s route to the same prefix', () => {
    const links = [
      { ifindex: 2, name: 'vp1', mac: '02:00:00:00:01:01', linkType: 'ether', kind: 'veth', master: '', addresses: [] },
      { ifindex: 3, name: 'd1', mac: '02:00:00:00:01:02', linkType: 'ether', kind: 'veth', master: '', addresses: [] },
    ];
    const neighbours = [
      { address: '10.244.1.10', dev: 'vp1', mac: '32:aa:00:00:00:10', usable: true },
      { address: '10.244.1.10', dev: 'd1', mac: '32:aa:00:00:00:99', usable: true },
    ];
    const idx = indexSnapshot({ links, routes, neighbours, fdb: [] });
    const r = resolveLocalEndpoint('10.244.1.10', idx, () => null);
    expect(r).toEqual({ ok: true, ep: { address: '10.244.1.10', ifindex: 2, device: 'vp1', mac: '32:aa:00:00:00:10', srcMac: '02:00:00:00:01:01' } });
  });
});

describe('readSnapshot', () => {
  const LINKS = '[{"ifindex":2,"ifname":"vp1","address":"02:00:00:00:01:01","link_type":"ether","linkinfo":{"info_kind":"veth"},"addr_info":[]}]';
  const NEIGH = '[{"dst":"10.244.1.10","dev":"vp1","lladdr":"32:aa:00:00:00:10","state":["REACHABLE"]}]';

  function fakeExec(ipOut: string): { exec: Exec; calls: { argv: readonly string[]; input?: string }[] } {
    const calls: { argv: readonly string[]; input?: string }[] = [];
    const exec: Exec = async (argv, input) => {
      calls.push({ argv, input });
      return { stdout: argv[0] === 'ip' ? ipOut : '[]\n' };
    };
    return { exec, calls };
  }

  it('reads with two processes: one ip batch of three listings, one bridge', async () => {
    const { exec, calls } = fakeExec(`${LINKS}\n${TABLE_ALL}\n${NEIGH}\n`);
    const snap = await readSnapshot(exec);
    expect(calls.map((c) => [c.argv.join(' '), c.input])).toEqual([
      ['ip -j -d -batch -', 'address show\nroute show table all\nneigh show\n'],
      ['bridge -j fdb show', undefined],
    ]);
    expect(snap.links.map((l) => l.name)).toEqual(['vp1']);
    expect(snap.routes).toHaveLength(6);
    expect(snap.neighbours.map((n) => n.mac)).toEqual(['32:aa:00:00:00:10']);
  });

  it('reads empty tables, printed as []', async () => {
    const { exec } = fakeExec(`${LINKS}\n[]\n[]\n`);
    const snap = await readSnapshot(exec);
    expect([snap.routes, snap.neighbours]).toEqual([[], []]);
  });

  it('fails the read, naming the command, when a listing is missing', async () => {
    const { exec } = fakeExec(`${LINKS}\n${TABLE_ALL}\n`);
    await expect(readSnapshot(exec)).rejects.toThrow(/ip -j -d -batch -: 2 JSON values printed, not 3/);
  });
});

describe('OffLoopExec input', () => {
  it('writes the input to the child\'s stdin and closes it; without input the child reads an empty stdin', async () => {
    const ex = new OffLoopExec(5000);
    try {
      expect((await ex.run(['cat'], 'address show\nneigh show\n')).stdout).toBe('address show\nneigh show\n');
      expect((await ex.run(['cat'])).stdout).toBe('');
      await expect(ex.run(['sh', '-c', 'exit 3'], 'x'.repeat(1 << 20))).rejects.toMatchObject({ code: 3 });
    } finally {
      ex.close();
    }
  });

  it('runs the real ip batch: three values, one per line of input', async () => {
    const ex = new OffLoopExec(5000);
    try {
      const values = splitJsonValues((await ex.run(IP_BATCH_ARGV, IP_BATCH_INPUT)).stdout);
      expect(values).toHaveLength(3);
      for (const v of values) expect(Array.isArray(JSON.parse(v))).toBe(true);
    } finally {
      ex.close();
    }
  });
});
