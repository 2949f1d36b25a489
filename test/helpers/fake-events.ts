// The events.k8s.io/v1 part of the fake API server: create (POST) and merge
// patch (PATCH) of Events, checked the way the real API server validates
// them (required fields, MicroTime layout, note length, series count >= 2,
// the namespace of the regarding object), and every request kept for the test.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface StoredEvent {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  eventTime: string;
  series?: { count: number; lastObservedTime: string };
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: string;
  regarding: { kind: string; namespace?: string; name: string; uid?: string; apiVersion?: string };
}

export interface EventRequest {
  method: 'POST' | 'PATCH';
  namespace: string;
  name?: string;
  body: unknown;
  status: number;
}

const EVENTS_PATH = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events(?:\/([^/]+))?$/;
/** metav1.MicroTime as the API server parses it (RFC 3339, six fractional digits). */
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

export class FakeEvents {
  readonly requests: EventRequest[] = [];
  private readonly stored = new Map<string, StoredEvent>();
  private rv = 1;

  /** Every Event now stored, in creation order. */
  list(): StoredEvent[] {
    return [...this.stored.values()];
  }

  /** Handles the request if it is for Events; false if it is not. */
  handles(req: IncomingMessage, path: string, res: ServerResponse): boolean {
    const m = EVENTS_PATH.exec(path);
    if (!m || (req.method !== 'POST' && req.method !== 'PATCH')) return false;
    const namespace = decodeURIComponent(m[1]!);
    const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return this.reply(res, { method: req.method as 'POST', namespace, name, body: null, status: 400 }, 'body is not JSON');
      }
      const r: EventRequest = { method: req.method as 'POST' | 'PATCH', namespace, name, body, status: 0 };
      if (r.method === 'POST' && name === undefined) return this.create(r, res);
      if (r.method === 'PATCH' && name !== undefined) return this.patch(r, req.headers['content-type'] ?? '', res);
      this.reply(res, { ...r }, 'unsupported', 405);
    });
    return true;
  }

  /** Forgets an Event, as the API server does when its TTL (1 h) passes. */
  expire(namespace: string, name: string): void {
    this.stored.delete(`${namespace}/${name}`);
  }

  private create(r: EventRequest, res: ServerResponse): void {
    const e = r.body as StoredEvent;
    const problem = validate(e, r.namespace);
    if (problem) return this.reply(res, r, problem, 422);
    const key = `${r.namespace}/${e.metadata.name}`;
    if (this.stored.has(key)) return this.reply(res, r, `events "${e.metadata.name}" already exists`, 409);
    const stored = structuredClone(e);
    stored.metadata.resourceVersion = String(++this.rv);
    this.stored.set(key, stored);
    this.reply(res, r, stored, 201);
  }

  private patch(r: EventRequest, contentType: string, res: ServerResponse): void {
    if (!contentType.startsWith('application/merge-patch+json') && !contentType.startsWith('application/strategic-merge-patch+json')) {
      return this.reply(res, r, `unsupported patch type ${contentType}`, 415);
    }
    const e = this.stored.get(`${r.namespace}/${r.name}`);
    if (!e) return this.reply(res, r, `events "${r.name}" not found`, 404);
    const patched = { ...e, ...(r.body as Partial<StoredEvent>) };
    const problem = validate(patched, r.namespace);
    if (problem) return this.reply(res, r, problem, 422);
    patched.metadata = { ...e.metadata, resourceVersion: String(++this.rv) };
    this.stored.set(`${r.namespace}/${r.name}`, patched);
    this.reply(res, r, patched, 200);
  }

  private reply(res: ServerResponse, r: EventRequest, body: unknown, status = 400): void {
    r.status = status;
    this.requests.push(r);
    const payload = typeof body === 'string'
      ? { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: body, code: status }
      : body;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payload));
  }
}

/** The checks of the API server's events.k8s.io/v1 validation that a recorder can get wrong. */
function validate(e: StoredEvent, namespace: string): string | null {
  if (!e?.metadata?.name) return 'metadata.name: Required value';
  if (e.metadata.namespace !== undefined && e.metadata.namespace !== namespace) return 'metadata.namespace: does not match the request';
  if (typeof e.eventTime !== 'string' || !MICRO_TIME.test(e.eventTime)) return `eventTime: Invalid value: ${JSON.stringify(e.eventTime)}`;
  for (const f of ['reportingController', 'reportingInstance', 'action', 'reason'] as const) {
    if (typeof e[f] !== 'string' || e[f] === '') return `${f}: Required value`;
    if (e[f].length > 128) return `${f}: Too long: may not be more than 128 bytes`;
  }
  if (e.type !== 'Normal' && e.type !== 'Warning') return `type: Unsupported value: ${JSON.stringify(e.type)}`;
  if (typeof e.note === 'string' && Buffer.byteLength(e.note) > 1024) return 'note: Too long: may not be more than 1024 bytes';
  if (e.series) {
    if (!(e.series.count >= 2)) return 'series.count: should be at least 2';
    if (!MICRO_TIME.test(e.series.lastObservedTime ?? '')) return 'series.lastObservedTime: Invalid value';
  }
  if (!e.regarding?.kind || !e.regarding.name) return 'regarding: Required value';
  if ((e.regarding.namespace ?? 'default') !== namespace) return 'regarding.namespace: does not match event.namespace';
  return null;
}
