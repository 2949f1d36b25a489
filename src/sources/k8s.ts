// The Kubernetes API as an event source: one informer (kube/informer.ts: a
// paginated list, then a watch from its resourceVersion with bookmarks,
// re-listing on 410 Gone and retrying with a backoff on any other failure)
// per kind, selected the way kube-proxy selects (selection.ts), and only this
// node's Node (fieldSelector metadata.name=NODE).
// - Our own small client (kube/), not @kubernetes/client-node: importing that
//   cost 73 MB of RSS and 28 MB of heap, the largest part of what an empty
//   cluster cost (docs/findings.md). client-node is loaded only for a
//   kubeconfig user with an exec plugin or an auth-provider
//   (kube/plugin-connection.ts).
// - Objects reach the model as the JSON the server sent; the informers keep
//   only identities and resourceVersions, so the only full copy of an object
//   is the one the model makes of it.
// - Nothing is deleted because the API server is unreachable: only a complete
//   re-list deletes. Nothing is programmed before all three kinds are listed.
// - Objects over the input limits, or that the model rejects, get a
//   Kubernetes Event (events.ts), as well as the log line and the metric.
import { clip } from '../util/clip.js';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../util/input-limits.js';
import type { Logger } from '../util/log.js';
import { EventRecorder, type EventRecorderOptions } from './events.js';
import { ApiEventSink } from './event-sink.js';
import type { Collection } from './kube/collection.js';
import type { ApiConnection } from './kube/connection.js';
import { Informer } from './kube/informer.js';
import { connect } from './kube/load.js';
import { objectLimitProblem } from './limits.js';
import { PROXY_LABEL_SELECTOR } from './selection.js';
import { objectKey, type KubeObject, type ObjectKind, type Source, type SourceEvent, type SourceListener } from './types.js';

export interface KubernetesSourceOptions {
  /** Path of a kubeconfig file; without it (and without `connection`) the in-cluster config is used. */
  kubeconfig?: string;
  /** --master: the API server URL, overriding the kubeconfig's (or, alone, a server without credentials). */
  master?: string;
  /** This node's name: the only Node watched. */
  nodeName: string;
  log: Logger;
  /** A ready connection, instead of loading a configuration; stop() leaves it open. */
  connection?: ApiConnection;
  /** Delay before restarting a failed list/watch, doubling from initialMs up to maxMs. */
  retry?: { initialMs: number; maxMs: number };
  /** Items per list page (default 500; 0: unpaginated). */
  pageSize?: number;
  /** The object limits (keys, depth, string length, endpoints per slice); default DEFAULT_INPUT_LIMITS. */
  limits?: InputLimits;
  /** Events about rejected objects: false for none; recorder tuning (tests). Default on. */
  events?: false | Pick<EventRecorderOptions, 'burst' | 'refillMs' | 'patchIntervalMs' | 'maxQueued'>;
}

/** Events about rejected objects: the reason and action a reader filters on (`kubectl get events --field-selector reason=...`). */
export const REJECTED_EVENT = { reason: 'FailedToProgram', action: 'Program' } as const;

const DEFAULT_RETRY = { initialMs: 1000, maxMs: 30_000 };

interface Kind {
  kind: ObjectKind;
  informer: Informer;
  /** The initial list has been delivered. */
  listed: boolean;
}

export class KubernetesSource implements Source {
  readonly name = 'k8s';
  private listener: SourceListener | undefined;
  private stopped = false;
  private syncedSent = false;
  private readonly kinds: Kind[] = [];
  private conn: ApiConnection | undefined;
  private events: EventRecorder | undefined;

  constructor(private readonly opts: KubernetesSourceOptions) {}

  async start(listener: SourceListener): Promise<void> {
    if (this.listener || this.stopped) throw new Error('kubernetes source: start() called twice or after stop()');
    const conn = this.opts.connection ?? (await connect({ kubeconfig: this.opts.kubeconfig, master: this.opts.master, log: this.opts.log }));
    if (this.stopped) {
      if (conn !== this.opts.connection) conn.close();
      return;
    }
    this.conn = conn;
    this.listener = listener;
    if (this.opts.events !== false) {
      this.events = new EventRecorder({
        controller: 'bpfproxy',
        instance: this.opts.nodeName,
        sink: new ApiEventSink(conn),
        log: this.opts.log,
        ...this.opts.events,
      });
    }
    const collections = [
      { kind: 'Service', path: '/api/v1/services', labelSelector: PROXY_LABEL_SELECTOR },
      { kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: PROXY_LABEL_SELECTOR },
      { kind: 'Node', path: '/api/v1/nodes', fieldSelector: `metadata.name=${this.opts.nodeName}` },
    ] as const;
    for (const c of collections) this.kinds.push(this.makeInformer(conn, c.kind, c));
    for (const k of this.kinds) k.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.kinds.map((k) => k.informer.stop()));
    await this.events?.stop();
    if (this.conn && this.conn !== this.opts.connection) this.conn.close();
  }

  /**
   * An object of ours was rejected (by the model, or here for its size): a
   * Warning Event on it, deduplicated into a series. Never waits.
   */
  reportRejected(kind: ObjectKind, key: string, reason: string): void {
    if (!this.events || this.stopped) return;
    const slash = kind === 'Node' ? -1 : key.indexOf('/');
    const obj = slash < 0 ? { kind, name: key } : { kind, namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    if (!obj.name) return;
    this.events.record(obj, { type: 'Warning', ...REJECTED_EVENT, note: reason });
  }

  private makeInformer(conn: ApiConnection, kind: ObjectKind, c: Collection): Kind {
    const log = this.opts.log;
    const state: Kind = {
      kind,
      listed: false,
      informer: new Informer(conn, c, {
        keyOf: (o) => objectKey(kind, o) ?? undefined,
        upsert: (key, o) => this.upsert(kind, key, o),
        remove: (key) => this.emit({ type: 'delete', kind, key, origin: 'k8s' }),
        nameless: () => log.warn({ kind }, 'ignoring an object without metadata.name'),
        listed: () => this.listDelivered(state),
        failed: (err, retryInMs) => {
          if (!this.stopped) log.warn({ kind, err: describeError(err), retryInMs }, `${kind} list/watch failed; retrying`);
        },
        malformed: (problem) => log.warn({ kind, problem }, 'ignoring a malformed watch event'),
      }, {
        retry: this.opts.retry ?? DEFAULT_RETRY,
        ...(this.opts.pageSize !== undefined && { pageSize: this.opts.pageSize }),
      }),
    };
    return state;
  }

  private listDelivered(s: Kind): void {
    if (s.listed) return;
    s.listed = true;
    if (this.syncedSent || !this.kinds.every((k) => k.listed)) return;
    this.syncedSent = true;
    this.emit({ type: 'synced', source: this.name });
  }

  private upsert(kind: ObjectKind, key: string, object: KubeObject): void {
    // The same limits as a manifest's objects: an object over them never
    // reaches the model, so its last good version stays in force.
    const over = objectLimitProblem(object, this.opts.limits ?? DEFAULT_INPUT_LIMITS);
    if (over) {
      this.reportRejected(kind, key, `not read: ${over}`);
      return this.emit({ type: 'invalid', origin: 'k8s', kind, key: clip(key), reason: `not read: ${over}` });
    }
    this.emit({ type: 'upsert', kind, key, object, origin: 'k8s' });
  }

  private emit(ev: SourceEvent): void {
    if (this.stopped || !this.listener) return;
    try {
      this.listener(ev);
    } catch (err) {
      // Thrown inside an informer it would abort the rest of a list page's events.
      this.opts.log.error({ err, event: ev.type }, 'kubernetes source listener threw');
    }
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { statusCode?: number };
  return e.statusCode !== undefined ? `${e.message} (HTTP ${e.statusCode})` : e.message;
}
