// Restarts under load, as issue 12 measured them: the proxy is SIGKILLed
// three times and started again each time while a pod opens about 100 new
// connections per second through a ClusterIP and 20 long-lived connections
// exchange a line every 100 ms. Pinned maps and links keep the datapath
// serving while no proxy runs, and a restarted proxy converges on what it
// finds without flushing, so nothing is refused and nothing breaks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientResult, LabConnection } from '../../src/lab/client.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { put, service, slice } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('restart lab test skipped: it attaches BPF programs, which needs root');

const VIP = '10.96.5.1';
const HTTP = [{ name: 'http', port: 80, protocol: 'TCP' }];
const RESTARTS = 3;
const LONG_LIVED = 20;
/** New connections: 100 per second, in runs of one client process per second. */
const RATE_INTERVAL_MS = 10;
const PER_RUN = 100;
const EXCHANGE_EVERY_MS = 100;
/** Bounds: the load stops after this many runs even if the restarts hang (they time out first). */
const MAX_RUNS = 35;
/** What is measured is the pinned bpf datapath: a fallback to a rule mode would measure something else. */
const BPF_ONLY = ['--no-fallback'];

describe.skipIf(!isRoot)('SIGKILL restarts under load', () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy;
  const conns: LabConnection[] = [];

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }, { name: 'client' }] }] });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-restart-'));
    const eps = ['a1', 'a2'].map((p) => ({ ip: lab.pod(p).ipv4, node: 'node1' }));
    put(dir, 'web.yaml', `${service('web', VIP, HTTP)}---\n${slice('web', HTTP, eps)}`);
    proxy = LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: BPF_ONLY });
    await proxy.waitSynced();
  });

  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await proxy?.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses no new connection and breaks no established one across three SIGKILLs', async () => {
    const client = lab.pod('client');
    for (const c of await Promise.all(Array.from({ length: LONG_LIVED }, () => lab.openConnection(client, VIP, 80)))) conns.push(c);
    expect(new Set(conns.map((c) => c.greeting.pod))).toEqual(new Set(['a1', 'a2']));

    let loadOn = true;
    // Long-lived: a line every 100 ms on each; the reply must come from the pod that greeted it.
    const broken = new Set<number>();
    let exchanges = 0;
    const talk = (async () => {
      for (let round = 0; loadOn; round++) {
        const next = sleep(EXCHANGE_EVERY_MS);
        await Promise.all(conns.map(async (c, i) => {
          if (broken.has(i)) return;
          try {
            if (await c.send(`r${round}`) === `${c.greeting.pod} r${round}`) exchanges++;
            else broken.add(i);
          } catch {
            broken.add(i);
          }
        }));
        await next;
      }
    })();
    // New connections: 100 a second, each on a new socket, each given 1 s.
    const results: ClientResult[] = [];
    const load = (async () => {
      for (let run = 0; loadOn && run < MAX_RUNS; run++) {
        results.push(...await lab.client(client, { proto: 'tcp', host: VIP, port: 80, count: PER_RUN, intervalMs: RATE_INTERVAL_MS, timeoutMs: 1000 }));
      }
    })();

    const restartMs: number[] = [];
    try {
      for (let k = 0; k < RESTARTS; k++) {
        await sleep(1000);
        const killed = performance.now();
        proxy.proc.child.kill('SIGKILL');
        expect((await proxy.proc.exited).signal).toBe('SIGKILL');
        proxy = LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: BPF_ONLY });
        // It converged on what the killed run left: nothing flushed, nothing rewritten.
        const synced = await proxy.waitSynced();
        restartMs.push(Math.round(performance.now() - killed));
        if (process.env.DEBUG_RESTART) console.log(k, proxy.logs.map((l) => JSON.stringify(l)).join('\n'));
        expect(synced).toMatchObject({ full: true, upserts: 0, deletes: 0 });
      }
      await sleep(1000);
    } finally {
      loadOn = false;
      await Promise.all([talk, load]);
    }

    const failed = results.filter((r) => !r.ok);
    const errors = [...new Set(failed.map((r) => (r.ok ? '' : r.error)))];
    console.log(`restart under load: ${RESTARTS} SIGKILL restarts (kill to first sync: ${restartMs.join(', ')} ms); ` +
      `new connections ${results.length} attempted, ${failed.length} failed${errors.length ? ` (${errors.join(', ')})` : ''}; ` +
      `long-lived ${LONG_LIVED - broken.size} kept, ${broken.size} broken (${exchanges} exchanges)`);
    // Enough load to mean something: at least one second of it around each restart.
    expect(results.length).toBeGreaterThanOrEqual(PER_RUN * (RESTARTS + 1));
    expect(exchanges).toBeGreaterThanOrEqual(LONG_LIVED * (RESTARTS + 1));
    expect(failed).toEqual([]);
    expect(broken.size).toBe(0);
    // Every one still carries data after the last restart, from the pod it first reached.
    expect(await Promise.all(conns.map((c) => c.send('after')))).toEqual(conns.map((c) => `${c.greeting.pod} after`));
    expect(new Set(results.flatMap((r) => (r.ok ? [r.pod] : [])))).toEqual(new Set(['a1', 'a2']));
  });
});
