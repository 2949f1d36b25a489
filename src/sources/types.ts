// What every source (a manifest directory, the Kubernetes API) emits. Objects
// are passed as the plain JSON the API server would serve; the model validates
// and normalizes them, sources only deliver.

export type { ObjectKind, ObjectKey, KubeObject } from '../model/objects.js';
export { OBJECT_KINDS, API_VERSIONS } from '../model/objects.js';
import type { ObjectKind, ObjectKey, KubeObject } from '../model/objects.js';

export type SourceEvent =
  | {
      type: 'upsert';
      kind: ObjectKind;
      key: ObjectKey;
      /** Read-only: what the model keeps of it may share its parts. */
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
  /** Tells the source's origin that one of its objects was rejected (the k8s source posts an Event). Must not wait. */
  reportRejected?(kind: ObjectKind, key: ObjectKey, reason: string): void;
}

export { objectKey } from '../model/objects.js';
