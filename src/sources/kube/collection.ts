// One collection the proxy lists and watches: its path and selectors, and the
// query of a list page or a watch of it.

export interface Collection {
  /** e.g. /api/v1/services */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** The collection's path with its selectors and `params`, as a request path. */
export function collectionPath(c: Collection, params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  if (c.labelSelector !== undefined) q.set('labelSelector', c.labelSelector);
  if (c.fieldSelector !== undefined) q.set('fieldSelector', c.fieldSelector);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const query = q.toString();
  return query ? `${c.path}?${query}` : c.path;
}
