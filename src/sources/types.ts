// What every source (a manifest directory, the Kubernetes API) emits. Objects
// are passed as the plain JSON the API server would serve; the model validates
// and normalizes them, sources only deliver.

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Node';

export const OBJECT_KINDS: readonly ObjectKind[] = ['Service', 'EndpointSlice', 'Node'];

/** apiVersion each kind must carry. */
export const API_VERSIONS: Readonly<Record<ObjectKind, string>> = {
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Node: 'v1',
};

/** "namespace/name" for namespaced kinds, "name" for Nodes. */
export type ObjectKey = string;

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export type SourceEvent =
  | {
      type: 'upsert';
      kind: ObjectKind;
      key: ObjectKey;
      object: KubeObject;
      /** Where it came from, for log lines: a file path (and document index) or "k8s". */
      origin: string;
    }
  | { type: 'delete'; kind: ObjectKind; key: ObjectKey; origin: string }
  /**
   * The source has delivered its complete initial state (a full list for
   * every kind it serves). Nothing is programmed before every source has
   * sent this once. Sent again after a re-list is NOT required.
   */
  | { type: 'synced'; source: string }
  /**
   * Something the source could not turn into an object: a file that does not
   * parse, a document of an unknown kind. Logged once by the runtime; the
   * objects that file held before keep their last good state.
   */
  | { type: 'invalid'; origin: string; kind?: string; key?: string; reason: string };

export type SourceListener = (ev: SourceEvent) => void;

export interface Source {
  readonly name: string;
  /** Starts delivering events to `listener`. Resolves once watching has begun (not necessarily synced). */
  start(listener: SourceListener): Promise<void>;
  /** Stops every watch, timer and connection the source holds. Idempotent. */
  stop(): Promise<void>;
}

export function objectKey(kind: ObjectKind, obj: KubeObject): ObjectKey | null {
  const name = obj.metadata?.name;
  if (!name) return null;
  if (kind === 'Node') return name;
  return `${obj.metadata?.namespace || 'default'}/${name}`;
}
