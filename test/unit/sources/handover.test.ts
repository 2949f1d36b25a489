import { ListWatch, type KubernetesListObject, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { HandOver } from '../../../src/sources/handover.js';
import type { KubeObject } from '../../../src/sources/types.js';

const svc = (name: string, rv: string, port: number): KubeObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, labels: { app: name } },
  spec: { ports: [{ port }] },
});

describe('HandOver', () => {
  it('gives a stub of the identity only, and its object back exactly once', () => {
    const h = new HandOver();
    const full = svc('a', '7', 80);
    const stub = h.stub(full);
    expect(stub).toEqual({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '7' } });
    expect(h.take(stub)).toBe(full);
    // Taken: the stub no longer leads to the object (ListWatch's cache keeps the stub).
    expect(h.take(stub)).toBe(stub);
  });

  it("keeps client-node's ListWatch semantics: re-lists update changed objects with the full object, delete vanished ones", async () => {
    const h = new HandOver();
    let items: KubeObject[] = [];
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> =>
      ({ metadata: { resourceVersion: '1' }, items: items.map((i) => h.stub(i)) }) as KubernetesListObject<KubernetesObject>;
    // A watch that only ever ends with 410 Gone, when the test says: then ListWatch re-lists.
    let gone: (err: unknown) => Promise<void> = async () => undefined;
    const watch = { watch: async (_p: string, _q: unknown, _e: unknown, done: (err: unknown) => Promise<void>) => {
      gone = done;
      return new AbortController();
    } } as unknown as Watch;
    const relist = () => gone({ statusCode: 410 });
    const lw = new ListWatch<KubernetesObject>('/api/v1/services', watch, list, false);
    const seen: string[] = [];
    lw.on('add', (o) => seen.push(`add ${portOf(h.take(o))}`));
    lw.on('update', (o) => seen.push(`update ${portOf(h.take(o))}`));
    lw.on('delete', (o) => seen.push(`delete ${o.metadata?.namespace}/${o.metadata?.name}`));

    items = [svc('a', '1', 80), svc('b', '1', 81)];
    await lw.start();
    expect(seen).toEqual(['add 80', 'add 81']);
    // ListWatch caches stubs only.
    expect(lw.list().every((o) => Object.keys(o).join() === 'metadata')).toBe(true);

    seen.length = 0;
    items = [svc('a', '1', 80), svc('b', '2', 91)];
    await relist();
    expect(seen).toEqual(['update 91']);

    seen.length = 0;
    items = [svc('b', '2', 91)];
    await relist();
    expect(seen).toEqual(['delete ns/a']);
    await lw.stop();
  });
});

function portOf(o: unknown): number | undefined {
  return (o as { spec?: { ports?: { port: number }[] } }).spec?.ports?.[0]?.port;
}
