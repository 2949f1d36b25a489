// An in-process Kubernetes API server for the three collections the proxy
// watches, speaking the real list/watch protocol over plain HTTP on 127.0.0.1:
// - list: {kind: XList, apiVersion, metadata: {resourceVersion}, items}, with
//   labelSelector (key, !key, key=value, key!=value) and fieldSelector
//   (metadata.name=, metadata.namespace=); with `limit`, in pages of a
//   snapshot taken at the first page (metadata.continue names the rest), as
//   etcd serves them; compaction expires the continue tokens (410);
// - watch: newline-delimited JSON events ADDED/MODIFIED/DELETED (and BOOKMARK
//   when allowWatchBookmarks=true) with increasing resourceVersions, replayed
//   from the requested resourceVersion; an object that starts or stops
//   matching the selector shows up as ADDED or DELETED, as on a real server;
//   a resourceVersion older than the compaction point gets an ERROR event
//   carrying a 410 Status, then the stream ends.
// - GET of one object, and events.k8s.io/v1 Events created and patched
//   (fake-events.ts), for the recorder of rejected objects.
// The test mutates objects, compacts, drops watch connections, holds lists,
// makes the server fail, and counts open connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { objectKey, type KubeObject, type ObjectKind } from '../../src/sources/types.js';
import { FakeEvents } from './fake-events.js';

interface Resource {
  kind: ObjectKind;
  path: string;
  apiVersion: string;
}

export const RESOURCES: readonly Resource[] = [
  { kind: 'Service', path: '/api/v1/services', apiVersion: 'v1' },
  { kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices', apiVersion: 'discovery.k8s.io/v1' },
  { kind: 'Node', path: '/api/v1/nodes', apiVersion: 'v1' },
];

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface StoredEvent {
  rv: number;
  type: WatchEventType;
  object: KubeObject;
  /** The object before a MODIFIED, to tell selector transitions. */
  previous?: KubeObject;
}

interface OpenWatch {
  resource: Resource;
  matches: (o: KubeObject) => boolean;
  bookmarks: boolean;
  res: ServerResponse;
}

export interface RecordedRequest {
  kind: ObjectKind;
  watch: boolean;
  query: Record<string, string>;
}

const TOKEN = 'fake-apiserver-token';
const COMMA = Buffer.from(',');
const CLOSE_ITEMS = Buffer.from(']}');

export class FakeApiServer {
  /** Every list and watch request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** events.k8s.io/v1 Events posted and patched (fake-events.ts). */
  readonly events = new FakeEvents();
  private rv = 100;
  private compactedRV = 0;
  private readonly objects = new Map<ObjectKind, Map<string, KubeObject>>();
  /**
   * Each stored object as UTF-8 JSON, encoded once when it is applied: a list
   * body is then a concatenation of bytes. Serializing a list of 30,000
   * EndpointSlices of 10 endpoints (31 MB) and encoding it took about 1 s
   * here; the concatenation takes a few ms.
   */
  private readonly serialized = new Map<ObjectKind, Map<string, Buffer>>();
  private readonly history = new Map<ObjectKind, StoredEvent[]>();
  private readonly watches = new Set<OpenWatch>();
  private readonly sockets = new Set<Socket>();
  private readonly heldLists = new Map<ObjectKind, Promise<void>>();
  private readonly heldWatches = new Map<ObjectKind, Promise<void>>();
  private failStatus: number | undefined;
  /** The rest of each paginated list, by continue token: its resourceVersion and the items not yet sent. */
  private readonly continuations = new Map<string, { rv: number; items: Buffer[] }>();
  private nextContinue = 0;

  private constructor(private readonly server: Server) {
    for (const r of RESOURCES) {
      this.objects.set(r.kind, new Map());
      this.serialized.set(r.kind, new Map());
      this.history.set(r.kind, []);
    }
  }

  static async start(): Promise<FakeApiServer> {
    let fake: FakeApiServer | undefined;
    const server = createServer((req, res) => void fake!.handle(req, res));
    fake = new FakeApiServer(server);
    server.on('connection', (s) => {
      fake!.sockets.add(s);
      s.on('close', () => fake!.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get url(): string {
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('fake apiserver: not listening');
    return `http://127.0.0.1:${addr.port}`;
  }

  /** Writes a kubeconfig for this server (plain http, so TLS verification is off) and returns its path. */
  async writeKubeconfig(dir: string): Promise<string> {
    const path = join(dir, 'kubeconfig');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: TOKEN } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    };
    await writeFile(path, JSON.stringify(config, null, 2));
    return path;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Creates or replaces an object; returns the stored copy (with its resourceVersion). */
  apply(kind: ObjectKind, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.apiVersion ??= resourceOf(kind).apiVersion;
    stored.kind ??= kind;
    stored.metadata = { ...stored.metadata };
    if (kind !== 'Node') stored.metadata.namespace ??= 'default';
    const key = objectKey(kind, stored);
    if (!key) throw new Error(`fake apiserver: ${kind} without metadata.name`);
    const previous = this.objects.get(kind)!.get(key);
    stored.metadata.uid = previous?.metadata?.uid ?? `uid-${kind}-${key}`;
    stored.metadata.creationTimestamp = previous?.metadata?.creationTimestamp ?? '2024-05-01T10:00:00Z';
    stored.metadata.resourceVersion = String(++this.rv);
    this.objects.get(kind)!.set(key, stored);
    this.serialized.get(kind)!.set(key, Buffer.from(JSON.stringify(stored)));
    this.record(kind, previous ? { rv: this.rv, type: 'MODIFIED', object: stored, previous } : { rv: this.rv, type: 'ADDED', object: stored });
    return stored;
  }

  delete(kind: ObjectKind, key: string): void {
    const previous = this.objects.get(kind)!.get(key);
    if (!previous) throw new Error(`fake apiserver: no ${kind} ${key} to delete`);
    this.objects.get(kind)!.delete(key);
    this.serialized.get(kind)!.delete(key);
    const gone = structuredClone(previous);
    gone.metadata!.resourceVersion = String(++this.rv);
    this.record(kind, { rv: this.rv, type: 'DELETED', object: gone });
  }

  /** Sends a BOOKMARK at the current resourceVersion on every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      send(w.res, {
        type: 'BOOKMARK',
        object: { kind: w.resource.kind, apiVersion: w.resource.apiVersion, metadata: { resourceVersion: String(this.rv) } },
      });
    }
  }

  /** Forgets the event history: a watch from an older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.compactedRV = this.rv;
    for (const events of this.history.values()) events.length = 0;
    this.continuations.clear();
  }

  /**
   * Ends every open watch, cleanly (the stream ends, as when the server's
   * watch timeout expires) or abruptly (the connection is reset). Returns how
   * many there were.
   */
  dropWatches(how: 'end' | 'reset'): number {
    const n = this.watches.size;
    for (const w of this.watches) {
      if (how === 'end') w.res.end();
      else w.res.socket?.destroy();
    }
    this.watches.clear();
    return n;
  }

  /** Makes list requests for `kind` wait (no response yet) until the returned function is called. */
  holdLists(kind: ObjectKind): () => void {
    return hold(this.heldLists, kind);
  }

  /** Makes watch requests for `kind` wait before sending their response headers until the returned function is called. */
  holdWatches(kind: ObjectKind): () => void {
    return hold(this.heldWatches, kind);
  }

  /** Answers every request with this status (e.g. 503) until called with undefined. */
  failRequests(status: number | undefined): void {
    this.failStatus = status;
  }

  openConnections(): number {
    return this.sockets.size;
  }

  openWatches(kind?: ObjectKind): number {
    return [...this.watches].filter((w) => !kind || w.resource.kind === kind).length;
  }

  /** The lists of `kind` started (first pages; a list's further pages carry `continue`). */
  lists(kind: ObjectKind): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind && !r.watch && r.query.continue === undefined);
  }

  /** Every list page of `kind` requested. */
  pages(kind: ObjectKind): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind && !r.watch);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(kind: ObjectKind, ev: StoredEvent): void {
    this.history.get(kind)!.push(ev);
    for (const w of this.watches) if (w.resource.kind === kind) this.deliver(w, ev);
  }

  private deliver(w: OpenWatch, ev: StoredEvent): void {
    const now = w.matches(ev.object);
    if (ev.type === 'ADDED') {
      if (now) send(w.res, { type: 'ADDED', object: ev.object });
    } else if (ev.type === 'DELETED') {
      if (now) send(w.res, { type: 'DELETED', object: ev.object });
    } else {
      const before = ev.previous !== undefined && w.matches(ev.previous);
      if (before && now) send(w.res, { type: 'MODIFIED', object: ev.object });
      else if (!before && now) send(w.res, { type: 'ADDED', object: ev.object });
      else if (before && !now) send(w.res, { type: 'DELETED', object: ev.object });
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const resource = RESOURCES.find((r) => r.path === url.pathname);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return status(res, 401, 'Unauthorized', 'missing or wrong bearer token');
    if (!resource && this.failStatus !== undefined) return status(res, this.failStatus, 'ServiceUnavailable', 'fake apiserver told to fail');
    if (this.events.handles(req, url.pathname, res)) return;
    const one = req.method === 'GET' && !resource ? this.getOne(url.pathname) : undefined;
    if (one) return one === 'missing' ? status(res, 404, 'NotFound', `${url.pathname} not found`) : sendJson(res, one);
    if (req.method !== 'GET' || !resource) return status(res, 404, 'NotFound', `no route for ${req.method} ${url.pathname}`);
    const query = Object.fromEntries(url.searchParams);
    const isWatch = query.watch === 'true' || query.watch === '1';
    this.requests.push({ kind: resource.kind, watch: isWatch, query });
    if (this.failStatus !== undefined) return status(res, this.failStatus, 'ServiceUnavailable', 'fake apiserver told to fail');
    let matches: (o: KubeObject) => boolean;
    try {
      matches = selectorMatcher(query.labelSelector ?? '', query.fieldSelector ?? '');
    } catch (err) {
      return status(res, 400, 'BadRequest', (err as Error).message);
    }
    if (isWatch) {
      await this.heldWatches.get(resource.kind);
      if (res.destroyed) return;
      return this.watch(resource, query, matches, res);
    }
    await this.heldLists.get(resource.kind);
    if (res.destroyed) return;
    let rv = this.rv;
    let items: Buffer[];
    if (query.continue !== undefined) {
      const rest = this.continuations.get(query.continue);
      this.continuations.delete(query.continue);
      if (!rest) return status(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
      ({ rv, items } = rest);
    } else {
      const json = this.serialized.get(resource.kind)!;
      items = [];
      for (const [key, o] of this.objects.get(resource.kind)!) if (matches(o)) items.push(json.get(key)!);
    }
    const limit = Number(query.limit ?? 0);
    let token: string | undefined;
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      token = `c${++this.nextContinue}`;
      this.continuations.set(token, { rv, items: items.slice(limit) });
      items = items.slice(0, limit);
    }
    const head = JSON.stringify({ kind: `${resource.kind}List`, apiVersion: resource.apiVersion, metadata: { resourceVersion: String(rv), ...(token && { continue: token }) } });
    const body: Buffer[] = [Buffer.from(`${head.slice(0, -1)},"items":[`)];
    for (const item of items) {
      if (body.length > 1) body.push(COMMA);
      body.push(item);
    }
    body.push(CLOSE_ITEMS);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(Buffer.concat(body));
  }

  /** GET of one object (/api/v1/namespaces/NS/services/NAME, ...): the object, 'missing', or undefined for another path. */
  private getOne(path: string): KubeObject | 'missing' | undefined {
    for (const r of RESOURCES) {
      const base = r.path.slice(0, r.path.lastIndexOf('/'));
      const plural = r.path.slice(r.path.lastIndexOf('/') + 1);
      const m = r.kind === 'Node'
        ? new RegExp(`^${base}/${plural}/([^/]+)$`).exec(path)
        : new RegExp(`^${base}/namespaces/([^/]+)/${plural}/([^/]+)$`).exec(path);
      if (!m) continue;
      const key = r.kind === 'Node' ? decodeURIComponent(m[1]!) : `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
      return this.objects.get(r.kind)!.get(key) ?? 'missing';
    }
    return undefined;
  }

  private watch(resource: Resource, query: Record<string, string>, matches: (o: KubeObject) => boolean, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const from = query.resourceVersion ?? '';
    const w: OpenWatch = { resource, matches, bookmarks: query.allowWatchBookmarks === 'true', res };
    if (from === '' || from === '0') {
      // "Any version": the current state as ADDED events, then changes.
      for (const o of this.objects.get(resource.kind)!.values()) if (matches(o)) send(res, { type: 'ADDED', object: o });
    } else {
      const rv = Number(from);
      if (!Number.isInteger(rv) || rv < this.compactedRV) {
        send(res, {
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `too old resource version: ${from} (${this.compactedRV})`,
            reason: 'Expired',
            code: 410,
          },
        });
        res.end();
        return;
      }
      for (const ev of this.history.get(resource.kind)!) if (ev.rv > rv) this.deliver(w, ev);
    }
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
  }
}

function hold(holds: Map<ObjectKind, Promise<void>>, kind: ObjectKind): () => void {
  let release!: () => void;
  holds.set(kind, new Promise<void>((resolve) => (release = resolve)));
  return () => {
    holds.delete(kind);
    release();
  };
}

function resourceOf(kind: ObjectKind): Resource {
  return RESOURCES.find((r) => r.kind === kind)!;
}

function send(res: ServerResponse, event: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}

/** Equality-based label requirements and metadata field selectors, as the API server parses them. */
function selectorMatcher(labelSelector: string, fieldSelector: string): (o: KubeObject) => boolean {
  const tests: Array<(o: KubeObject) => boolean> = [];
  for (const req of splitSelector(labelSelector)) {
    const labels = (o: KubeObject) => o.metadata?.labels ?? {};
    let m: RegExpExecArray | null;
    if ((m = /^!([^=!]+)$/.exec(req))) {
      const key = m[1]!;
      tests.push((o) => !Object.hasOwn(labels(o), key));
    } else if ((m = /^([^=!]+)!=(.*)$/.exec(req))) {
      const [, key, value] = m as unknown as [string, string, string];
      tests.push((o) => labels(o)[key] !== value);
    } else if ((m = /^([^=!]+)==?(.*)$/.exec(req))) {
      const [, key, value] = m as unknown as [string, string, string];
      tests.push((o) => labels(o)[key] === value);
    } else if (/^[^=!,]+$/.test(req)) {
      tests.push((o) => Object.hasOwn(labels(o), req));
    } else {
      throw new Error(`unsupported label selector requirement "${req}"`);
    }
  }
  for (const req of splitSelector(fieldSelector)) {
    const m = /^(metadata\.name|metadata\.namespace)(==?|!=)(.*)$/.exec(req);
    if (!m) throw new Error(`unsupported field selector "${req}"`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const get = (o: KubeObject) => (field === 'metadata.name' ? o.metadata?.name : o.metadata?.namespace);
    tests.push((o) => (get(o) === value) === (op !== '!='));
  }
  return (o) => tests.every((t) => t(o));
}

function splitSelector(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}
