// The state file costs in proportion to what changed (issue 6): a change of
// one service packs that service's names and nothing else, an endpoint
// change packs no names at all, and whatever sequence of partial changes
// (passes sliced, skipped, or overtaken by the live plan mid-pass) leads to
// a plan, the catalog reads back as a fresh encode of that plan. A file cut
// short, or with anything after its end, is never read as valid.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pack, unpackMultiple } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, encodeCatalog, IncrementalCatalog, NodeStateWriter, readNodeState, STATE_FORMAT, type StateCatalog } from '../../../src/dataplane/state-file.js';
import type { SyncResult } from '../../../src/dataplane/types.js';
import type { DesiredDataplane, PlannedBackend, PlannedService } from '../../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'bpx-incr-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ok: SyncResult = { full: false, upserts: 1, deletes: 0, errors: [], unsupported: [] };
const NODES = ['node-a', 'node-b', 'node-c', null] as const;

/** Backend `id` of the pool: one endpoint, so always the same address and node. */
const poolBackend = (id: number, terminating = false): PlannedBackend =>
  plannedBackend(id, `10.244.${id >> 8 & 255}.${id & 255}`, 8080, { nodeName: NODES[id % NODES.length]!, terminating });

function service(id: number, backends: PlannedBackend[], names: { ns?: string; port?: string; ranges?: string[]; localExternal?: PlannedBackend[] } = {}): PlannedService {
  const s = plannedService({
    id, namespace: names.ns, frontends: [frontend('ClusterIP', `10.96.${id >> 8 & 255}.${id & 255}`, 80)], backends, localExternal: names.localExternal,
  });
  s.portName = names.port ?? '';
  s.sourceRanges = names.ranges ?? [];
  return s;
}

const planOf = (services: Map<string, PlannedService>, generation: number): DesiredDataplane =>
  ({ generation, services, healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } });

const decode = (bytes: Buffer): StateCatalog => unpackMultiple(bytes)[0] as StateCatalog;

/** A catalog's services by ID (the file keeps them in its own slot order). */
const byId = (cat: StateCatalog) => [...cat.services].sort((a, b) => a[0] - b[0]);

/** What a reader sees of a catalog: the services, the backends by ID, and the counts. */
function seen(c: IncrementalCatalog) {
  const cat = decode(Buffer.concat(c.parts()));
  return { services: byId(cat), backends: backendInfo(cat), counts: c.counts };
}

/** The same, for a fresh encode of `d` from nothing. */
function fresh(d: DesiredDataplane) {
  const c = new IncrementalCatalog();
  c.begin(d);
  c.step(Infinity);
  return seen(c);
}

function pass(c: IncrementalCatalog, d: DesiredDataplane): void {
  c.begin(d);
  c.step(Infinity);
}

function manyServices(n: number): Map<string, PlannedService> {
  const m = new Map<string, PlannedService>();
  for (let i = 1; i <= n; i++) {
    const s = service(i, [poolBackend(i * 4), poolBackend(i * 4 + 1), poolBackend(i * 4 + 2)], { ns: `ns${i % 7}`, port: i % 2 ? 'http' : '' });
    m.set(s.key, s);
  }
  return m;
}

describe('the state catalog, brought up to date by what changed', () => {
  it('packs only the changed service\'s names, and none for an endpoint change or an unchanged plan', () => {
    const live = manyServices(2000);
    const c = new IncrementalCatalog();
    pass(c, planOf(live, 1));
    expect(c.stats.encoded).toBe(2000);

    // A port renamed: that service's names, once; one block rebuilt.
    const before = { ...c.stats };
    const old = [...live.values()][1234]!;
    const renamed = service(old.id, old.internal.backends, { ns: old.namespace, port: 'grpc' });
    live.set(old.key, renamed);
    pass(c, planOf(live, 2));
    const one = Buffer.from(pack([renamed.id, renamed.namespace, renamed.name, 'grpc', []]));
    expect(c.stats.encoded - before.encoded).toBe(1);
    expect(c.stats.encodedBytes - before.encodedBytes).toBe(one.length);
    expect(c.stats.blocks - before.blocks).toBe(1);
    expect(seen(c)).toEqual(fresh(planOf(live, 2)));

    // An endpoint moved: a new plan object with the same names packs nothing, yet the backends say it.
    const mid = { ...c.stats };
    const moved = service(old.id, [poolBackend(old.id * 4), poolBackend(99_999, true)], { ns: old.namespace, port: 'grpc' });
    live.set(old.key, moved);
    pass(c, planOf(live, 3));
    expect(c.stats.encoded).toBe(mid.encoded);
    expect(c.stats.blocks).toBe(mid.blocks);
    const be = seen(c).backends;
    expect(be.get(99_999)).toEqual({ node: NODES[99_999 % NODES.length], terminating: true });
    expect(be.has(old.id * 4 + 1)).toBe(false);
    expect(seen(c)).toEqual(fresh(planOf(live, 3)));

    // A new generation of the same objects: nothing at all.
    const still = { ...c.stats };
    pass(c, planOf(live, 4));
    expect(c.stats).toEqual({ ...still, passes: still.passes + 1 });

    // A service removed: its block copied without it, nothing packed.
    live.delete(old.key);
    pass(c, planOf(live, 5));
    expect(c.stats.encoded).toBe(still.encoded);
    expect(c.stats.blocks).toBe(still.blocks + 1);
    expect(c.counts.services).toBe(1999);
    expect(seen(c)).toEqual(fresh(planOf(live, 5)));
  });

  it('writes the file from a partial change without packing the other services again', () => {
    const live = manyServices(3000);
    const path = join(tmp(), 's.msgpack');
    const timers: (() => void)[] = [];
    const w = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: 'n', pinDir: '/p' }, { minIntervalMs: 0, schedule: (_ms, fn) => { timers.push(fn); return () => {}; } });
    const drain = () => { for (let i = 0; i < 100_000 && timers.length > 0; i++) timers.shift()!(); };
    w.synced(planOf(live, 1), ok, 0);
    drain();
    expect(w.catalog.stats.encoded).toBe(3000);
    const s = [...live.values()][10]!;
    live.set(s.key, service(s.id, [poolBackend(5), poolBackend(77_777)], { ns: s.namespace, port: 'metrics' }));
    w.synced(planOf(live, 2), ok, 0);
    drain();
    expect(w.catalog.stats.encoded).toBe(3001);
    const file = readNodeState(path)!;
    expect(file.sync.generation).toBe(2);
    expect(file.counts).toEqual(fresh(planOf(live, 2)).counts);
    expect(byId(file.catalog)).toEqual(fresh(planOf(live, 2)).services);
    expect(backendInfo(file.catalog)).toEqual(fresh(planOf(live, 2)).backends);
    w.dispose();
    expect(readdirSync(join(path, '..'))).toEqual(['s.msgpack']);
  });
});

describe('a big state file, renamed into place in the background', () => {
  it('is read only once renamed, and a proxy stopping meanwhile leaves its newest file, no temporary one', async () => {
    // 10,000 services x 3 backends: about 450 KB, past the size renamed on the threadpool.
    const live = manyServices(10_000);
    const dir = tmp();
    const path = join(dir, 's.msgpack');
    const timers: (() => void)[] = [];
    const w = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: 'n', pinDir: '/p' }, { minIntervalMs: 0, schedule: (_ms, fn) => { timers.push(fn); return () => {}; } });
    const drain = () => { for (let i = 0; i < 100_000 && timers.length > 0; i++) timers.shift()!(); };
    w.synced(planOf(live, 1), ok, 0);
    drain();
    for (let i = 0; i < 400 && w.stats.writes === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(w.stats.writes).toBe(1);
    expect(readFileSync(path).length).toBeGreaterThan(256 * 1024);
    expect(readNodeState(path)!.sync.generation).toBe(1);
    const s = [...live.values()][42]!;
    live.set(s.key, service(s.id, [poolBackend(3)], { ns: s.namespace, port: 'new' }));
    w.synced(planOf(live, 2), ok, 0);
    drain();
    // Stopped with the second write's rename still on the threadpool (or just done): the file is the second.
    w.dispose();
    const check = () => {
      const f = readNodeState(path)!;
      expect(f.sync.generation).toBe(2);
      expect(byId(f.catalog)).toEqual(fresh(planOf(live, 2)).services);
      expect(readdirSync(dir)).toEqual(['s.msgpack']);
    };
    check();
    await new Promise((r) => setTimeout(r, 50));
    check();
  });
});

// A change to the live plan (the planner's services map, mutated in place).
type Op =
  | { kind: 'add'; backends: number[]; terminating: number; ns: number; port: number }
  | { kind: 'remove'; at: number }
  | { kind: 'endpoints'; at: number; backends: number[]; terminating: number }
  | { kind: 'names'; at: number; port: number; ranges: number }
  | { kind: 'external'; at: number; take: number };
// When the catalog catches up: a whole pass, a pass in slices of one check each, none (changes coalesce), or a pass the live plan changes under.
type Catch = 'pass' | 'sliced' | 'skip' | 'overtaken';

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), backends: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 6 }), terminating: fc.nat(63), ns: fc.nat(3), port: fc.nat(2) }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('endpoints' as const), at: fc.nat(), backends: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 6 }), terminating: fc.nat(63) }),
  fc.record({ kind: fc.constant('names' as const), at: fc.nat(), port: fc.nat(2), ranges: fc.nat(2) }),
  fc.record({ kind: fc.constant('external' as const), at: fc.nat(), take: fc.nat(3) }),
);
const stepArb = fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 8 }), then: fc.constantFrom<Catch>('pass', 'sliced', 'skip', 'overtaken') });

/** Applies `op` to the live map as the planner would: a changed service is a new object, a removed one frees its ID for the next. */
function apply(live: Map<string, PlannedService>, op: Op): void {
  const list = [...live.values()];
  const pick = (at: number) => list[at % list.length];
  const backends = (ids: number[], terminating: number) => [...new Set(ids)].sort((a, b) => a - b).map((id, i) => poolBackend(id, ((terminating >> i) & 1) === 1));
  if (op.kind === 'add') {
    const used = new Set(list.map((s) => s.id));
    let id = 1;
    while (used.has(id)) id++;
    const s = service(id, backends(op.backends, op.terminating), { ns: `ns${op.ns}`, port: ['', 'http', 'dns'][op.port] });
    s.key = `k${id}-${live.size}-${op.ns}`; // a new key, maybe for an ID just freed
    live.set(s.key, s);
    return;
  }
  const s = pick(op.at);
  if (!s) return;
  const keep = { ns: s.namespace, port: s.portName, ranges: s.sourceRanges };
  let next: PlannedService;
  if (op.kind === 'remove') {
    live.delete(s.key);
    return;
  } else if (op.kind === 'endpoints') {
    next = service(s.id, backends(op.backends, op.terminating), keep);
  } else if (op.kind === 'names') {
    next = service(s.id, s.internal.backends, { ...keep, port: ['', 'http', 'dns'][op.port], ranges: [[], ['10.0.0.0/8'], ['192.0.2.0/24', '198.51.100.0/24']][op.ranges] });
  } else {
    next = service(s.id, s.internal.backends, { ...keep, localExternal: s.internal.backends.slice(0, op.take).map((b) => poolBackend(b.id + 1000, b.terminating)) });
  }
  next.key = s.key;
  next.name = s.name;
  live.set(s.key, next);
}

describe('the state catalog after any sequence of partial changes', () => {
  it('reads back as a fresh encode of the plan it last caught up with', () => {
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), (steps) => {
      const live = new Map<string, PlannedService>();
      const c = new IncrementalCatalog();
      let generation = 0;
      for (const { ops, then } of steps) {
        for (const op of ops) apply(live, op);
        const d = planOf(live, ++generation);
        if (then === 'skip') continue;
        c.begin(d);
        if (then === 'pass') c.step(Infinity);
        else if (then === 'sliced') while (!c.step(0));
        else {
          // The live map changes while the pass is under way: the next pass must make it right.
          c.step(0);
          for (const op of ops) apply(live, op);
          c.step(Infinity);
          c.begin(planOf(live, ++generation));
          c.step(Infinity);
        }
        expect(seen(c)).toEqual(fresh(planOf(live, generation)));
      }
      pass(c, planOf(live, ++generation));
      expect(seen(c)).toEqual(fresh(planOf(live, generation)));
      // The bytes a reader decodes, as a fresh encode's (services in slot order, so compared by ID).
      expect(byId(decode(Buffer.concat(c.parts())))).toEqual(byId(decode(encodeCatalog(planOf(live, generation)))));
    }), { numRuns: 150 });
  });
});

describe('a state file cut short or added to', () => {
  function written(): { path: string; bytes: Buffer } {
    const path = join(tmp(), 's.msgpack');
    const w = new NodeStateWriter(path, { mode: 'nftables', reason: 'r', node: 'n', pinDir: '/p' }, { schedule: (_ms, fn) => { fn(); return () => {}; } });
    const live = manyServices(5);
    w.synced(planOf(live, 1), ok, 0, { config: { table: 'x' } });
    w.dispose();
    return { path, bytes: readFileSync(path) };
  }

  it('is refused at every length short of its end, and with bytes after it', () => {
    const { path, bytes } = written();
    expect(readNodeState(path)!.catalog.services).toHaveLength(5);
    for (let n = 0; n < bytes.length; n++) {
      writeFileSync(path, bytes.subarray(0, n));
      expect(() => readNodeState(path), `cut at ${n} of ${bytes.length}`).toThrow(/state file/);
    }
    writeFileSync(path, Buffer.concat([bytes, Buffer.from([0xc0])]));
    expect(() => readNodeState(path)).toThrow(/incomplete or damaged/);
    writeFileSync(path, Buffer.concat([bytes, bytes]));
    expect(() => readNodeState(path)).toThrow(/incomplete or damaged/);
  });

  it('of the previous format, is refused as such, not read as garbage', () => {
    const { path } = written();
    const v1 = Buffer.concat([pack({ format: 1, version: 'old', mode: 'bpf' }), pack({ services: [], nodes: [], backends: new Uint8Array(12) })]);
    writeFileSync(path, v1);
    expect(() => readNodeState(path)).toThrow(new RegExp(`not a bpfproxy state file of format ${STATE_FORMAT} \\(format 1`));
  });
});
