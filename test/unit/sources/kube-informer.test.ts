// The informer (src/sources/kube/informer.ts) on its own: paginated lists,
// re-list semantics, and the failures the fake API server cannot script (a
// watch ERROR that is not 410, a server ending every watch at once).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectConnection } from '../../../src/sources/kube/connection.js';
import { Informer, type InformerHandlers } from '../../../src/sources/kube/informer.js';
import type { KubeObject } from '../../../src/sources/types.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { eventually } from './event-log.js';

const SERVICES = { path: '/api/v1/services' };
const TOKEN = 'fake-apiserver-token';

const svc = (name: string, port = 80): KubeObject => ({ metadata: { name, namespace: 'ns' }, spec: { ports: [{ port }] } });

/** What the informer delivered, as lines ("upsert ns/a 80", "delete ns/b", "listed"), and its failures. */
class Recorded implements InformerHandlers {
  readonly lines: string[] = [];
  readonly failures: string[] = [];
  keyOf(o: KubeObject): string | undefined {
    return o.metadata?.name ? `${o.metadata.namespace}/${o.metadata.name}` : undefined;
  }
  upsert(key: string, o: KubeObject): void {
    this.lines.push(`upsert ${key} ${(o.spec as { ports?: { port: number }[] } | undefined)?.ports?.[0]?.port}`);
  }
  remove(key: string): void {
    this.lines.push(`delete ${key}`);
  }
  nameless(): void {
    this.lines.push('nameless');
  }
  listed(): void {
    this.lines.push('listed');
  }
  failed(err: unknown): void {
    this.failures.push((err as Error).message);
  }
  malformed(problem: string): void {
    this.failures.push(problem);
  }
}

let conn: DirectConnection;
let informer: Informer | undefined;
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await informer?.stop();
  informer = undefined;
  conn?.close();
  for (const c of closers.splice(0)) await c();
});

function connectTo(url: string): DirectConnection {
  conn = new DirectConnection({ origin: 'test', cluster: { server: url, insecureSkipTlsVerify: true }, user: { header: { kind: 'token', token: TOKEN } } });
  return conn;
}

describe('Informer against the fake API server', () => {
  let fake: FakeApiServer;

  beforeEach(async () => {
    fake = await FakeApiServer.start();
    closers.push(() => fake.close());
  });

  it('lists in pages, delivers every object once, then watches from the list with bookmarks and a server timeout', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) fake.apply('Service', svc(n));
    const rec = new Recorded();
    informer = new Informer(connectTo(fake.url), SERVICES, rec, { retry: { initialMs: 20, maxMs: 200 }, pageSize: 2 });
    informer.start();
    await eventually(() => fake.openWatches('Service') === 1, 'the watch');
    expect(rec.lines).toEqual(['upsert ns/a 80', 'upsert ns/b 80', 'upsert ns/c 80', 'upsert ns/d 80', 'upsert ns/e 80', 'listed']);
    expect(fake.pages('Service').map((r) => [r.query.limit, r.query.continue !== undefined])).toEqual([['2', false], ['2', true], ['2', true]]);
    const watch = fake.requests.find((r) => r.watch)!;
    expect(watch.query).toMatchObject({ resourceVersion: String(fake.resourceVersion), allowWatchBookmarks: 'true' });
    expect(Number(watch.query.timeoutSeconds)).toBeGreaterThanOrEqual(300);
    expect(Number(watch.query.timeoutSeconds)).toBeLessThan(600);
  });

  it('a re-list (after 410 Gone) updates only what changed, with the whole object, and deletes what vanished', async () => {
    for (const n of ['a', 'b', 'c']) fake.apply('Service', svc(n));
    const rec = new Recorded();
    informer = new Informer(connectTo(fake.url), SERVICES, rec, { retry: { initialMs: 20, maxMs: 200 } });
    informer.start();
    await eventually(() => fake.openWatches('Service') === 1, 'the watch');
    rec.lines.length = 0;

    fake.dropWatches('end');
    fake.apply('Service', svc('b', 91));
    fake.delete('Service', 'ns/c');
    fake.compact();
    await eventually(() => rec.lines.includes('listed'), 'the re-list');
    expect(rec.lines).toEqual(['upsert ns/b 91', 'delete ns/c', 'listed']);
    expect(fake.lists('Service')).toHaveLength(2);
    expect(rec.failures).toEqual([]);
  });

  it('a continue token that expires between pages: the list is finished unpaginated, nothing deleted', async () => {
    for (const n of ['a', 'b', 'c', 'd']) fake.apply('Service', svc(n));
    const rec = new Recorded();
    // Compaction right after the first page is delivered.
    const compacting = Object.assign(rec, { upsert: (key: string, o: KubeObject) => {
      if (rec.lines.length === 0) fake.compact();
      Recorded.prototype.upsert.call(rec, key, o);
    } });
    informer = new Informer(connectTo(fake.url), SERVICES, compacting, { retry: { initialMs: 20, maxMs: 200 }, pageSize: 2 });
    informer.start();
    await eventually(() => rec.lines.includes('listed'), 'the list');
    expect(rec.lines).toEqual(['upsert ns/a 80', 'upsert ns/b 80', 'upsert ns/c 80', 'upsert ns/d 80', 'listed']);
    expect(fake.pages('Service').map((r) => [r.query.limit, r.query.continue !== undefined])).toEqual([['2', false], ['2', true], [undefined, false]]);
  });
});

/** A scripted API server: one list answer, then each watch request answered by the next function. */
async function scripted(watches: Array<(res: http.ServerResponse) => void>): Promise<{ url: string; watchQueries: URLSearchParams[]; lists: number }> {
  const state = { url: '', watchQueries: [] as URLSearchParams[], lists: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') !== 'true') {
      state.lists++;
      res.end(JSON.stringify({ kind: 'ServiceList', metadata: { resourceVersion: '5' }, items: [{ metadata: { name: 'a', namespace: 'ns', resourceVersion: '4' } }, { metadata: { namespace: 'ns' } }] }));
      return;
    }
    state.watchQueries.push(url.searchParams);
    const next = watches[Math.min(state.watchQueries.length - 1, watches.length - 1)]!;
    res.writeHead(200, { 'content-type': 'application/json' });
    next(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

const line = (ev: unknown) => JSON.stringify(ev) + '\n';

describe('Informer against a scripted server', () => {
  it('an ERROR event other than 410 is a failure: after the backoff the watch resumes from the last event, without re-listing', async () => {
    const srv = await scripted([
      (res) => {
        res.write(line({ type: 'ADDED', object: { metadata: { name: 'b', namespace: 'ns', resourceVersion: '6' } } }));
        res.end(line({ type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd is unhappy' } }));
      },
      () => undefined, // stays open
    ]);
    const rec = new Recorded();
    informer = new Informer(connectTo(srv.url), SERVICES, rec, { retry: { initialMs: 20, maxMs: 200 } });
    informer.start();
    await eventually(() => srv.watchQueries.length === 2, 'the second watch');
    expect(srv.watchQueries.map((q) => q.get('resourceVersion'))).toEqual(['5', '6']);
    expect(srv.lists).toBe(1);
    expect(rec.failures).toEqual([expect.stringContaining('etcd is unhappy')]);
    // The nameless item is reported, not delivered.
    expect(rec.lines).toEqual(['upsert ns/a undefined', 'nameless', 'listed', 'upsert ns/b undefined']);
  });

  it('a server that ends every watch at once is not hammered: the backoff grows', async () => {
    const srv = await scripted([(res) => res.end()]);
    informer = new Informer(connectTo(srv.url), SERVICES, new Recorded(), { retry: { initialMs: 50, maxMs: 10_000 } });
    informer.start();
    await eventually(() => srv.watchQueries.length >= 2, 'a resumed watch');
    await new Promise((r) => setTimeout(r, 1000));
    // 50 + 100 + 200 + 400 ms of backoff fit in a second: about 5 watches, where a loop without backoff makes hundreds.
    expect(srv.watchQueries.length).toBeLessThanOrEqual(8);
    // Every one resumed from the list, none re-listed.
    expect(srv.lists).toBe(1);
    expect(new Set(srv.watchQueries.map((q) => q.get('resourceVersion')))).toEqual(new Set(['5']));
  });

  it('a watch that is 410 Gone straight after its list re-lists after a backoff, not in a loop', async () => {
    const gone = line({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 5 (9)' } });
    const srv = await scripted([(res) => res.end(gone)]);
    const rec = new Recorded();
    informer = new Informer(connectTo(srv.url), SERVICES, rec, { retry: { initialMs: 50, maxMs: 10_000 } });
    informer.start();
    await eventually(() => srv.lists >= 2, 'a re-list');
    await new Promise((r) => setTimeout(r, 1000));
    // Without the backoff: a list and a watch every few milliseconds.
    expect(srv.lists).toBeLessThanOrEqual(8);
    expect(rec.failures[0]).toContain('too old resource version');
    // Each re-list finds the same object unchanged: delivered once.
    expect(rec.lines.filter((l) => l.startsWith('upsert'))).toEqual(['upsert ns/a undefined']);
  });

  it('stop() during a backoff ends the loop at once', async () => {
    const srv = await scripted([(res) => res.end()]);
    informer = new Informer(connectTo(srv.url), SERVICES, new Recorded(), { retry: { initialMs: 60_000, maxMs: 60_000 } });
    informer.start();
    await eventually(() => srv.watchQueries.length === 1, 'the first watch');
    const stopped = informer.stop();
    const result = await Promise.race([stopped.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting'), 5000))]);
    expect(result).toBe('stopped');
  });
});
