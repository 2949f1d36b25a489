// The API server as the recorder's EventSink (events.ts): plain requests over
// the source's connection (kube/connection.ts). Not client-node's generated EventsV1Api: its
// serializer writes eventTime as a JS Date (milliseconds), and the API server
// parses MicroTime with exactly six fractional digits.
import { ApiStatusError, apiRequest } from './api-request.js';
import type { ApiConnection } from './kube/connection.js';
import { eventNamespace, type EventBody, type EventObject, type EventSeries, type EventSink, type ObjectIdentity } from './events.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** Largest response body read (a lookup asks for metadata only; a server that ignores that sends the object). */
const MAX_RESPONSE_BYTES = 8 << 20;

export { ApiStatusError } from './api-request.js';

const OBJECT_PATHS: Record<EventObject['kind'], (ns: string, name: string) => string> = {
  Service: (ns, name) => `/api/v1/namespaces/${ns}/services/${name}`,
  EndpointSlice: (ns, name) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`,
  Node: (_ns, name) => `/api/v1/nodes/${name}`,
};

const eventsPath = (ns: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`;

export class ApiEventSink implements EventSink {
  private readonly closing = new AbortController();

  constructor(private readonly conn: ApiConnection) {}

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
    if (this.closing.signal.aborted) throw new Error('the event sink is closed');
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    const text = await apiRequest(this.conn, { method, path, body, headers, signal, maxBytes: MAX_RESPONSE_BYTES });
    return text === '' ? null : JSON.parse(text);
  }
}
