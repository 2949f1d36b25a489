// The node-side views without root: the state file's round trip and write
// policy, services and trace over LB maps written by the real encoder (into
// in-memory maps), the rule modes' trace through the packet tracers, the
// conntrack decoder, and the formatting.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFlows, filterFlows, formatFlows } from '../../../src/cli/commands/conntrack.js';
import { decodeLb, type Dump, type LbView } from '../../../src/cli/commands/lb-view.js';
import { runNodeView } from '../../../src/cli/commands/node-view.js';
import { formatServices, rowsFromLb, rowsFromPlan } from '../../../src/cli/commands/service-rows.js';
import { formatTable } from '../../../src/cli/commands/table.js';
import { formatBpfTrace, formatRuleTrace, parseTraceArgs, traceBpf, traceRules } from '../../../src/cli/commands/trace.js';
import { nodeViewCommand, parseCommandLine } from '../../../src/config/flags.js';
import { CT_KEY, CT_VAL } from '../../../src/dataplane/bpf/layout.js';
import {
  backendInfo, describeProcess, NodeStateWriter, readNodeState, statePathFor, STATE_FORMAT, type NodeState,
} from '../../../src/dataplane/state-file.js';
import { decodePlan, encodePlan } from '../../../src/dataplane/state-plan.js';
import type { SyncResult } from '../../../src/dataplane/types.js';
import type { DesiredDataplane, PlannedService } from '../../../src/planner/types.js';
import { FakeLb, type FakeMap } from '../../helpers/fake-maps.js';
import { TEST_XT_CONFIG } from '../../helpers/iptables-model.js';
import { TEST_NFT_CONFIG } from '../../helpers/nft-model.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';
import { desired } from '../../helpers/rule-fixtures.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'bpx-view-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ok = (full = true): SyncResult => ({ full, upserts: 3, deletes: 0, errors: [], unsupported: [] });

/** web: ClusterIP + NodePort, two backends on two nodes, affinity; api: external Local with one local backend; empty: no endpoints. */
function services(): PlannedService[] {
  const web = plannedService({
    id: 7, affinity: true,
    frontends: [frontend('ClusterIP', '10.96.0.7', 80), frontend('NodePort', '172.18.0.11', 30007)],
    backends: [plannedBackend(71, '10.244.1.10', 8080, { nodeName: 'node-a', local: true }), plannedBackend(72, '10.244.2.10', 8080, { nodeName: 'node-b', terminating: true })],
  });
  web.name = 'web';
  web.portName = 'http';
  const api = plannedService({
    id: 8,
    frontends: [frontend('ClusterIP', '10.96.0.8', 443), frontend('LoadBalancer', '192.0.2.8', 443)],
    backends: [plannedBackend(81, '10.244.1.11', 8443, { nodeName: 'node-a', local: true }), plannedBackend(82, '10.244.2.11', 8443, { nodeName: 'node-b' })],
    localExternal: [plannedBackend(81, '10.244.1.11', 8443, { nodeName: 'node-a', local: true })],
  });
  api.name = 'api';
  api.preserveSource = true;
  api.sourceRanges = ['198.51.100.0/24'];
  const empty = plannedService({ id: 9, frontends: [frontend('ClusterIP', '10.96.0.9', 53)], backends: [], protocol: 'UDP' });
  empty.name = 'dns';
  return [web, api, empty];
}

function dumpOf(m: FakeMap, valueSize: number): Dump {
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  for (const [hex, v] of m.entries) {
    keys.push(Buffer.from(hex, 'hex'));
    values.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  return { keys: Buffer.concat(keys), values: Buffer.concat(values), count: m.entries.size, valueStride: valueSize };
}

/** The services written by the bpf encoder into in-memory maps, decoded back as the CLI decodes pins. */
function programmed(list: PlannedService[]): LbView {
  const lb = new FakeLb();
  const r = lb.apply(list);
  expect(r.errors).toEqual([]);
  return decodeLb(dumpOf(lb.fe, lb.fe.valueSize), dumpOf(lb.set, lb.set.valueSize), dumpOf(lb.be, lb.be.valueSize));
}

function writtenState(list: PlannedService[], mode = 'bpf', config?: unknown): NodeState {
  const dir = tmp();
  const path = join(dir, 'state.msgpack');
  describeProcess('9.9.9', 'abcdef123456');
  const w = new NodeStateWriter(path, { mode, reason: `--proxy-mode ${mode}`, node: 'node-a', pinDir: '/sys/fs/bpf/x' }, { schedule: (_ms, fn) => { fn(); return () => {}; } });
  const d: DesiredDataplane = { ...desired(list), generation: 4 };
  w.synced(d, ok(), performance.now() - 2, config === undefined ? undefined : { config });
  w.dispose();
  return readNodeState(path)!;
}

describe('the state file', () => {
  it('round-trips the header and the names behind the IDs', () => {
    const s = writtenState(services());
    expect(s.format).toBe(STATE_FORMAT);
    expect(s).toMatchObject({ version: '9.9.9', commit: 'abcdef123456', mode: 'bpf', reason: '--proxy-mode bpf', node: 'node-a', pid: process.pid });
    expect(s.sync.generation).toBe(4);
    expect(s.sync.ms).toBeGreaterThanOrEqual(1);
    expect(s.counts).toEqual({ services: 3, frontends: 5, backends: 4 });
    expect(s.catalog.services.map((x) => x.slice(0, 4))).toEqual([[7, 'default', 'web', 'http'], [8, 'default', 'api', ''], [9, 'default', 'dns', '']]);
    const be = backendInfo(s.catalog);
    expect(be.get(71)).toEqual({ node: 'node-a', terminating: false });
    expect(be.get(72)).toEqual({ node: 'node-b', terminating: true });
    expect(s.catalog.plan).toBeUndefined();
  });

  it('keeps the rule modes\' plan compact and gives it back as planned, shared sets still shared', () => {
    const list = services();
    const back = decodePlan(writtenState(list, 'iptables', TEST_XT_CONFIG).catalog.plan!);
    expect(back.nodePortAddresses).toEqual(desired(list).nodePortAddresses);
    for (const s of list) {
      const b = back.services.get(s.key)!;
      expect(b).toEqual({ ...s, maglev: null });
      expect(b.cluster === b.internal).toBe(s.cluster === s.internal);
      expect(b.external === b.internal).toBe(s.external === s.internal);
    }
    // Each backend once, however many sets name it.
    expect(encodePlan(desired(list), {}).backends.map((b) => b[0])).toEqual([71, 72, 81, 82]);
  });

  it('keys the file by the pin directory, so two proxies never share one', () => {
    expect(statePathFor('/sys/fs/bpf/a', '/run/x')).not.toBe(statePathFor('/sys/fs/bpf/b', '/run/x'));
    expect(statePathFor('/sys/fs/bpf/a/', '/run/x')).toBe(statePathFor('/sys/fs/bpf/a', '/run/x'));
  });

  it('coalesces writes, encodes the names only when the plan changed, and writes what is pending on dispose', () => {
    const path = join(tmp(), 's.msgpack');
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    const w = new NodeStateWriter(path, { mode: 'bpf', reason: 'r', node: 'n', pinDir: '/p' }, {
      minIntervalMs: 1000, now: () => now, wallClock: () => 1_000_000 + now,
      schedule: (ms, fn) => { const t = { at: now + ms, fn }; timers.push(t); return () => timers.splice(timers.indexOf(t), 1); },
    });
    const run = () => { for (const t of timers.splice(0).filter((x) => x.at <= now)) t.fn(); };
    const d1: DesiredDataplane = { ...desired(services()), generation: 1 };
    w.synced(d1, ok(), now);
    run();
    expect(w.stats).toMatchObject({ writes: 1, catalogs: 1 });
    // Three more syncs inside the interval: one write at its end.
    now = 100;
    w.synced({ ...d1, generation: 2 }, ok(false), now);
    now = 200;
    w.synced({ ...d1, generation: 3 }, ok(false), now);
    expect(timers).toHaveLength(1);
    expect(timers[0]!.at).toBe(1000);
    now = 1000;
    run();
    expect(w.stats).toMatchObject({ writes: 2, catalogs: 2 });
    expect(readNodeState(path)!.sync.generation).toBe(3);
    // A periodic sync that changed nothing rewrites the header, not the names.
    now = 5000;
    w.synced({ ...d1, generation: 3 }, ok(true), now);
    run();
    expect(w.stats).toMatchObject({ writes: 3, catalogs: 2 });
    expect(readNodeState(path)!.sync.at).toBe(1_005_000);
    // A failure not tied to a service is not a sync to record; a pending one is written on dispose.
    now = 5100;
    w.synced({ ...d1, generation: 4 }, { ...ok(), errors: [{ service: '', code: 'PINS_MISSING', message: 'x' }] }, now);
    expect(timers).toHaveLength(0);
    w.synced({ ...d1, generation: 5 }, { ...ok(), errors: [{ service: 'default/web', code: 'MAP_FULL', message: 'x' }] }, now);
    w.dispose();
    const s = readNodeState(path)!;
    expect(s.sync).toMatchObject({ generation: 5, failed: 1 });
    expect(timers).toHaveLength(0);
  });

  it('spaces writes out when a write takes long: at most a tenth of the time goes to the file', () => {
    let t = 0;
    const waits: number[] = [];
    const pending: (() => void)[] = [];
    // Every clock reading advances 200 ms: a write (two readings) takes 200 ms.
    const w = new NodeStateWriter(join(tmp(), 's'), { mode: 'bpf', reason: '', node: '', pinDir: '' }, {
      minIntervalMs: 1000, now: () => (t += 200) - 200, schedule: (ms, fn) => { waits.push(ms); pending.push(fn); return () => {}; },
    });
    w.synced(desired(services()), ok(), 0);
    pending.shift()!();
    expect(w.stats.ms).toBe(200);
    w.synced({ ...desired(services()), generation: 2 }, ok(), 0);
    // The next write waits 10 x 200 ms after the last, not 1000 ms.
    expect(waits).toEqual([0, 1600]);
  });

  it('is refused when it is not a state file of this format', () => {
    const path = join(tmp(), 'bad');
    const w = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: '', pinDir: '' }, { schedule: (_ms, fn) => { fn(); return () => {}; } });
    w.synced(desired([]), ok(), 0);
    const bytes = readFileSync(path);
    expect(readNodeState(path)).not.toBeNull();
    rmSync(path);
    expect(readNodeState(path)).toBeNull();
    writeFileSync(path, Buffer.from([0x01, ...bytes.subarray(1, 4)]));
    expect(() => readNodeState(path)).toThrow(/not a bpfproxy state file/);
  });
});

describe('bpfproxy services', () => {
  it('lists each frontend the maps hold with its type, flags and backends, named through the state file', () => {
    const list = services();
    const rows = rowsFromLb(programmed(list), writtenState(list));
    expect(rows.map((r) => `${r.service} ${r.type} ${r.frontend.address}:${r.frontend.port}`)).toEqual([
      'default/api ClusterIP 10.96.0.8:443',
      'default/api LoadBalancer 192.0.2.8:443',
      'default/dns ClusterIP 10.96.0.9:53',
      'default/web:http ClusterIP 10.96.0.7:80',
      'default/web:http NodePort 172.18.0.11:30007',
    ]);
    const text = formatServices(rows);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+FRONTEND\s+TYPE\s+SERVICE\s+FLAGS\s+BACKENDS$/);
    // Every row starts its backend column where the header does.
    const col = lines[0]!.indexOf('BACKENDS');
    for (const l of lines.slice(1)) expect(l.slice(col - 2, col)).toBe('  ');
    expect(text).toContain('71 => 10.244.1.10:8080/TCP (active, node-a, local)');
    expect(text).toContain('72 => 10.244.2.10:8080/TCP (terminating, node-b)');
    expect(text).toMatch(/10\.96\.0\.9:53\/UDP\s+ClusterIP\s+default\/dns\s+-\s+\(no endpoints: refused\)/);
    expect(text).toMatch(/192\.0\.2\.8:443\/TCP\s+LoadBalancer\s+default\/api\s+ext-policy=Local source-ranges=198\.51\.100\.0\/24\s+81 => /);
    expect(text).toContain('from this node: 2 backends (Cluster policy)');
    expect(text).toMatch(/default\/web:http\s+affinity=10800s/);
  });

  it('names nothing it cannot: without a state file a service is its ID', () => {
    const rows = rowsFromLb(programmed(services()), null);
    expect(rows.some((r) => r.service === 'service #7')).toBe(true);
    expect(rows.find((r) => r.id === 7)!.backends.backends.map((b) => b.node)).toEqual([null, null]);
  });

  it('lists the same rows from the plan in the rule modes', () => {
    const list = services();
    const fromMaps = rowsFromLb(programmed(list), writtenState(list));
    const fromPlan = rowsFromPlan([...decodePlan(writtenState(list, 'nftables', TEST_NFT_CONFIG).catalog.plan!).services.values()]);
    const strip = (r: (typeof fromMaps)[number]) => ({ ...r, backends: { ...r.backends, set: null }, fromNode: r.fromNode && { ...r.fromNode, set: null } });
    expect(fromPlan.map(strip)).toEqual(fromMaps.map(strip));
  });
});

describe('bpfproxy trace', () => {
  const list = services();
  const lb = programmed(list);
  const state = writtenState(list);

  it('replays the socket hook: a random slot among the live set, each candidate with its chance', () => {
    const t = traceBpf(lb, state, parseTraceArgs('10.244.1.99', '10.96.0.7:80/tcp'), () => 3);
    expect(t.frontend).toMatchObject({ service: 'default/web:http', type: 'ClusterIP' });
    expect(t.paths).toHaveLength(1);
    expect(t.paths[0]!.outcome).toBe('backend');
    expect(t.paths[0]!.candidates.map((c) => [c.address, c.chance])).toEqual([['10.244.1.10', 0.5], ['10.244.2.10', 0.5]]);
    const text = formatBpfTrace(t, '/pins');
    expect(text).toContain('ClientIP affinity 10800s');
    expect(text).toContain('3 clients remembered');
    expect(text).toMatch(/71\s+10\.244\.1\.10:8080\/TCP\s+50\.0%\s+active, node-a, local/);
  });

  it('shows both ways into an external frontend: from the node (Cluster set) and from outside (Local set)', () => {
    const t = traceBpf(lb, state, parseTraceArgs('198.51.100.7', '192.0.2.8:443/TCP'));
    expect(t.paths.map((p) => [p.via.split(' ')[0] + ' ' + p.via.split(' ')[1], p.candidates.map((c) => c.id)])).toEqual([
      ['from this', [81, 82]],
      ['from outside', [81]],
    ]);
    expect(t.paths[1]!.why).toContain('externalTrafficPolicy Local');
    const outside = traceBpf(lb, state, parseTraceArgs('203.0.113.1', '192.0.2.8:443/tcp'));
    expect(outside.paths[1]!.why).toContain('outside loadBalancerSourceRanges');
  });

  it('says refused for a service without endpoints, and not a service for anything else', () => {
    const t = traceBpf(lb, state, parseTraceArgs('10.244.1.99', '10.96.0.9:53/udp'));
    expect(t.paths[0]).toMatchObject({ outcome: 'refused', candidates: [] });
    expect(formatBpfTrace(t, '/p')).toContain('refused (ECONNREFUSED)');
    const none = traceBpf(lb, state, parseTraceArgs('10.244.1.99', '10.96.0.7:81/tcp'));
    expect(none.frontend).toBeNull();
    expect(formatBpfTrace(none, '/p')).toContain('not in the frontend map');
    expect(traceBpf(lb, state, parseTraceArgs('::ffff:10.244.1.99', '[::ffff:10.96.0.7]:80/tcp')).frontend?.service).toBe('default/web:http');
  });

  it('follows the packet through the rendered nftables and iptables rules in the rule modes', () => {
    for (const [mode, config] of [['nftables', TEST_NFT_CONFIG], ['iptables', TEST_XT_CONFIG]] as const) {
      const s = writtenState(list, mode, config);
      const t = traceRules(s, parseTraceArgs('10.244.1.99', '10.96.0.7:80/tcp'), false);
      expect(t.outcomes.map((o) => [o.outcome.replace(' masquerade', ''), o.chance]), mode).toEqual([['dnat 10.244.1.10:8080', 0.5], ['dnat 10.244.2.10:8080', 0.5]]);
      expect(formatRuleTrace(t)).toMatch(/dnat 10\.244\.1\.10:8080\s+50\.0%\s+via /);
      const empty = traceRules(s, parseTraceArgs('10.244.1.99', '10.96.0.9:53/udp'), false);
      expect(empty.outcomes.map((o) => o.outcome), mode).toEqual(['reject']);
    }
  });

  it('refuses what is not SRC DST:PORT/PROTO, saying what is wrong', () => {
    expect(() => parseTraceArgs('pod', '10.96.0.7:80/tcp')).toThrow(/SRC "pod" is not an IP address/);
    expect(() => parseTraceArgs('10.0.0.1', '10.96.0.7')).toThrow(/want DST:PORT\/PROTO/);
    expect(() => parseTraceArgs('10.0.0.1', '10.96.0.7:0/tcp')).toThrow(/out of range/);
    expect(() => parseTraceArgs('10.0.0.1', '10.96.0.7:80/icmp')).toThrow(/want tcp, udp or sctp/);
    expect(() => parseTraceArgs('fd00::1', '10.96.0.7:80')).toThrow(/different families/);
    expect(parseTraceArgs('fd00::1', '[fd00:96::1]:53/udp')).toEqual({ src: 'fd00::1', dst: 'fd00:96::1', port: 53, protocol: 'UDP' });
  });
});

describe('bpfproxy conntrack', () => {
  /** One entry as the XDP program writes it, at the codec's offsets. */
  function ctEntry(dir: number, client: number[], cport: number, fe: number[], fport: number, be: number[], bport: number, flags: number, lastNs: bigint, snat?: [number[], number], proto = 6) {
    const k = Buffer.alloc(CT_KEY.size);
    const v = Buffer.alloc(CT_VAL.size);
    const f = CT_KEY.fields;
    Buffer.from(client).copy(k, f.saddr.offset);
    Buffer.from(fe).copy(k, f.daddr.offset);
    k.writeUInt16BE(cport, f.sport.offset);
    k.writeUInt16BE(fport, f.dport.offset);
    k.writeUInt8(proto, f.proto.offset);
    k.writeUInt8(4, f.family.offset);
    k.writeUInt8(dir, f.dir.offset);
    const g = CT_VAL.fields;
    v.writeBigUInt64LE(lastNs, g.last_ns.offset);
    Buffer.from(be).copy(v, g.addr.offset);
    v.writeUInt16BE(bport, g.port.offset);
    v.writeUInt32LE(72, g.backend.offset);
    v.writeUInt8(flags, g.flags.offset);
    if (snat) {
      Buffer.from(snat[0]).copy(v, g.nat_addr.offset);
      v.writeUInt16BE(snat[1], g.nat_port.offset);
    }
    return { k, v };
  }

  it('lists the flows (ORIG entries) with their backend, NAT and idle time, filtered', () => {
    const e = [
      ctEntry(0, [172, 18, 0, 100], 40000, [172, 18, 0, 11], 30007, [10, 244, 2, 10], 8080, 2, 10_000_000_000n, [[172, 18, 0, 11], 61000]),
      ctEntry(1, [10, 244, 2, 10], 8080, [172, 18, 0, 11], 61000, [172, 18, 0, 11], 30007, 2, 10_000_000_000n),
      ctEntry(0, [172, 18, 0, 101], 40001, [172, 18, 0, 11], 30007, [10, 244, 1, 10], 8080, 1, 70_000_000_000n),
    ];
    const d: Dump = { keys: Buffer.concat(e.map((x) => x.k)), values: Buffer.concat(e.map((x) => x.v)), count: 3, valueStride: CT_VAL.size };
    const flows = decodeFlows(d, 100_000_000_000n);
    expect(flows).toHaveLength(2);
    expect(flows[0]).toMatchObject({ client: '172.18.0.100', clientPort: 40000, frontend: '172.18.0.11', frontendPort: 30007, backend: '10.244.2.10', snat: { address: '172.18.0.11', port: 61000 }, idle: 90 });
    expect(flows[1]).toMatchObject({ client: '172.18.0.101', local: true, snat: null, idle: 30 });
    expect(filterFlows(flows, { src: '172.18.0.101' }).map((f) => f.clientPort)).toEqual([40001]);
    expect(filterFlows(flows, { protocol: 'udp' })).toEqual([]);
    const text = formatFlows(flows);
    expect(text.split('\n')[0]).toMatch(/^PROTO\s+STATE\s+CLIENT\s+FRONTEND\s+BACKEND\s+NAT\s+IDLE$/);
    expect(text).toMatch(/tcp\s+-\s+172\.18\.0\.101:40001\s+172\.18\.0\.11:30007\s+72 => 10\.244\.1\.10:8080\s+dnat \(local\)\s+30s/);
    expect(text).toContain('snat 172.18.0.11:61000');
  });

  it('shows an SCTP flow\'s end as the datapath marked it (bpf/lib/sctp-ct.h): ESTABLISHED, SHUTDOWN, CLOSED', () => {
    const e = [
      ctEntry(0, [172, 18, 0, 100], 45001, [172, 18, 0, 11], 30132, [10, 244, 1, 10], 9000, 1, 90_000_000_000n, undefined, 132),
      ctEntry(0, [172, 18, 0, 100], 45002, [172, 18, 0, 11], 30132, [10, 244, 1, 10], 9000, 1 | 4, 90_000_000_000n, undefined, 132),
      ctEntry(0, [172, 18, 0, 100], 45003, [172, 18, 0, 11], 30132, [10, 244, 1, 10], 9000, 1 | 8, 90_000_000_000n, undefined, 132),
      ctEntry(0, [172, 18, 0, 100], 45004, [172, 18, 0, 11], 30007, [10, 244, 1, 10], 8080, 1 | 8, 90_000_000_000n),
    ];
    const d: Dump = { keys: Buffer.concat(e.map((x) => x.k)), values: Buffer.concat(e.map((x) => x.v)), count: e.length, valueStride: CT_VAL.size };
    const flows = decodeFlows(d, 100_000_000_000n);
    // The SCTP bits mean nothing on a TCP entry: no state shown for it.
    expect(flows.map((f) => [f.protocol, f.clientPort, f.state])).toEqual([
      ['SCTP', 45001, 'ESTABLISHED'], ['SCTP', 45002, 'SHUTDOWN'], ['SCTP', 45003, 'CLOSED'], ['TCP', 45004, null],
    ]);
    expect(formatFlows(flows)).toMatch(/sctp\s+CLOSED\s+172\.18\.0\.100:45003/);
  });
});

describe('the commands', () => {
  it('say clearly when nothing is pinned and no state was written', () => {
    const err: string[] = [];
    const dir = tmp();
    for (const cmd of ['status', 'services', 'conntrack'] as const) {
      err.length = 0;
      expect(runNodeView(cmd, ['--bpf-fs', dir], { out: () => {}, err: (s) => err.push(s) })).toBe(1);
      expect(err.join('')).toContain(`no bpfproxy state under ${dir}: is it running in bpf mode?`);
    }
  });

  it('answer --help with their options, and a bad argument with exit 2', () => {
    const out: string[] = [];
    expect(runNodeView('trace', ['--help'], { out: (s) => out.push(s), err: (s) => out.push(s) })).toBe(0);
    expect(out.join('')).toMatch(/--bpf-fs <dir>[\s\S]*--output <format>[\s\S]*--from-node/);
    const err: string[] = [];
    expect(runNodeView('trace', ['pod', '10.96.0.1:80'], { out: () => {}, err: (s) => err.push(s) })).toBe(2);
    expect(err.join('')).toContain('SRC "pod" is not an IP address');
  });

  it('are listed by bpfproxy --help and taken before the proxy\'s own parser', () => {
    const top = parseCommandLine(['--help']);
    if (top.command !== 'help') throw new Error('want help');
    expect(top.text).toMatch(/status[\s\S]*services[\s\S]*trace <src> <dst:port\/proto>[\s\S]*conntrack/);
    expect(nodeViewCommand(['trace', '10.0.0.1', '10.96.0.1:80', '-o', 'json'])).toEqual({ command: 'trace', argv: ['10.0.0.1', '10.96.0.1:80', '-o', 'json'] });
    expect(nodeViewCommand(['run', '--bpf-fs', '/x'])).toBeNull();
    expect(nodeViewCommand(['--bpf-fs', 'status'])).toBeNull();
  });

  it('keep their columns where the header puts them', () => {
    const t = formatTable([{ title: 'A', min: 4 }, { title: 'B', min: 3, right: true }, { title: 'C', min: 0 }], [['x', '1', 'end'], ['longer-cell', '22', '']]);
    expect(t).toBe('A              B  C\nx              1  end\nlonger-cell   22\n');
  });
});
