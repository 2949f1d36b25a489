import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/util/log.js';
import { KubernetesSource } from '../../../src/sources/k8s.js';
import { HEADLESS_LABEL, PROXY_LABEL_SELECTOR, SERVICE_PROXY_NAME_LABEL } from '../../../src/sources/selection.js';
import type { KubeObject, SourceEvent } from '../../../src/sources/types.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { EventLog, expectNoLeaks, openHandles, eventually, isDelete, isUpsert, summary } from './event-log.js';

const service = (name: string, port = 80, labels?: Record<string, string>): KubeObject => ({
  metadata: { name, ...(labels && { labels }) },
  spec: { clusterIP: '10.96.0.10', ports: [{ port, protocol: 'TCP' }] },
});

const slice = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  metadata: { name, labels: { 'kubernetes.io/service-name': 'a', ...labels } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.1.5'] }],
  ports: [{ port: 8080 }],
});

const node = (name: string, address = '172.18.0.2'): KubeObject => ({
  metadata: { name },
  status: { addresses: [{ type: 'InternalIP', address }] },
});

const servicePort = (ev: SourceEvent): unknown =>
  ev.type === 'upsert' ? (ev.object.spec as { ports: Array<{ port: number }> }).ports[0]!.port : undefined;

const isUpsertWithPort = (key: string, port: number) => (ev: SourceEvent) =>
  isUpsert('Service', key)(ev) && servicePort(ev) === port;

const OWN_NODE = 'node-a';

let fake: FakeApiServer;
let tmp: string;
let kubeconfig: string;
let log: EventLog;
let handlesBefore: Record<string, number>;
let source: KubernetesSource | undefined;

beforeEach(async () => {
  handlesBefore = openHandles();
  fake = await FakeApiServer.start();
  tmp = await mkdtemp(join(tmpdir(), 'bpfproxy-k8s-'));
  kubeconfig = await fake.writeKubeconfig(tmp);
  log = new EventLog();
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
  await fake.close();
  await rm(tmp, { recursive: true, force: true });
  vi.unstubAllEnvs();
  await expectNoLeaks(handlesBefore);
});

async function start(): Promise<KubernetesSource> {
  source = new KubernetesSource({ kubeconfig, nodeName: OWN_NODE, log: silentLogger(), retry: { initialMs: 20, maxMs: 200 } });
  await source.start(log.listener);
  return source;
}

/** Started, synced, and all three watches open on the server. */
async function startWatching(): Promise<KubernetesSource> {
  const src = await start();
  await log.next((e) => e.type === 'synced', 'synced');
  await eventually(() => fake.openWatches() === 3, 'three open watches');
  return src;
}

/** A change applied after everything else: once its event arrives, every earlier change has been seen. */
async function barrier(name: string): Promise<void> {
  const m = log.mark();
  fake.apply('Service', service(name));
  await log.next(isUpsert('Service', `default/${name}`), `barrier ${name}`, m);
}

const withoutBarrier = (events: SourceEvent[]) => events.filter((e) => !(e.type === 'upsert' && e.key.startsWith('default/barrier')));

describe('KubernetesSource', () => {
  it('delivers the initial lists as upserts, and synced only once all three kinds are listed', async () => {
    fake.apply('Service', service('a'));
    fake.apply('Service', service('b'));
    fake.apply('EndpointSlice', slice('a-1'));
    fake.apply('Node', node(OWN_NODE));
    const releaseNodes = fake.holdLists('Node');
    await start();

    await log.until(() => log.state().size === 3, 'the Service and EndpointSlice lists');
    await eventually(() => fake.lists('Node').length === 1, 'the Node list request');
    expect(log.events.some((e) => e.type === 'synced')).toBe(false);

    releaseNodes();
    await log.next((e) => e.type === 'synced', 'synced');
    expect(log.events.map(summary).sort()).toEqual(
      ['synced', 'upsert EndpointSlice default/a-1', 'upsert Node node-a', 'upsert Service default/a', 'upsert Service default/b'].sort(),
    );
    expect(log.events.at(-1)!.type).toBe('synced');

    // The objects are the server's JSON, not client-node's models (which turn timestamps into Dates).
    const a = log.events.find(isUpsert('Service', 'default/a'));
    expect(a?.type === 'upsert' && a.object.metadata?.creationTimestamp).toBe('2024-05-01T10:00:00Z');
    expect(a?.type === 'upsert' && a.origin).toBe('k8s');
  });

  it('turns ADDED, MODIFIED and DELETED into upserts and deletes', async () => {
    fake.apply('Service', service('a', 80));
    fake.apply('Service', service('b'));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    const m = log.mark();

    fake.apply('Service', service('c'));
    fake.apply('Service', service('a', 81));
    fake.delete('Service', 'default/b');
    fake.apply('EndpointSlice', slice('c-1'));
    fake.apply('Node', node(OWN_NODE, '172.18.0.9'));
    await log.next(isUpsert('Node', OWN_NODE), 'the node change', m);
    // Each kind has its own watch: the barrier (a Service) orders the Service events only.
    await log.next(isUpsert('EndpointSlice', 'default/c-1'), 'the new slice', m);
    await barrier('barrier-1');

    expect(withoutBarrier(log.since(m)).map(summary).sort()).toEqual(
      ['delete Service default/b', 'upsert EndpointSlice default/c-1', 'upsert Node node-a', 'upsert Service default/a', 'upsert Service default/c'].sort(),
    );
    expect(log.since(m).find(isUpsert('Service', 'default/a'))).toSatisfy(isUpsertWithPort('default/a', 81));
  });

  it('asks for bookmarks, which move the resume point without producing events', async () => {
    fake.apply('Service', service('a'));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    expect(fake.requests.filter((r) => r.watch).every((r) => r.query.allowWatchBookmarks === 'true')).toBe(true);

    // Only the Node changes: the Service and EndpointSlice watches fall behind...
    const m0 = log.mark();
    fake.apply('Node', node(OWN_NODE, '172.18.0.9'));
    await log.next(isUpsert('Node', OWN_NODE), 'the node change', m0);
    const m = log.mark();
    // ...until a bookmark brings them to the current version. History is then
    // compacted and the watches dropped: resuming needs no re-list.
    fake.bookmark();
    fake.compact();
    fake.dropWatches('end');
    await eventually(() => fake.openWatches() === 3, 'three resumed watches');
    await barrier('barrier-1');

    expect(withoutBarrier(log.since(m))).toEqual([]);
    expect(fake.lists('Service')).toHaveLength(1);
    expect(fake.lists('EndpointSlice')).toHaveLength(1);
    expect(fake.lists('Node')).toHaveLength(1);
  });

  it('re-lists after 410 Gone and converges: deletes what vanished meanwhile, nothing else', async () => {
    fake.apply('Service', service('a', 80));
    fake.apply('Service', service('b'));
    fake.apply('Service', service('c'));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    const m = log.mark();

    // While the watches are gone, the history they would resume from is compacted away.
    fake.dropWatches('end');
    fake.delete('Service', 'default/b');
    fake.apply('Service', service('a', 81));
    fake.apply('Service', service('d'));
    fake.compact();

    await log.until(() => !log.state().has('Service default/b') && log.state().has('Service default/d'), 'the re-list');
    await barrier('barrier-1');
    expect(fake.lists('Service')).toHaveLength(2);
    expect(withoutBarrier(log.since(m)).map(summary).sort()).toEqual(
      ['delete Service default/b', 'upsert Service default/a', 'upsert Service default/d'].sort(),
    );
    expect(log.since(m).find(isUpsert('Service', 'default/a'))).toSatisfy(isUpsertWithPort('default/a', 81));
  });

  it.each(['end', 'reset'] as const)('resumes a dropped watch (%s) without re-listing, duplicating or missing events', async (how) => {
    fake.apply('Service', service('a', 80));
    fake.apply('Service', service('b'));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    const m = log.mark();
    const listVersion = fake.requests.find((r) => r.kind === 'Service' && r.watch)!.query.resourceVersion;

    expect(fake.dropWatches(how)).toBe(3);
    fake.apply('Service', service('x'));
    fake.apply('Service', service('a', 81));
    fake.delete('Service', 'default/b');
    await barrier('barrier-1');

    expect(withoutBarrier(log.since(m)).map(summary)).toEqual([
      'upsert Service default/x',
      'upsert Service default/a',
      'delete Service default/b',
    ]);
    expect(fake.lists('Service')).toHaveLength(1);
    const serviceWatches = fake.requests.filter((r) => r.kind === 'Service' && r.watch);
    expect(serviceWatches.length).toBeGreaterThanOrEqual(2);
    expect(serviceWatches[1]!.query.resourceVersion).toBe(listVersion);
  });

  it('sends the proxy label selector: claimed Services and headless slices are never delivered', async () => {
    fake.apply('Service', service('plain'));
    fake.apply('Service', service('claimed', 80, { [SERVICE_PROXY_NAME_LABEL]: 'other-proxy' }));
    fake.apply('EndpointSlice', slice('plain-1'));
    fake.apply('EndpointSlice', slice('headless-1', { [HEADLESS_LABEL]: '' }));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    expect(log.events.filter((e) => e.type === 'upsert').map(summary).sort()).toEqual(
      ['upsert EndpointSlice default/plain-1', 'upsert Node node-a', 'upsert Service default/plain'].sort(),
    );
    for (const r of fake.requests.filter((r) => r.kind !== 'Node')) expect(r.query.labelSelector).toBe(PROXY_LABEL_SELECTOR);

    // Labels change: the server's watch shows it as a delete and an add.
    const m = log.mark();
    fake.apply('Service', service('plain', 80, { [SERVICE_PROXY_NAME_LABEL]: 'other-proxy' }));
    fake.apply('Service', service('claimed'));
    await barrier('barrier-1');
    expect(withoutBarrier(log.since(m)).map(summary)).toEqual(['delete Service default/plain', 'upsert Service default/claimed']);
  });

  it('watches only its own Node', async () => {
    fake.apply('Node', node(OWN_NODE));
    fake.apply('Node', node('node-b'));
    await startWatching();
    expect(log.events.filter((e) => e.type === 'upsert').map(summary)).toEqual(['upsert Node node-a']);
    for (const r of fake.requests.filter((r) => r.kind === 'Node')) expect(r.query.fieldSelector).toBe(`metadata.name=${OWN_NODE}`);

    const m = log.mark();
    fake.apply('Node', node('node-b', '172.18.0.9'));
    fake.apply('Node', node(OWN_NODE, '172.18.0.7'));
    await log.next(isUpsert('Node', OWN_NODE), 'the own node change', m);
    expect(log.since(m).map(summary)).toEqual(['upsert Node node-a']);
  });

  it('retries a failing API server without deleting anything, then catches up', async () => {
    fake.apply('Service', service('a'));
    fake.apply('Service', service('b'));
    fake.apply('Node', node(OWN_NODE));
    await startWatching();
    const m = log.mark();

    fake.failRequests(503);
    fake.dropWatches('reset');
    const before = fake.requests.length;
    await eventually(() => fake.requests.length >= before + 9, 'three failed attempts per kind');
    fake.delete('Service', 'default/b');
    expect(log.since(m)).toEqual([]);

    fake.failRequests(undefined);
    await log.next(isDelete('Service', 'default/b'), 'the delete made while failing', m);
    await barrier('barrier-1');
    expect(withoutBarrier(log.since(m)).map(summary)).toEqual(['delete Service default/b']);
  });

  it('leaves no connection open after stop(), and stop() is idempotent', async () => {
    fake.apply('Service', service('a'));
    fake.apply('Node', node(OWN_NODE));
    const src = await startWatching();
    expect(fake.openConnections()).toBeGreaterThanOrEqual(3);

    await src.stop();
    await src.stop();
    await eventually(() => fake.openConnections() === 0, 'all connections closed');
    expect(fake.openWatches()).toBe(0);
  });

  it('leaves no connection open when stopped during its initial list', async () => {
    fake.apply('Node', node(OWN_NODE));
    const release = fake.holdLists('Node');
    try {
      const src = await start();
      await eventually(() => fake.lists('Node').length === 1 && fake.openWatches() === 2, 'the held list and two watches');
      await src.stop();
      await eventually(() => fake.openConnections() === 0, 'all connections closed');
      expect(log.events.some((e) => e.type === 'synced')).toBe(false);
    } finally {
      release();
    }
  });

  it('leaves no connection open when stopped while a watch waits for its response', async () => {
    fake.apply('Node', node(OWN_NODE));
    const release = fake.holdWatches('Node');
    try {
      const src = await start();
      await log.next((e) => e.type === 'synced', 'synced');
      await eventually(() => fake.requests.some((r) => r.kind === 'Node' && r.watch) && fake.openWatches() === 2, 'the held watch');
      await src.stop();
      await eventually(() => fake.openConnections() === 0, 'all connections closed');
    } finally {
      release();
    }
  });

  it('--master overrides the kubeconfig\'s server and keeps its credentials', async () => {
    const { readFile, writeFile } = await import('node:fs/promises');
    const cfg = JSON.parse(await readFile(kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    cfg.clusters[0]!.cluster.server = 'http://127.0.0.1:1';
    await writeFile(kubeconfig, JSON.stringify(cfg));
    fake.apply('Service', { metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ port: 80 }] } });
    source = new KubernetesSource({ kubeconfig, master: fake.url, nodeName: OWN_NODE, log: silentLogger(), retry: { initialMs: 20, maxMs: 200 } });
    await source.start(log.listener);
    await log.next((e) => e.type === 'synced', 'synced');
    expect(log.events.some(isUpsert('Service', 'default/web'))).toBe(true);
  });

  it('authenticates with a token file as kubeadm writes it (tokenFile), which client-node alone ignores', async () => {
    const { readFile, writeFile } = await import('node:fs/promises');
    const cfg = JSON.parse(await readFile(kubeconfig, 'utf8')) as { users: { user: Record<string, unknown> }[] };
    const tokenPath = join(tmp, 'token');
    const token = cfg.users[0]!.user.token as string;
    await writeFile(tokenPath, token);
    cfg.users[0]!.user = { tokenFile: tokenPath };
    await writeFile(kubeconfig, JSON.stringify(cfg));
    fake.apply('Service', { metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ port: 80 }] } });
    // The fake answers 401 to any request without the token: syncing proves it was sent.
    await startWatching();
    expect(log.events.some(isUpsert('Service', 'default/web'))).toBe(true);
  });

  it('fails to start with a clear error without a usable kubeconfig', async () => {
    const missing = join(tmp, 'missing-kubeconfig');
    const withFile = new KubernetesSource({ kubeconfig: missing, nodeName: OWN_NODE, log: silentLogger() });
    await expect(withFile.start(log.listener)).rejects.toThrow(`cannot load kubeconfig ${missing}`);

    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '');
    vi.stubEnv('KUBECONFIG', '');
    const inCluster = new KubernetesSource({ nodeName: OWN_NODE, log: silentLogger() });
    await expect(inCluster.start(log.listener)).rejects.toThrow(/not running in a cluster/);
  });

  it('loads @kubernetes/client-node nowhere but for plugin users (importing it costs about 64 MB of RSS)', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const root = join(import.meta.dirname, '../../../src');
    const offenders: string[] = [];
    for (const f of await readdir(root, { recursive: true })) {
      if (!f.endsWith('.ts') || f === join('sources', 'kube', 'plugin-connection.ts')) continue;
      const text = await readFile(join(root, f), 'utf8');
      // Type-only imports vanish at compile time; any other import or import() loads it.
      if (/^import (?!type )[^;]*from '@kubernetes\/client-node'|import\('@kubernetes\/client-node'\)/m.test(text)) offenders.push(f);
    }
    expect(offenders).toEqual([]);
  });
});
