// What client-node's ListWatch caches, cut down to what it reads. ListWatch
// keeps every object it delivers until the next one of that name, only to
// compare resourceVersions and to emit deletes on a re-list; the model keeps
// its own normalized copy, so the cached raw objects were the largest thing
// the source held (24 MB of heap at 10,000 services x 10 endpoints).
// ListWatch is given a stub (namespace, name, resourceVersion) instead, and
// the full object waits beside it until ListWatch's add/update callback takes
// it, in the same turn. A stub ListWatch drops without a callback (same
// resourceVersion) takes its object with it: the table holds both weakly.
import type { KubeObject } from './types.js';

export interface Stub {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
}

export class HandOver {
  private readonly waiting = new WeakMap<object, KubeObject>();

  /** The stub to give ListWatch in place of `obj`. */
  stub(obj: KubeObject): Stub {
    const m = obj.metadata ?? {};
    const stub: Stub = { metadata: { name: m.name, namespace: m.namespace, resourceVersion: m.resourceVersion } };
    this.waiting.set(stub, obj);
    return stub;
  }

  /** The full object behind a stub ListWatch delivered (once), or what it delivered if not a stub. */
  take(delivered: object): unknown {
    const obj = this.waiting.get(delivered);
    if (!obj) return delivered;
    this.waiting.delete(delivered);
    return obj;
  }
}
