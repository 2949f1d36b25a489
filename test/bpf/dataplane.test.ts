// The bpf dataplane against real pinned maps (no traffic): convergence after a
// restart, repair of entries edited behind its back, and a full map. Programs
// attach to a cgroup this test creates and removes; pins go to a directory of
// its own.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BpfDataplane } from '../../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../../src/dataplane/bpf/loader.js';
import { readFeKey, writeFeKey } from '../../src/dataplane/bpf/layout.js';
import { cgroup2Mount } from '../../src/lab/host.js';
import { silentLogger } from '../../src/util/log.js';
import { KEY_WORDS, writeAddressKey } from '../../src/planner/address-key.js';
import type { AddressIds, DesiredDataplane, PlannedBackend, PlannedService } from '../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../helpers/planned.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('bpf dataplane tests skipped: loading BPF programs and pinning maps needs root');

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.9.${last}`);

function service(id: number, backends: PlannedBackend[], extraFrontends = 0): PlannedService {
  return plannedService({
    id, backends, namespace: 't',
    frontends: [
      frontend('ClusterIP', `10.96.9.${id}`, 80),
      ...Array.from({ length: extraFrontends }, (_, i) => frontend('ExternalIP', `192.0.2.${id * 10 + i}`, 80)),
    ],
  });
}

/** The ID a hint table holds for (protocol, address, port), 0 for none. */
function hinted(ids: AddressIds, address: string, port: number): number {
  const k = new Uint32Array(KEY_WORDS);
  writeAddressKey(k, 0, 'TCP', 'IPv4', plannedBackend(0, address).v4, address, port);
  return ids.find(k, 0);
}

function desired(services: PlannedService[]): DesiredDataplane {
  return { generation: 1, services: new Map(services.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } };
}

const FULL = { full: true, changed: new Set<string>() };

describe.skipIf(!isRoot)('bpf dataplane on real maps', () => {
  const tag = `bpfproxy-test-${process.pid}`;
  const pinDir = `/sys/fs/bpf/${tag}`;
  let cgroup: string;
  let open: BpfDataplane[] = [];
  const start = (mapSizes: Record<string, number> = {}) => {
    const dp = BpfDataplane.open({ pinDir, cgroupRoot: cgroup, mapSizes, log: silentLogger() });
    open.push(dp);
    return dp;
  };

  beforeEach(() => {
    cgroup = join(cgroup2Mount(), tag);
    mkdirSync(cgroup, { recursive: true });
  });

  afterEach(async () => {
    for (const dp of open) await dp.dispose();
    open = [];
    cleanupPins(pinDir);
    rmdirSync(cgroup);
  });

  it('a restarted dataplane restores the IDs and converges without writing anything', async () => {
    const plan = desired([service(1, [backend(1, 10), backend(2, 11)]), service(2, [backend(2, 11)])]);
    const first = start();
    expect((await first.sync(plan, FULL)).upserts).toBeGreaterThan(0);
    await first.dispose();
    open = [];

    const second = start();
    const hints = await second.restore();
    expect(hinted(hints.frontends, '10.96.9.1', 80)).toBe(1);
    expect(hinted(hints.backends, '10.244.9.11', 8080)).toBe(2);
    const res = await second.sync(plan, FULL);
    expect(res).toMatchObject({ upserts: 0, deletes: 0, errors: [] });
  });

  it('repairs on the next full sync what was edited behind its back', async () => {
    const plan = desired([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]);
    const dp = start();
    await dp.sync(plan, FULL);
    // Someone deletes a frontend and a backend with bpftool, and adds a stray frontend.
    const key = Buffer.alloc(20);
    writeFeKey(key, 0, { address: '10.96.9.2', port: 80, protocol: 'TCP', family: 'IPv4' });
    const hex = (b: Buffer) => [...b].map((x) => `0x${x.toString(16)}`);
    execFileSync('bpftool', ['map', 'delete', 'pinned', join(pinDir, 'bpx_fe_v1'), 'key', ...hex(key)]);
    execFileSync('bpftool', ['map', 'delete', 'pinned', join(pinDir, 'bpx_be_v1'), 'key', '1', '0', '0', '0']);
    writeFeKey(key, 0, { address: '10.96.9.99', port: 80, protocol: 'TCP', family: 'IPv4' });
    execFileSync('bpftool', ['map', 'update', 'pinned', join(pinDir, 'bpx_fe_v1'), 'key', ...hex(key), 'value', ...hex(Buffer.alloc(16, 1))]);

    // A partial sync of an unrelated change trusts its mirror and does not notice...
    expect((await dp.sync(plan, { full: false, changed: new Set(['t/s1:/IPv4']) })).upserts).toBe(0);
    // ...the next full sync puts all three right.
    const res = await dp.sync(plan, FULL);
    expect(res).toMatchObject({ upserts: 2, deletes: 1, errors: [] });
    expect((await dp.sync(plan, FULL)).upserts).toBe(0);
  });

  it('refuses a service that does not fit, naming the map, and leaves it exactly as it was', async () => {
    const dp = start({ frontends: 4 });
    const frontends = () => {
      const d = dp.maps.fe.dump();
      return new Set(Array.from({ length: d.count }, (_, i) => readFeKey(d.keys, i * 20)).map((k) => `${k.address}:${k.port}`));
    };
    const backendsOf = () => {
      const d = dp.maps.be.dump();
      return new Set(Array.from({ length: d.count }, (_, i) => d.keys.readUInt32LE(i * 4)));
    };
    expect((await dp.sync(desired([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]), FULL)).errors).toEqual([]);

    // s3 needs 3 frontends, and 2 + 3 > 4: refused whole, while s2 still gets its new backend.
    const grown = [service(1, [backend(1, 10)]), service(2, [backend(2, 11), backend(3, 12)]), service(3, [backend(4, 13)], 2)];
    const res = await dp.sync(desired(grown), FULL);
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0]).toMatchObject({ service: 't/s3:/IPv4', code: 'MAP_FULL' });
    expect(res.errors[0]!.message).toMatch(/map bpx_fe_v1 is full .* needs 3 more.*raise bpf\.mapSizes\.frontends/);
    expect(frontends()).toEqual(new Set(['10.96.9.1:80', '10.96.9.2:80']));
    expect(backendsOf()).toEqual(new Set([1, 2, 3]));

    // An existing service that outgrows the map keeps its previous state.
    const s2big = [service(1, [backend(1, 10)]), service(2, [backend(2, 11)], 3)];
    const res2 = await dp.sync(desired(s2big), FULL);
    expect(res2.errors.map((e) => e.service)).toEqual(['t/s2:/IPv4']);
    expect(frontends()).toEqual(new Set(['10.96.9.1:80', '10.96.9.2:80']));
    expect(backendsOf()).toEqual(new Set([1, 2, 3])); // s2 still has both backends it had

    // Once room is made, a later sync admits it (deletes come after upserts, so not in the same one).
    const s3only = [service(3, [backend(4, 13)], 2)];
    expect((await dp.sync(desired(s3only), FULL)).errors.map((e) => e.service)).toEqual(['t/s3:/IPv4']);
    expect((await dp.sync(desired(s3only), FULL)).errors).toEqual([]);
    expect(frontends()).toEqual(new Set(['10.96.9.3:80', '192.0.2.30:80', '192.0.2.31:80']));
  });
});
