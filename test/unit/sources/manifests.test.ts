import { mkdir, mkdtemp, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { silentLogger } from '../../../src/util/log.js';
import { ManifestSource } from '../../../src/sources/manifests.js';
import { HEADLESS_LABEL, SERVICE_PROXY_NAME_LABEL } from '../../../src/sources/selection.js';
import type { KubeObject, SourceEvent } from '../../../src/sources/types.js';
import { EventLog, expectNoLeaks, openHandles, isDelete, isUpsert, summary } from './event-log.js';

const service = (name: string, port = 80, labels?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, ...(labels && { labels }) },
  spec: { clusterIP: '10.96.0.10', ports: [{ port, protocol: 'TCP' }] },
});

const slice = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'a', ...labels } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.1.5'] }],
  ports: [{ port: 8080 }],
});

const node = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] },
});

const yaml = (...docs: unknown[]): string => docs.map((d) => stringify(d)).join('---\n');

const servicePort = (obj: KubeObject | undefined): unknown => (obj?.spec as { ports: Array<{ port: number }> } | undefined)?.ports[0]?.port;

const portOf = (ev: SourceEvent): unknown => (ev.type === 'upsert' ? servicePort(ev.object) : undefined);

const isUpsertWithPort = (key: string, port: number) => (ev: SourceEvent) =>
  isUpsert('Service', key)(ev) && portOf(ev) === port;

const isInvalidAt = (origin: string) => (ev: SourceEvent) => ev.type === 'invalid' && ev.origin === origin;

let dir: string;
let log: EventLog;
let handlesBefore: Record<string, number>;
let source: ManifestSource | undefined;

beforeEach(async () => {
  handlesBefore = openHandles();
  dir = await mkdtemp(join(tmpdir(), 'bpfproxy-manifests-'));
  log = new EventLog();
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
  await rm(dir, { recursive: true, force: true });
  await expectNoLeaks(handlesBefore);
});

/** A long rescan interval unless asked: changes must then be noticed through the directory watch. */
async function start(rescanIntervalMs = 60_000): Promise<ManifestSource> {
  source = new ManifestSource({ dir, log: silentLogger(), rescanIntervalMs });
  await source.start(log.listener);
  return source;
}

describe('ManifestSource', () => {
  it('delivers every object of the initial scan, then one synced', async () => {
    await writeFile(join(dir, 'app.yaml'), yaml(service('a'), slice('a-1')));
    await writeFile(join(dir, 'node.json'), JSON.stringify(node('n1')));
    await writeFile(join(dir, 'notes.txt'), 'not a manifest');
    await writeFile(join(dir, '.hidden.yaml'), yaml(service('hidden')));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'inner.yaml'), yaml(service('inner')));
    await mkdir(join(dir, 'dir.yaml'));

    const src = await start();
    expect(log.events.map(summary)).toEqual([
      'upsert Service default/a',
      'upsert EndpointSlice default/a-1',
      'upsert Node n1',
      'synced',
    ]);
    const a = log.events[0]!;
    expect(a.type === 'upsert' && a.origin).toBe(join(dir, 'app.yaml#0'));
    expect(a.type === 'upsert' && a.object.metadata?.namespace).toBe('default');

    await src.rescan();
    expect(log.events.filter((e) => e.type === 'synced')).toHaveLength(1);
    expect(log.events).toHaveLength(4);
  });

  it('follows files created, modified, renamed into place and deleted', async () => {
    await start();
    const path = join(dir, 'a.yaml');

    await writeFile(path, yaml(service('a', 80)));
    await log.next(isUpsertWithPort('default/a', 80), 'a created');

    await writeFile(path, yaml(service('a', 81)));
    await log.next(isUpsertWithPort('default/a', 81), 'a modified in place');

    // An editor's or a deploy tool's atomic write: a temporary file renamed over the old one.
    await writeFile(`${path}.tmp`, yaml(service('a', 82)));
    await rename(`${path}.tmp`, path);
    await log.next(isUpsertWithPort('default/a', 82), 'a replaced by rename');

    await writeFile(join(dir, '.b.yaml.swp'), yaml(service('b')));
    await rename(join(dir, '.b.yaml.swp'), join(dir, 'b.yaml'));
    await log.next(isUpsert('Service', 'default/b'), 'b renamed into place');

    await unlink(path);
    await log.next(isDelete('Service', 'default/a'), 'a deleted');
    expect(log.state().has('Service default/b')).toBe(true);
    expect(log.events.filter((e) => e.type === 'upsert' && e.origin.includes('.swp'))).toEqual([]);
  });

  it('deletes only the object whose document was removed from a multi-document file', async () => {
    const path = join(dir, 'multi.yaml');
    await writeFile(path, yaml(service('a'), service('b'), node('n1')));
    await start();
    const m = log.mark();

    await writeFile(path, yaml(service('a'), node('n1')));
    await log.next(isDelete('Service', 'default/b'), 'b deleted');
    await source!.rescan();
    expect(log.since(m).map(summary)).toEqual(['delete Service default/b']);
  });

  it('emits nothing when a file is rewritten with the same objects', async () => {
    const path = join(dir, 'a.yaml');
    await writeFile(path, yaml(service('a'), node('n1')));
    const src = await start();
    const m = log.mark();

    await writeFile(path, yaml(service('a'), node('n1')));
    await utimes(path, new Date(), new Date(Date.now() + 10_000));
    await src.rescan();
    // Same objects, different text: key order, flow style, a comment.
    await writeFile(path, `# rewritten\n${JSON.stringify(node('n1'))}\n---\n${yaml(service('a'))}`);
    await src.rescan();
    expect(log.since(m).map(summary)).toEqual([]);
  });

  it('keeps the objects of a file that stops parsing, reports it once, and converges once it is fixed', async () => {
    const path = join(dir, 'a.yaml');
    await writeFile(path, yaml(service('a', 80), service('b', 80)));
    const src = await start();
    const m = log.mark();

    const broken = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: [oops\n';
    await writeFile(path, broken);
    const invalid = await log.next(isInvalidAt(path), 'the parse error', m);
    expect(invalid.type === 'invalid' && invalid.reason).toMatch(/does not parse: .*line \d+, column \d+/);

    // Re-read (new mtime), same problem: not reported again, still no deletes.
    await writeFile(path, broken);
    await utimes(path, new Date(), new Date(Date.now() + 10_000));
    await src.rescan();
    await src.rescan();
    expect(log.since(m).map(summary)).toEqual([summary(invalid)]);

    await writeFile(path, yaml(service('a', 81)));
    await log.next(isDelete('Service', 'default/b'), 'b deleted once the file parses', m);
    await log.next(isUpsertWithPort('default/a', 81), 'a updated once the file parses', m);
    await src.rescan();
    expect(log.since(m).map(summary).sort()).toEqual(
      [summary(invalid), 'delete Service default/b', 'upsert Service default/a'].sort(),
    );
  });

  it('reports documents it cannot use by file and document index, and uses the rest of the file', async () => {
    const path = join(dir, 'mixed.yaml');
    const text = [
      stringify(service('a')),
      stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' } }),
      '# an empty document\n',
      stringify({ ...service('c'), apiVersion: 'v2' }),
      stringify({ apiVersion: 'v1', kind: 'Service', metadata: {} }),
      stringify({ apiVersion: 'v1', kind: 'List', items: [service('l1'), node('n1')] }),
    ].join('---\n');
    await writeFile(path, text);
    await start();

    const invalid = log.events.filter((e) => e.type === 'invalid');
    expect(invalid).toEqual([
      expect.objectContaining({ origin: `${path}#1`, kind: 'ConfigMap', key: 'cfg', reason: expect.stringMatching(/unknown kind "ConfigMap"/) }),
      expect.objectContaining({ origin: `${path}#3`, kind: 'Service', key: 'default/c', reason: expect.stringMatching(/apiVersion is "v2", expected "v1"/) }),
      expect.objectContaining({ origin: `${path}#4`, kind: 'Service', reason: expect.stringMatching(/metadata.name/) }),
    ]);
    const upserts = log.events.filter((e) => e.type === 'upsert');
    expect(upserts.map((e) => e.type === 'upsert' && [e.key, e.origin])).toEqual([
      ['default/a', `${path}#0`],
      ['default/l1', `${path}#5.items[0]`],
      ['n1', `${path}#5.items[1]`],
    ]);
  });

  it('keeps the last good object when its document gets a wrong apiVersion', async () => {
    const path = join(dir, 'a.yaml');
    await writeFile(path, yaml(service('a', 80)));
    await start();
    const m = log.mark();

    await writeFile(path, yaml({ ...service('a', 81), apiVersion: 'v2' }));
    await log.next(isInvalidAt(`${path}#0`), 'the apiVersion problem', m);
    await source!.rescan();
    expect(log.since(m).map((e) => e.type)).toEqual(['invalid']);
    expect(servicePort(log.state().get('Service default/a'))).toBe(80);
  });

  it('lets the first path win a duplicate definition, reports the other once, and falls back to it', async () => {
    const first = join(dir, 'a.yaml');
    const second = join(dir, 'b.yaml');
    await writeFile(first, yaml(service('x', 80)));
    await writeFile(second, yaml(service('x', 81)));
    const src = await start();

    expect(log.events.filter((e) => e.type === 'upsert').map(portOf)).toEqual([80]);
    const dup = log.events.filter((e) => e.type === 'invalid');
    expect(dup).toEqual([
      expect.objectContaining({ origin: `${second}#0`, kind: 'Service', key: 'default/x', reason: expect.stringContaining(`also defined in ${first}#0`) }),
    ]);

    const m = log.mark();
    await utimes(second, new Date(), new Date(Date.now() + 10_000));
    await src.rescan();
    expect(log.since(m)).toEqual([]);

    await unlink(first);
    await log.next(isUpsertWithPort('default/x', 81), 'the other definition taking over', m);
    await src.rescan();
    expect(log.since(m).map(summary)).toEqual(['upsert Service default/x']);
  });

  it('serves only what kube-proxy would: service-proxy-name and headless labels hide objects', async () => {
    const path = join(dir, 'a.yaml');
    await writeFile(
      path,
      yaml(service('plain'), service('claimed', 80, { [SERVICE_PROXY_NAME_LABEL]: 'other-proxy' }), slice('a-1', { [HEADLESS_LABEL]: '' })),
    );
    await start();
    expect(log.events.map(summary)).toEqual(['upsert Service default/plain', 'synced']);
    const m = log.mark();

    // plain gets claimed by another proxy, claimed is released: like a watch, a delete and an add.
    await writeFile(path, yaml(service('plain', 80, { [SERVICE_PROXY_NAME_LABEL]: 'x' }), service('claimed'), slice('a-1', { [HEADLESS_LABEL]: '' })));
    await log.next(isDelete('Service', 'default/plain'), 'plain hidden', m);
    await log.next(isUpsert('Service', 'default/claimed'), 'claimed shown', m);
    await source!.rescan();
    expect(log.since(m)).toHaveLength(2);
  });

  it('works on a ConfigMap volume, including its atomic ..data swap', async () => {
    // What the kubelet builds: a timestamped directory, "..data" pointing at it,
    // and one symlink per key through "..data".
    await mkdir(join(dir, '..2024_05_01_10_00_00.1'));
    await writeFile(join(dir, '..2024_05_01_10_00_00.1', 'svc.yaml'), yaml(service('cm', 80)));
    await symlink('..2024_05_01_10_00_00.1', join(dir, '..data'));
    await symlink('..data/svc.yaml', join(dir, 'svc.yaml'));
    await start();
    expect(log.events.map(summary)).toEqual(['upsert Service default/cm', 'synced']);

    // An update adds a key and changes one: new directory, "..data_tmp" renamed over "..data".
    await mkdir(join(dir, '..2024_05_01_10_05_00.2'));
    await writeFile(join(dir, '..2024_05_01_10_05_00.2', 'svc.yaml'), yaml(service('cm', 81)));
    await writeFile(join(dir, '..2024_05_01_10_05_00.2', 'eps.yaml'), yaml(slice('cm-1')));
    await symlink('..2024_05_01_10_05_00.2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await symlink('..data/eps.yaml', join(dir, 'eps.yaml'));
    await rm(join(dir, '..2024_05_01_10_00_00.1'), { recursive: true });
    await log.next(isUpsertWithPort('default/cm', 81), 'the changed key');
    await log.next(isUpsert('EndpointSlice', 'default/cm-1'), 'the added key');

    // The key is removed again.
    await mkdir(join(dir, '..2024_05_01_10_10_00.3'));
    await writeFile(join(dir, '..2024_05_01_10_10_00.3', 'svc.yaml'), yaml(service('cm', 81)));
    await symlink('..2024_05_01_10_10_00.3', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await unlink(join(dir, 'eps.yaml'));
    await rm(join(dir, '..2024_05_01_10_05_00.2'), { recursive: true });
    await log.next(isDelete('EndpointSlice', 'default/cm-1'), 'the removed key');
    expect(log.events.filter((e) => e.type === 'invalid')).toEqual([]);
  });

  it('notices through the periodic rescan what the directory watch cannot see', async () => {
    // A symlink to a file elsewhere: writes to the target raise no event in the watched directory.
    const elsewhere = await mkdtemp(join(tmpdir(), 'bpfproxy-manifests-target-'));
    try {
      await writeFile(join(elsewhere, 'svc.yaml'), yaml(service('far', 80)));
      await symlink(join(elsewhere, 'svc.yaml'), join(dir, 'far.yaml'));
      await start(50);
      await writeFile(join(elsewhere, 'svc.yaml'), yaml(service('far', 81)));
      await log.next(isUpsertWithPort('default/far', 81), 'the change behind the symlink');
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses to start on a missing directory, naming it', async () => {
    const missing = join(dir, 'nope');
    const src = new ManifestSource({ dir: missing, log: silentLogger() });
    await expect(src.start(log.listener)).rejects.toThrow(missing);
    await src.stop();
  });

  it('stops idempotently and emits nothing afterwards', async () => {
    const src = await start(20);
    await src.stop();
    await src.stop();
    const m = log.mark();
    await writeFile(join(dir, 'late.yaml'), yaml(service('late')));
    await src.rescan();
    expect(log.since(m)).toEqual([]);
  });
});
