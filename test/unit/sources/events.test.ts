// The Event recorder on a fake clock with a sink that records what it is
// sent: repeats become one Event's series, writes are paced, the queue is
// bounded, and record() never waits for the API server.
import { describe, expect, it } from 'vitest';
import { EventRecorder, fitNote, microTime, NOTE_MAX_BYTES, SERIES_WINDOW_MS, type EventBody, type EventObject, type EventSeries, type EventSink, type ObjectIdentity } from '../../../src/sources/events.js';
import { FakeClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';

class MemorySink implements EventSink {
  readonly created: EventBody[] = [];
  readonly patches: { name: string; series: EventSeries }[] = [];
  /** Objects that exist, by kind/namespace/name. */
  readonly objects = new Map<string, ObjectIdentity>();
  /** Event names the server has forgotten (TTL). */
  readonly expired = new Set<string>();
  /** While set, every request waits for it. */
  gate: Promise<void> | null = null;
  failCreate = false;

  async lookup(o: EventObject) {
    await this.gate;
    return this.objects.get(`${o.kind}/${o.namespace ?? ''}/${o.name}`) ?? null;
  }
  async create(e: EventBody) {
    await this.gate;
    if (this.failCreate) throw Object.assign(new Error('boom'), { status: 500 });
    this.created.push(structuredClone(e));
  }
  async patchSeries(_ns: string, name: string, series: EventSeries) {
    await this.gate;
    if (this.expired.has(name)) throw Object.assign(new Error('gone'), { status: 404 });
    this.patches.push({ name, series });
  }
  /** The count the server shows for an Event. */
  countOf(name: string): number {
    const last = this.patches.filter((p) => p.name === name).at(-1);
    return last?.series.count ?? this.created.find((e) => e.metadata.name === name)?.series?.count ?? 1;
  }
}

const svc = (name: string): EventObject => ({ kind: 'Service', namespace: 'default', name });
const rejected = (note = 'spec.ports[0].port: Invalid value: 70000') => ({ type: 'Warning' as const, reason: 'FailedToProgram', action: 'Program', note });

function setup(tuning: Partial<ConstructorParameters<typeof EventRecorder>[0]> = {}) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 0, 0));
  const sink = new MemorySink();
  for (const n of ['a', 'b', 'c', 'd', 'e']) sink.objects.set(`Service/default/${n}`, { uid: `uid-${n}`, resourceVersion: '7' });
  const rec = new EventRecorder({ controller: 'bpfproxy', instance: 'node-1', sink, clock, log: silentLogger(), patchIntervalMs: 10_000, ...tuning });
  return { clock, sink, rec };
}

describe('EventRecorder', () => {
  it('posts one Event on the object, with its uid, the reason and who reported it', async () => {
    const { clock, sink, rec } = setup();
    rec.record(svc('a'), rejected());
    await clock.advance(0);
    expect(sink.created).toHaveLength(1);
    const e = sink.created[0]!;
    expect(e).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      metadata: { namespace: 'default' },
      type: 'Warning',
      reason: 'FailedToProgram',
      action: 'Program',
      note: 'spec.ports[0].port: Invalid value: 70000',
      reportingController: 'bpfproxy',
      reportingInstance: 'node-1',
      regarding: { apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'a', uid: 'uid-a', resourceVersion: '7' },
    });
    expect(e.metadata.name).toMatch(/^a\.[0-9a-f]+$/);
    expect(e.series).toBeUndefined();
    expect(e.eventTime).toBe('2026-01-01T10:00:00.000000Z');
    await rec.stop();
  });

  it('counts repeats into one series, patched at most once per interval', async () => {
    const { clock, sink, rec } = setup();
    rec.record(svc('a'), rejected());
    await clock.advance(0);
    for (let i = 0; i < 500; i++) {
      rec.record(svc('a'), rejected());
      await clock.advance(100); // 50 s in all
    }
    await clock.advance(10_000);
    expect(sink.created).toHaveLength(1);
    // 50 s of repeats at one patch per 10 s: about five patches, not 500.
    expect(sink.patches.length).toBeGreaterThanOrEqual(4);
    expect(sink.patches.length).toBeLessThanOrEqual(6);
    expect(sink.countOf(sink.created[0]!.metadata.name)).toBe(501);
    await rec.stop();
  });

  it('another reason, another object, or a repeat after the series window makes a new Event', async () => {
    const { clock, sink, rec } = setup();
    rec.record(svc('a'), rejected('x'));
    rec.record(svc('a'), rejected('y'));
    rec.record(svc('b'), rejected('x'));
    await clock.advance(0);
    expect(sink.created.map((e) => `${e.regarding.name}:${e.note}`).sort()).toEqual(['a:x', 'a:y', 'b:x']);
    await clock.advance(SERIES_WINDOW_MS + 1);
    rec.record(svc('a'), rejected('x'));
    await clock.advance(0);
    expect(sink.created).toHaveLength(4);
    expect(sink.patches).toHaveLength(0);
    await rec.stop();
  });

  it('paces writes with a token bucket and never waits in record()', async () => {
    const { clock, sink, rec } = setup({ burst: 3, refillMs: 1000 });
    let release!: () => void;
    sink.gate = new Promise((r) => (release = r));
    const t = performance.now();
    for (const n of ['a', 'b', 'c', 'd', 'e']) rec.record(svc(n), rejected());
    expect(performance.now() - t).toBeLessThan(1000); // synchronous, with the sink stalled
    release();
    sink.gate = null;
    await clock.advance(0);
    expect(sink.created).toHaveLength(3); // the burst
    await clock.advance(1000);
    expect(sink.created).toHaveLength(4);
    await clock.advance(1000);
    expect(sink.created).toHaveLength(5);
    await rec.stop();
  });

  it('drops what does not fit in the queue, and counts it', async () => {
    const { clock, sink, rec } = setup({ maxQueued: 2, burst: 1, refillMs: 60_000 });
    for (const n of ['a', 'b', 'c', 'd', 'e']) rec.record(svc(n), rejected());
    expect(rec.stats.dropped).toBe(3);
    await clock.advance(0);
    expect(sink.created.map((e) => e.regarding.name)).toEqual(['a']);
    await clock.advance(60_000);
    expect(sink.created.map((e) => e.regarding.name)).toEqual(['a', 'b']);
    await rec.stop();
  });

  it('starts a new Event when the old one expired on the server', async () => {
    const { clock, sink, rec } = setup();
    rec.record(svc('a'), rejected());
    await clock.advance(0);
    sink.expired.add(sink.created[0]!.metadata.name);
    rec.record(svc('a'), rejected());
    await clock.advance(10_000);
    expect(sink.created).toHaveLength(2);
    expect(sink.created[1]!.series?.count).toBe(2);
    await rec.stop();
  });

  it('posts nothing about an object that is gone, and retries a failed create on the next occurrence', async () => {
    const { clock, sink, rec } = setup();
    rec.record(svc('nobody'), rejected());
    await clock.advance(0);
    expect(sink.created).toHaveLength(0);
    sink.failCreate = true;
    rec.record(svc('a'), rejected());
    await clock.advance(0);
    expect(rec.stats.dropped).toBe(1);
    sink.failCreate = false;
    rec.record(svc('a'), rejected());
    await clock.advance(0);
    expect(sink.created).toHaveLength(1);
    await rec.stop();
  });

  it('writes nothing after stop()', async () => {
    const { clock, sink, rec } = setup({ burst: 1, refillMs: 1000 });
    rec.record(svc('a'), rejected());
    rec.record(svc('b'), rejected());
    await rec.stop();
    rec.record(svc('c'), rejected());
    await clock.advance(5000);
    expect(sink.created.length).toBeLessThanOrEqual(1);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('Event fields the API server checks', () => {
  it('MicroTime has six fractional digits', () => {
    expect(microTime(Date.UTC(2026, 0, 1) + 1.5)).toBe('2026-01-01T00:00:00.001500Z');
  });

  it('a long note is clipped as log lines are, within the byte limit', () => {
    const note = fitNote('é'.repeat(5000));
    expect(Buffer.byteLength(note)).toBeLessThanOrEqual(NOTE_MAX_BYTES);
    expect(note).toMatch(/more characters\]$/);
  });
});

describe('ApiEventSink', () => {
  it('stop() ends a request the API server never answers, instead of waiting out its timeout', async () => {
    const { createServer } = await import('node:http');
    const { DirectConnection } = await import('../../../src/sources/kube/connection.js');
    const { ApiEventSink } = await import('../../../src/sources/event-sink.js');
    let arrived!: () => void;
    const requestArrived = new Promise<void>((r) => (arrived = r));
    const server = createServer(() => arrived()); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const conn = new DirectConnection({ origin: 'test', cluster: { server: `http://127.0.0.1:${port}`, insecureSkipTlsVerify: true }, user: { header: { kind: 'none' } } });
    const rec = new EventRecorder({ controller: 'bpfproxy', instance: 'n', sink: new ApiEventSink(conn), log: silentLogger() });
    try {
      rec.record(svc('a'), rejected());
      await requestArrived;
      const t = performance.now();
      await rec.stop();
      expect(performance.now() - t).toBeLessThan(5000); // the request timeout is 10 s
    } finally {
      conn.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
