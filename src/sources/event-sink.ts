// The API server as the recorder's EventSink (events.ts): plain requests with
// the kubeconfig's credentials. Not client-node's generated EventsV1Api: its
// serializer writes eventTime as a JS Date (milliseconds), and the API server
// parses MicroTime with exactly six fractional digits.
import http from 'node:http';
import https from 'node:https';
import type * as K8s from '@kubernetes/client-node';
import { eventNamespace, type EventBody, type EventObject, type EventSeries, type EventSink, type ObjectIdentity } from './events.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** Largest response body read (a lookup asks for metadata only; a server that ignores that sends the object). */
const MAX_RESPONSE_BYTES = 8 << 20;

export class ApiStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const OBJECT_PATHS: Record<EventObject['kind'], (ns: string, name: string) => string> = {
  Service: (ns, name) => `/api/v1/namespaces/${ns}/services/${name}`,
  EndpointSlice: (ns, name) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`,
  Node: (_ns, name) => `/api/v1/nodes/${name}`,
};

const eventsPath = (ns: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`;

export class ApiEventSink implements EventSink {
  private readonly closing = new AbortController();

  constructor(private readonly kc: K8s.KubeConfig) {}

  close(): void {
    this.closing.abort();
  }

  async lookup(obj: EventObject): Promise<ObjectIdentity | null> {
    const path = OBJECT_PATHS[obj.kind](encodeURIComponent(eventNamespace(obj)), encodeURIComponent(obj.name));
    try {
      // Metadata only, where the server offers it (every API server since 1.15).
      const accept = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
      const res = (await this.request('GET', path, undefined, { accept })) as { metadata?: ObjectIdentity } | null;
      return { uid: res?.metadata?.uid, resourceVersion: res?.metadata?.resourceVersion };
    } catch (err) {
      if (err instanceof ApiStatusError && err.status === 404) return null;
      throw err;
    }
  }

  async create(event: EventBody): Promise<void> {
    await this.request('POST', eventsPath(event.metadata.namespace), event, { 'content-type': 'application/json' });
  }

  async patchSeries(namespace: string, name: string, series: EventSeries): Promise<void> {
    const path = `${eventsPath(namespace)}/${encodeURIComponent(name)}`;
    await this.request('PATCH', path, { series }, { 'content-type': 'application/merge-patch+json' });
  }

  private async request(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<unknown> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json', ...headers } };
    await this.kc.applyToHTTPSOptions(opts);
    if (this.closing.signal.aborted) throw new Error('the event sink is closed');
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, { ...opts, signal: AbortSignal.any([this.closing.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) return res.destroy(new Error(`${method} ${path}: response over ${MAX_RESPONSE_BYTES} bytes`));
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            let message = text.slice(0, 512);
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? message;
            } catch {
              // not a Status object: the raw text says it
            }
            return reject(new ApiStatusError(status, `${method} ${path}: ${message}`));
          }
          try {
            resolve(text === '' ? null : JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}
