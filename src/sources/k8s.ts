// The Kubernetes API as an event source: one client-node informer (ListWatch)
// per kind, selected the way kube-proxy selects (selection.ts), and only this
// node's Node (fieldSelector metadata.name=NODE).
//
// What client-node 1.x does for us, and what we add (dist/cache.js, watch.js):
// - ListWatch lists, emits add/update/delete against its cache (a re-list
//   emits deletes only for objects that vanished and updates only for changed
//   resourceVersions), then watches from the list's resourceVersion; a watch
//   that ends cleanly is resumed from the last resourceVersion seen; a 410
//   (HTTP status or an ERROR event) clears it, so the next round re-lists.
// - Any other failure reaches its `error` callbacks and it stops for good: we
//   restart it after a backoff (1 s doubling to 30 s). Nothing is deleted
//   because the API server is unreachable: only a successful re-list deletes.
// - Its `connect` event fires before the list, not after, so the end of the
//   initial list is detected here: ListWatch opens its first watch right
//   after delivering its first list, through the Watch we hand it.
// - makeInformer takes no field selector, so ListWatch is built directly,
//   with a Watch wrapper that tracks every request (stop() leaves none open)
//   and asks for bookmarks (fewer 410s after quiet periods).
// - Lists are plain GETs (api-request.ts), not the generated API, so objects
//   reach the model as the JSON the server sent (the generated models turn
//   timestamps into Dates and drop fields they do not know) and no second
//   copy of a whole list is made.
// - ListWatch caches what it delivers; it is handed stubs (handover.ts), so
//   the only full copy of an object is the one the model makes of it.
// - Objects it or the model rejects get a Kubernetes Event (events.ts), as
//   well as the log line and the metric.
import { existsSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type * as K8s from '@kubernetes/client-node';
import { clip } from '../util/clip.js';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../util/input-limits.js';
import type { Logger } from '../util/log.js';
import { EventRecorder, type EventRecorderOptions } from './events.js';
import { apiRequest } from './api-request.js';
import { ApiEventSink } from './event-sink.js';
import { HandOver } from './handover.js';
import { objectLimitProblem } from './limits.js';
import { PROXY_LABEL_SELECTOR } from './selection.js';
import { objectKey, type KubeObject, type ObjectKind, type Source, type SourceEvent, type SourceListener } from './types.js';

export interface KubernetesSourceOptions {
  /** Path of a kubeconfig file; without it (and without `kc`) the in-cluster config is used. */
  kubeconfig?: string;
  /** --master: the API server URL, overriding the kubeconfig's (or, alone, a server without credentials). */
  master?: string;
  /** This node's name: the only Node watched. */
  nodeName: string;
  log: Logger;
  /** A ready KubeConfig, instead of loading one. */
  kc?: K8s.KubeConfig;
  /** Delay before restarting a failed list/watch, doubling from initialMs up to maxMs. */
  retry?: { initialMs: number; maxMs: number };
  /** The object limits (keys, depth, string length, endpoints per slice); default DEFAULT_INPUT_LIMITS. */
  limits?: InputLimits;
  /** Events about rejected objects: false for none; recorder tuning (tests). Default on. */
  events?: false | Pick<EventRecorderOptions, 'burst' | 'refillMs' | 'patchIntervalMs' | 'maxQueued'>;
}

/** Events about rejected objects: the reason and action a reader filters on (`kubectl get events --field-selector reason=...`). */
export const REJECTED_EVENT = { reason: 'FailedToProgram', action: 'Program' } as const;

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const DEFAULT_RETRY = { initialMs: 1000, maxMs: 30_000 };
/** How long stop() waits for watch requests it ended before their response headers arrived. */
const STOP_WAIT_MS = 2000;

type KubeList = K8s.KubernetesListObject<K8s.KubernetesObject>;

interface Collection {
  kind: ObjectKind;
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
}

interface Informed {
  kind: ObjectKind;
  informer: K8s.ListWatch<K8s.KubernetesObject>;
  /** The initial list has been delivered. */
  listed: boolean;
  retryMs: number;
  retryTimer?: NodeJS.Timeout;
}

export class KubernetesSource implements Source {
  readonly name = 'k8s';
  private readonly retry: { initialMs: number; maxMs: number };
  private listener: SourceListener | undefined;
  private stopped = false;
  private syncedSent = false;
  private readonly informed: Informed[] = [];
  private readonly openLists = new Set<AbortController>();
  private readonly openWatches = new Set<AbortController>();
  /** Watch requests still waiting for response headers: their AbortController is not ours yet. */
  private readonly pendingWatches = new Set<Promise<AbortController>>();
  /** The agents (one per request) of those pending watches: destroying one ends its request. */
  private readonly pendingAgents = new Set<Agent>();
  /** The objects behind the stubs given to ListWatch, until it delivers them. */
  private readonly handOver = new HandOver();
  private events: EventRecorder | undefined;

  constructor(private readonly opts: KubernetesSourceOptions) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener || this.stopped) throw new Error('kubernetes source: start() called twice or after stop()');
    // Loaded here: importing client-node takes long and the manifest mode does not need it.
    const k8s = await import('@kubernetes/client-node');
    const kc = this.opts.kc ?? loadKubeConfig(k8s, this.opts.kubeconfig, this.opts.master);
    checkCluster(kc, this.opts.kubeconfig);
    if (this.stopped) return;
    this.listener = listener;
    if (this.opts.events !== false) {
      this.events = new EventRecorder({
        controller: 'bpfproxy',
        instance: this.opts.nodeName,
        sink: new ApiEventSink(kc),
        log: this.opts.log,
        ...this.opts.events,
      });
    }

    const collections: Collection[] = [
      { kind: 'Service', path: '/api/v1/services', labelSelector: PROXY_LABEL_SELECTOR },
      { kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: PROXY_LABEL_SELECTOR },
      { kind: 'Node', path: '/api/v1/nodes', fieldSelector: `metadata.name=${this.opts.nodeName}` },
    ];
    for (const c of collections) this.informed.push(this.makeInformer(k8s, kc, c));
    for (const s of this.informed) this.run(s);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.informed) {
      clearTimeout(s.retryTimer);
      s.retryTimer = undefined;
      await s.informer.stop();
    }
    for (const a of this.openLists) a.abort();
    for (const c of this.openWatches) c.abort();
    for (const a of this.pendingAgents) a.destroy();
    await settledWithin([...this.pendingWatches], STOP_WAIT_MS);
    await this.events?.stop();
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

  private makeInformer(k8s: typeof K8s, kc: K8s.KubeConfig, c: Collection): Informed {
    const watch: K8s.Watch = {
      config: kc,
      watch: (path, params, onEvent, done) => this.openWatch(state, k8s, kc, path, params, onEvent, done),
    };
    const informer = new k8s.ListWatch<K8s.KubernetesObject>(
      c.path,
      watch,
      () => this.list(kc, c),
      false,
      c.labelSelector,
      c.fieldSelector,
    );
    const state: Informed = { kind: c.kind, informer, listed: false, retryMs: this.retry.initialMs };
    informer.on('add', (o) => this.upsert(c.kind, o));
    informer.on('update', (o) => this.upsert(c.kind, o));
    informer.on('delete', (o) => this.remove(c.kind, o));
    informer.on('error', (err: unknown) => this.failed(state, err));
    return state;
  }

  private run(s: Informed): void {
    if (this.stopped) return;
    s.informer.start().catch((err: unknown) => this.failed(s, err));
  }

  private failed(s: Informed, err: unknown): void {
    if (this.stopped) return;
    const delay = s.retryMs;
    s.retryMs = Math.min(delay * 2, this.retry.maxMs);
    this.opts.log.warn({ kind: s.kind, err: describeError(err), retryInMs: delay }, `${s.kind} list/watch failed; retrying`);
    clearTimeout(s.retryTimer);
    s.retryTimer = setTimeout(() => {
      s.retryTimer = undefined;
      this.run(s);
    }, delay);
  }

  /** A list of one collection, abortable by stop(), as the server's own JSON. */
  private async list(kc: K8s.KubeConfig, c: Collection): Promise<KubeList> {
    if (this.stopped) throw new Error('kubernetes source stopped');
    const abort = new AbortController();
    const query = new URLSearchParams();
    if (c.labelSelector !== undefined) query.set('labelSelector', c.labelSelector);
    if (c.fieldSelector !== undefined) query.set('fieldSelector', c.fieldSelector);
    let body: string;
    this.openLists.add(abort);
    try {
      body = await apiRequest(kc, { method: 'GET', path: `${c.path}?${query.toString()}`, signal: abort.signal });
    } finally {
      this.openLists.delete(abort);
    }
    const list = parseList(body);
    return { ...list, items: list.items.map((i) => this.handOver.stub(i as KubeObject)) };
  }

  private async openWatch(
    s: Informed,
    k8s: typeof K8s,
    kc: K8s.KubeConfig,
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    onEvent: (phase: string, obj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    // ListWatch watches only after it delivered a list (or to resume after one).
    this.listDelivered(s);
    if (this.stopped) return abortedController();
    let controller: AbortController | undefined;
    let ended = false;
    const onDone = (err: unknown): void => {
      if (ended) return;
      ended = true;
      if (controller) this.openWatches.delete(controller);
      this.guard(s, () => done(err));
    };
    const onLine = (phase: string, obj: unknown, watchObj?: unknown): void => {
      // ListWatch reads obj.metadata / obj.code without checking: drop what would make it throw.
      if (!isRecord(obj) || (phase !== 'ERROR' && phase !== 'BOOKMARK' && !isRecord(obj.metadata))) {
        this.opts.log.warn({ kind: s.kind, phase }, 'ignoring a malformed watch event');
        return;
      }
      const cached = phase === 'ADDED' || phase === 'MODIFIED' ? this.handOver.stub(obj as KubeObject) : obj;
      this.guard(s, () => onEvent(phase, cached, watchObj));
    };
    // client-node's Watch makes the request's AbortController only once the
    // response headers are in; until then the request's own agent (a fresh
    // one per request) is the handle stop() can end it with.
    let agent: Agent | undefined;
    const config = Object.create(kc) as K8s.KubeConfig;
    config.applyToFetchOptions = async (opts) => {
      const init = await kc.applyToFetchOptions(opts);
      if (this.stopped) throw new Error('kubernetes source stopped');
      if (init.agent instanceof Agent) {
        agent = init.agent;
        this.pendingAgents.add(agent);
      }
      return init;
    };
    const pending = new k8s.Watch(config)
      .watch(path, { ...params, allowWatchBookmarks: true }, onLine, onDone)
      .catch((err: unknown) => {
        onDone(err);
        return abortedController();
      });
    this.pendingWatches.add(pending);
    try {
      controller = await pending;
    } finally {
      this.pendingWatches.delete(pending);
      if (agent) this.pendingAgents.delete(agent);
    }
    if (this.stopped) controller.abort();
    else if (!ended) {
      this.openWatches.add(controller);
      s.retryMs = this.retry.initialMs;
    }
    return controller;
  }

  /** Calls into ListWatch, whose handlers are async and whose rejections nobody would see. */
  private guard(s: Informed, fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => this.failed(s, err));
    } catch (err) {
      this.failed(s, err);
    }
  }

  private listDelivered(s: Informed): void {
    if (s.listed) return;
    s.listed = true;
    if (this.syncedSent || !this.informed.every((i) => i.listed)) return;
    this.syncedSent = true;
    this.emit({ type: 'synced', source: this.name });
  }

  private upsert(kind: ObjectKind, o: K8s.KubernetesObject): void {
    // Raw JSON from the server (list body or watch line), not a generated model.
    const object = this.handOver.take(o) as KubeObject;
    const key = objectKey(kind, object);
    if (!key) return this.opts.log.warn({ kind }, 'ignoring an object without metadata.name');
    // The same limits as a manifest's objects: an object over them never
    // reaches the model, so its last good version stays in force.
    const over = objectLimitProblem(object, this.opts.limits ?? DEFAULT_INPUT_LIMITS);
    if (over) {
      this.reportRejected(kind, key, `not read: ${over}`);
      return this.emit({ type: 'invalid', origin: 'k8s', kind, key: clip(key), reason: `not read: ${over}` });
    }
    this.emit({ type: 'upsert', kind, key, object, origin: 'k8s' });
  }

  private remove(kind: ObjectKind, o: K8s.KubernetesObject): void {
    const key = objectKey(kind, o as unknown as KubeObject);
    if (!key) return;
    this.emit({ type: 'delete', kind, key, origin: 'k8s' });
  }

  private emit(ev: SourceEvent): void {
    if (this.stopped || !this.listener) return;
    try {
      this.listener(ev);
    } catch (err) {
      // Thrown inside ListWatch it would abort the rest of a list's events.
      this.opts.log.error({ err, event: ev.type }, 'kubernetes source listener threw');
    }
  }
}

function loadKubeConfig(k8s: typeof K8s, path: string | undefined, master: string | undefined): K8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  const inCluster = Boolean(host && port && existsSync(IN_CLUSTER_TOKEN));
  if (path) {
    try {
      kc.loadFromFile(path);
      refreshTokenFiles(kc, path);
    } catch (err) {
      throw new Error(`cannot load kubeconfig ${path}: ${describeError(err)}`, { cause: err });
    }
  } else if (inCluster) {
    kc.loadFromCluster();
  } else if (master) {
    // kube-proxy --master alone: that server, no credentials.
    kc.loadFromOptions({
      clusters: [{ name: 'master', server: master, skipTLSVerify: master.startsWith('http:') }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'master', cluster: 'master', user: 'anonymous' }],
      currentContext: 'master',
    });
    return kc;
  }
  if (path || inCluster) {
    if (master) {
      const current = kc.getCurrentCluster();
      kc.loadFromOptions({
        clusters: kc.clusters.map((c) => (c.name === current?.name ? { ...c, server: master } : c)),
        users: kc.users,
        contexts: kc.contexts,
        currentContext: kc.getCurrentContext(),
      });
    }
    return kc;
  }
  throw new Error(
    'no kubeconfig given and not running in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset ' +
      `or no service account token at ${IN_CLUSTER_TOKEN}); pass --kubeconfig or --master`,
  );
}

/**
 * A user with a token file (kubeadm's kube-proxy kubeconfig says `tokenFile`,
 * kubectl's says `token-file`) authenticates with the file's current content,
 * re-read as it rotates, the way client-node's in-cluster config does.
 * client-node itself ignores `tokenFile` and reads `token-file` only once.
 */
function refreshTokenFiles(kc: K8s.KubeConfig, path: string): void {
  const raw = parseYaml(readFileSync(path, 'utf8')) as { users?: { name?: string; user?: Record<string, unknown> }[] } | null;
  const files = new Map<string, string>();
  for (const u of raw?.users ?? []) {
    const file = u.user?.tokenFile ?? u.user?.['token-file'];
    if (u.name && typeof file === 'string' && !u.user?.token) files.set(u.name, file);
  }
  if (files.size === 0) return;
  kc.loadFromOptions({
    clusters: kc.clusters,
    users: kc.users.map((u) => {
      const tokenFile = files.get(u.name);
      return tokenFile ? { ...u, token: undefined, authProvider: { name: 'tokenFile', config: { tokenFile } } } : u;
    }),
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
}

/** Fails now on what would otherwise fail on every request, retried forever. */
function checkCluster(kc: K8s.KubeConfig, path: string | undefined): void {
  const where = path ? `kubeconfig ${path}` : 'the kubeconfig';
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${where}: no cluster for current-context "${kc.getCurrentContext()}"`);
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new Error(`${where}: cluster ${cluster.name} uses plain http (${cluster.server}) without insecure-skip-tls-verify`);
  }
}

function parseList(body: string): KubeList {
  const parsed: unknown = JSON.parse(body);
  if (!isRecord(parsed) || !Array.isArray(parsed.items)) throw new Error('list response without an items array');
  // ListWatch indexes items by metadata without checking it is there.
  const items = parsed.items.filter((i: unknown) => isRecord(i) && isRecord(i.metadata));
  return { ...parsed, items } as unknown as KubeList;
}

function abortedController(): AbortController {
  const c = new AbortController();
  c.abort();
  return c;
}

async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([Promise.allSettled(promises), timeout]);
  clearTimeout(timer);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { statusCode?: number; code?: number | string };
  const status = e.statusCode ?? (typeof e.code === 'number' ? e.code : undefined);
  return status !== undefined ? `${e.message} (HTTP ${status})` : e.message;
}
