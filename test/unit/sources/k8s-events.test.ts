// Kubernetes Events for rejected objects, end to end without a kernel: the
// proxy reads a bad Service and a bad EndpointSlice from the fake API server,
// and Events appear on them there; repeated rejections patch one Event's
// series instead of posting new ones.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';
import type { Dataplane, SyncResult } from '../../../src/dataplane/types.js';
import { EMPTY_ID_HINTS } from '../../../src/planner/types.js';
import { Proxy } from '../../../src/runtime/proxy.js';
import { KubernetesSource, REJECTED_EVENT } from '../../../src/sources/k8s.js';
import type { KubeObject } from '../../../src/sources/types.js';
import { silentLogger } from '../../../src/util/log.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { eventually } from './event-log.js';

const NODE = 'node-a';

class NullDataplane implements Dataplane {
  readonly mode = 'bpf' as const;
  async restore() { return EMPTY_ID_HINTS; }
  async sync(): Promise<SyncResult> { return { full: true, upserts: 0, deletes: 0, errors: [], unsupported: [] }; }
  async dispose() {}
}

const badService = (labels: Record<string, string> = {}): KubeObject => ({
  metadata: { name: 'bad', namespace: 'shop', labels },
  spec: { clusterIP: '10.96.0.20', ports: [{ port: 70000, protocol: 'TCP' }] },
});

describe('Events for rejected objects', () => {
  let fake: FakeApiServer;
  let tmp: string;
  let proxy: Proxy | undefined;

  beforeEach(async () => {
    fake = await FakeApiServer.start();
    tmp = await mkdtemp(join(tmpdir(), 'bpfproxy-events-'));
    fake.apply('Node', { metadata: { name: NODE }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] } });
    fake.apply('Service', { metadata: { name: 'good', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] } });
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    await fake.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    const kubeconfig = await fake.writeKubeconfig(tmp);
    const cl = parseCommandLine(['--hostname-override', NODE, '--healthz-bind-address', '', '--metrics-bind-address', '']);
    if (!('config' in cl)) throw new Error('expected a run command line');
    // Patches of a series no closer than 200 ms: a test-sized interval.
    const source = new KubernetesSource({ kubeconfig, nodeName: NODE, log: silentLogger(), retry: { initialMs: 20, maxMs: 200 }, events: { patchIntervalMs: 200 } });
    proxy = await Proxy.start(cl.config, { log: silentLogger(), sources: [source], dataplane: new NullDataplane(), localAddresses: () => [] });
  }

  it('a bad Service gets a Warning Event with the reason, on that Service', async () => {
    const stored = fake.apply('Service', badService());
    await start();
    await eventually(() => fake.events.list().length === 1, 'one Event');
    const e = fake.events.list()[0]!;
    expect(e).toMatchObject({
      metadata: { namespace: 'shop' },
      type: 'Warning',
      reason: REJECTED_EVENT.reason,
      reportingController: 'bpfproxy',
      reportingInstance: NODE,
      regarding: { kind: 'Service', namespace: 'shop', name: 'bad', uid: stored.metadata!.uid },
    });
    expect(e.note).toContain('spec.ports[0].port: Invalid value: 70000');
    expect(e.note).toContain('not programmed');
    // The good Service gets nothing.
    expect(fake.events.list().some((x) => x.regarding.name === 'good')).toBe(false);
  });

  it('a bad EndpointSlice gets its own Event', async () => {
    const stored = fake.apply('EndpointSlice', {
      metadata: { name: 'good-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'good' } },
      addressType: 'IPv4',
      ports: [{ port: 70000 }],
      endpoints: [{ addresses: ['10.244.1.5'] }],
    });
    await start();
    await eventually(() => fake.events.list().length === 1, 'one Event');
    expect(fake.events.list()[0]).toMatchObject({
      reason: REJECTED_EVENT.reason,
      regarding: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', namespace: 'shop', name: 'good-1', uid: stored.metadata!.uid },
    });
    expect(fake.events.list()[0]!.note).toContain('ports[0].port: Invalid value: 70000');
  });

  it('repeated rejections patch one Event instead of posting more', async () => {
    fake.apply('Service', badService());
    await start();
    await eventually(() => fake.events.list().length === 1, 'the first Event');
    const updates = 40;
    for (let i = 0; i < updates; i++) fake.apply('Service', badService({ rev: String(i) }));
    // Every update is rejected again: 1 + 40 occurrences, one Event.
    await eventually(() => fake.events.list()[0]?.series?.count === updates + 1, `series.count ${updates + 1}`);
    const posts = fake.events.requests.filter((r) => r.method === 'POST');
    const patches = fake.events.requests.filter((r) => r.method === 'PATCH');
    expect(fake.events.list()).toHaveLength(1);
    expect(posts).toHaveLength(1);
    expect(patches.length).toBeGreaterThan(0);
    expect(patches.length).toBeLessThan(updates / 2);
    expect(fake.events.requests.every((r) => r.status === 200 || r.status === 201)).toBe(true);
  });
});
