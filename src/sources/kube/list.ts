// A paginated list, as client-go's pager does it: pages of `limit` items
// (500 by default), each page's items handed over before the next page is
// asked for, so only one page of raw objects is alive at a time (a single
// list of 30,000 EndpointSlices is about 31 MB of JSON, and its parse several
// times that). If a continue token expires before the last page (410), the
// list starts again unpaginated, as client-go's FullListIfExpired does.
import { apiRequest, isGone } from '../api-request.js';
import type { KubeObject } from '../types.js';
import type { ApiConnection } from './connection.js';
import { collectionPath, type Collection } from './collection.js';

export const DEFAULT_PAGE_SIZE = 500;
/** A page whose connection stays silent this long is taken for lost (a server that died without a FIN). */
const PAGE_IDLE_TIMEOUT_MS = 60_000;

export interface ListOptions {
  signal: AbortSignal;
  /** Items per page; 0: one unpaginated request. */
  pageSize?: number;
}

/** Lists `c`, calling `onItems` with each page's objects; resolves with the list's resourceVersion. */
export async function listPaged(conn: ApiConnection, c: Collection, opts: ListOptions, onItems: (items: KubeObject[]) => void): Promise<string> {
  const limit = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  let token: string | undefined;
  for (;;) {
    let page: ListPage;
    try {
      page = parsePage(await apiRequest(conn, { method: 'GET', path: collectionPath(c, { limit: limit || undefined, continue: token }), signal: opts.signal, idleTimeoutMs: PAGE_IDLE_TIMEOUT_MS }));
    } catch (err) {
      if (token === undefined || !isGone(err)) throw err;
      // The snapshot the pages came from is gone: the rest in one request.
      return listPaged(conn, c, { ...opts, pageSize: 0 }, onItems);
    }
    onItems(page.items);
    token = page.continue;
    if (!token) return page.resourceVersion;
  }
}

interface ListPage {
  resourceVersion: string;
  continue?: string;
  items: KubeObject[];
}

export function parsePage(body: string): ListPage {
  const parsed: unknown = JSON.parse(body);
  if (!isRecord(parsed) || !Array.isArray(parsed.items)) throw new Error('list response without an items array');
  const meta = isRecord(parsed.metadata) ? parsed.metadata : {};
  const rv = meta.resourceVersion;
  if (typeof rv !== 'string' || rv === '') throw new Error('list response without metadata.resourceVersion');
  // An item without metadata has no identity to track: dropped here.
  const items = (parsed.items as unknown[]).filter((i): i is KubeObject => isRecord(i) && isRecord(i.metadata));
  const token = meta.continue;
  return { resourceVersion: rv, items, ...(typeof token === 'string' && token !== '' && { continue: token }) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
