// The Kubernetes source end to end: a proxy fed by an API server (the fake one,
// speaking list/watch) programs a lab node, and pods follow the API's changes,
// through a watch drop and a 410 Gone re-list.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/config/flags.js';
import type { ClientResult } from '../../src/lab/client.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { silentLogger } from '../../src/util/log.js';
import { Proxy } from '../../src/runtime/proxy.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('Kubernetes-source lab tests skipped: they attach BPF programs to a lab cgroup, which needs root');

function pods(results: ClientResult[]): Set<string> {
  return new Set(results.map((r) => (r.ok ? r.pod : `error:${r.error}`)));
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await probe();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < deadline);
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last, (_, v) => (v instanceof Set ? [...v] : v))})`);
}

describe.skipIf(!isRoot)('bpfproxy with the Kubernetes API as its source', () => {
  let lab: Lab;
  let fake: FakeApiServer;
  let tmp: string;
  let proxy: Proxy | undefined;

  const slice = (ips: string[]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: 'node1', conditions: { ready: true } })),
  });

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }, { name: 'client' }] }] });
    fake = await FakeApiServer.start();
    tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-k8s-lab-'));
    fake.apply('Node', { metadata: { name: 'node1' }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.11' }] } });
    fake.apply('Service', {
      metadata: { name: 'web', namespace: 'default' },
      spec: { clusterIP: '10.96.2.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    fake.apply('EndpointSlice', slice([lab.pod('a1').ipv4, lab.pod('a2').ipv4]));
    // A service another proxy implementation owns: kube-proxy's label selection leaves it alone.
    fake.apply('Service', {
      metadata: { name: 'other', namespace: 'default', labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } },
      spec: { clusterIP: '10.96.2.20', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    const node = lab.node('node1');
    const cl = parseCommandLine([
      '--kubeconfig', await fake.writeKubeconfig(tmp),
      '--hostname-override', 'node1',
      '--bpf-fs', node.bpffs,
      '--cgroup-root', node.cgroup,
      '--healthz-bind-address', '127.0.0.1:0',
      '--metrics-bind-address', '127.0.0.1:0',
      // Only lab addresses may ever become NodePort frontends.
      '--nodeport-addresses', '172.18.0.0/24',
      // This proxy runs in the test's own (root) namespace: no packet programs on its devices.
      '--devices', '',
    ]);
    if (cl.command === 'help') throw new Error('unexpected help');
    proxy = await Proxy.start(cl.config, { log: silentLogger(), localAddresses: () => [node.ipv4] });
  });

  afterAll(async () => {
    await proxy?.stop();
    await fake?.close();
    await lab?.teardown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const probe = () => lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 30, timeoutMs: 1000 }).then(pods);

  it('programs what the API server lists', async () => {
    await eventually(probe, (p) => p.size === 2 && p.has('a1') && p.has('a2'), 'both endpoints reached');
    const other = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.2.20', port: 80, count: 1, timeoutMs: 500 });
    expect(other[0]!.ok).toBe(false); // not ours to proxy
  });

  it('follows watch events', async () => {
    fake.apply('EndpointSlice', slice([lab.pod('a2').ipv4]));
    await eventually(probe, (p) => p.size === 1 && p.has('a2'), 'only a2 after the watch event');
  });

  it('converges after a dropped watch and after 410 Gone', async () => {
    fake.dropWatches('reset');
    fake.apply('EndpointSlice', slice([lab.pod('a1').ipv4]));
    await eventually(probe, (p) => p.size === 1 && p.has('a1'), 'a1 after the watch resumed');

    fake.compact();
    fake.dropWatches('end');
    fake.delete('EndpointSlice', 'default/web-1');
    const refused = await eventually(
      () => lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 1, timeoutMs: 1000 }),
      (r) => !r[0]!.ok && r[0]!.error === 'ECONNREFUSED',
      'refused once the slice is gone, after a re-list',
    );
    expect(refused[0]!.ok).toBe(false);
  });

  it('keeps serving what it has while the API server is unreachable', async () => {
    fake.apply('EndpointSlice', slice([lab.pod('a1').ipv4, lab.pod('a2').ipv4]));
    await eventually(probe, (p) => p.size === 2, 'both endpoints back');
    fake.failRequests(503);
    fake.dropWatches('reset');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await probe()).toEqual(new Set(['a1', 'a2']));
    fake.failRequests(undefined);
  });
});
