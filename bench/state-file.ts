// The cost of the state file `bpfproxy status` reads (src/dataplane/state-file.ts),
// at 30,000 services x 10 endpoints, against writing the same bytes alone
// (the I/O floor), in the same run. No root needed:
//
//   npx vite-node bench/state-file.ts
//
// 1. synced(): what each sync pays inline (it only records; the write is later).
// 2. The bpf mode's names (catalog) encoded once per plan change, and the file written.
// 3. A sync that changed nothing: the header rewritten in front of the kept catalog.
// 4. The rule modes' catalog, which keeps the whole plan (for `trace`).
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeCatalog, encodeHeader, NodeStateWriter, readNodeState, type StateHeader } from '../src/dataplane/state-file.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';

const SERVICES = Number(process.env.SERVICES ?? 30_000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 10);
const RUNS = 7;

const ip = (n: number, base: number) => `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function plan(): DesiredDataplane {
  const services = new Map<string, PlannedService>();
  let be = 1;
  for (let i = 1; i <= SERVICES; i++) {
    const s = plannedService({
      id: i, namespace: `ns${i % 50}`,
      frontends: [frontend('ClusterIP', ip(i, 10), 80)],
      backends: Array.from({ length: ENDPOINTS }, () => { const id = be++; return plannedBackend(id, ip(id, 11), 8080, { nodeName: `node-${id % 100}` }); }),
    });
    services.set(s.key, s);
  }
  return { generation: 1, services, healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const dir = mkdtempSync(join(tmpdir(), 'bpx-state-bench-'));
try {
  const desired = plan();
  const path = join(dir, 'state.msgpack');
  const ok = { full: false, upserts: 1, deletes: 0, errors: [], unsupported: [] };

  // 1. Inline cost per sync.
  const w = new NodeStateWriter(path, { mode: 'bpf', reason: '--proxy-mode bpf', node: 'n', pinDir: '/p' }, { schedule: () => () => {} });
  const n = 10_000;
  const plans = Array.from({ length: n }, (_, i) => ({ ...desired, generation: i + 2 }));
  const inline = time(() => { for (const p of plans) w.synced(p, ok, 0); }) / n;

  // 2. Catalog encode + write, against writing the same bytes.
  const enc: number[] = [];
  const write: number[] = [];
  const floor: number[] = [];
  let bytes = 0;
  const header: StateHeader = {
    format: 1, version: 'v', commit: 'c', pid: 1, node: 'n', mode: 'bpf', reason: 'r', pinDir: '/p',
    sync: { at: Date.now(), ms: 1, full: false, generation: 1, upserts: 1, deletes: 0, failed: 0 }, counts: { services: 0, frontends: 0, backends: 0 },
  };
  for (let r = 0; r < RUNS; r++) {
    let cat: Buffer = Buffer.alloc(0);
    enc.push(time(() => { cat = encodeCatalog(desired); }));
    bytes = cat.length;
    const file = [encodeHeader(header), cat];
    floor.push(time(() => {
      const fd = openSync(join(dir, 'floor'), 'w');
      for (const b of file) writeSync(fd, b);
      closeSync(fd);
    }));
    // The writer's own path: header + kept catalog, temporary file and rename.
    const w2 = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: '', pinDir: '' }, { schedule: (_ms, fn) => { fn(); return () => {}; } });
    w2.synced(desired, ok, 0);
    const full = w2.stats.ms;
    w2.synced(desired, ok, 0); // same generation: header only
    write.push(w2.stats.ms - full);
  }
  const readMs = time(() => readNodeState(path));

  // 4. The rule modes keep the plan.
  const ruleEnc: number[] = [];
  let ruleBytes = 0;
  for (let r = 0; r < 3; r++) ruleEnc.push(time(() => { ruleBytes = encodeCatalog(desired, { config: {} }).length; }));

  const f = median(floor);
  console.log(`state file at ${SERVICES} services x ${ENDPOINTS} endpoints (median of ${RUNS}):`);
  console.log(`  synced() inline per sync:                ${(inline * 1000).toFixed(2)} us`);
  console.log(`  bpf catalog encode (per plan change):    ${median(enc).toFixed(1)} ms, ${(bytes / 1e6).toFixed(2)} MB`);
  console.log(`  writing those bytes alone (floor):       ${f.toFixed(1)} ms`);
  console.log(`  header-only rewrite (nothing changed):   ${median(write).toFixed(1)} ms (${(median(write) / f).toFixed(2)}x the floor)`);
  console.log(`  encode + write per plan change:          ${(median(enc) + median(write)).toFixed(1)} ms (${((median(enc) + median(write)) / f).toFixed(1)}x the floor), at most once a second and a tenth of the time`);
  console.log(`  bpfproxy status reading it:              ${readMs.toFixed(1)} ms`);
  console.log(`  rule modes, whole plan kept:             ${median(ruleEnc).toFixed(1)} ms, ${(ruleBytes / 1e6).toFixed(2)} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
