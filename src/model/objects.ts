// The raw API objects the model accepts, as a source delivers them (the JSON
// an API server serves). Kept in the model so that the model depends on no source.

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

export function objectKey(kind: ObjectKind, obj: KubeObject): ObjectKey | null {
  const name = obj.metadata?.name;
  if (!name) return null;
  if (kind === 'Node') return name;
  return namespacedKey(obj.metadata?.namespace || 'default', name);
}

/**
 * "namespace/name" as one flat string. A template literal makes a rope (a
 * ConsString per `+`, 32 bytes each, and a flat copy besides once it is
 * hashed as a Map key); join() writes one sequential string. Keys are kept
 * per object, several per object, so at 30,000 services this was megabytes.
 */
export function namespacedKey(namespace: string, name: string): string {
  return [namespace, name].join('/');
}
