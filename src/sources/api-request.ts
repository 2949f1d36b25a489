// Requests to the API server over a connection (kube/connection.ts): the
// Event sink's requests, the informers' list pages (the body as text) and
// their watches (the body as a stream).
//
// Lists do not go through client-node's generated API: it deserializes every
// list into its own models (a second full copy of every object, timestamps
// turned into Dates) before handing the response back, and the proxy then
// parsed the raw text again. Measured at 30,000 services x 10 endpoints:
// that copy made most of the first list's peak (bench/memory.ts).
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { constants, createGunzip } from 'node:zlib';
import type { ApiConnection } from './kube/connection.js';

/** A non-2xx answer, or an ERROR event of a watch; `statusCode` as client-node's errors carry it. */
export class ApiStatusError extends Error {
  constructor(readonly status: number, message: string, readonly reason?: string) {
    super(message);
  }

  get statusCode(): number {
    return this.status;
  }
}

/** 410 Gone (or reason Expired): the resourceVersion or continue token asked for is no longer kept. */
export function isGone(err: unknown): boolean {
  return err instanceof ApiStatusError && (err.status === 410 || err.reason === 'Expired' || err.reason === 'Gone');
}

export interface ApiRequest {
  method: string;
  /** Path and query, from the server's root ("/api/v1/services?labelSelector=..."). */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Largest response body read; larger ones fail the request. */
  maxBytes?: number;
  /** Ask for a gzip body (default true): the API server compresses large lists. */
  gzip?: boolean;
  /** Fail the request when its socket sees no data for this long. */
  idleTimeoutMs?: number;
}

/** Largest error body read for its Status message. */
const MAX_ERROR_BYTES = 64 << 10;

/** Sends a request; resolves with the status and the (decompressed) body stream once the headers are in. */
export async function openResponse(conn: ApiConnection, req: ApiRequest): Promise<{ status: number; body: Readable }> {
  const url = new URL(conn.server + req.path);
  const opts = await conn.requestOptions();
  req.signal?.throwIfAborted();
  const headers: Record<string, string | number> = {
    accept: 'application/json',
    ...(req.gzip !== false && { 'accept-encoding': 'gzip' }),
    ...(opts.headers as Record<string, string> | undefined),
    ...req.headers,
  };
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  if (payload) headers['content-length'] = payload.length;
  return new Promise((resolve, reject) => {
    const r = (url.protocol === 'https:' ? https : http).request(url, { ...opts, method: req.method, headers, signal: req.signal }, (res) => {
      let body: Readable = res;
      if (res.headers['content-encoding'] === 'gzip') {
        // A watch's gzip stream is flushed, not finished, between events.
        body = res.pipe(createGunzip({ finishFlush: constants.Z_SYNC_FLUSH }));
        res.on('error', (err) => body.destroy(err));
        body.on('close', () => res.destroy());
      }
      resolve({ status: res.statusCode ?? 0, body });
    });
    if (req.idleTimeoutMs !== undefined) {
      r.setTimeout(req.idleTimeoutMs, () => r.destroy(new Error(`${req.method} ${url.pathname}: no data for ${req.idleTimeoutMs} ms`)));
    }
    r.on('error', reject);
    r.end(payload);
  });
}

/** The whole body as bytes, at most `maxBytes`. */
export async function readBody(body: Readable, maxBytes = Infinity, what = 'response'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) {
      body.destroy();
      throw new Error(`${what}: response over ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, size);
}

/** The error of a non-2xx response, with the message of its Status body when there is one. */
export async function statusError(status: number, body: Readable, what: string): Promise<ApiStatusError> {
  let text = '';
  try {
    text = (await readBody(body, MAX_ERROR_BYTES, what)).toString('utf8');
  } catch {
    body.destroy();
  }
  let message = text.slice(0, 512);
  let reason: string | undefined;
  try {
    const s = JSON.parse(text) as { message?: string; reason?: string };
    message = s.message ?? message;
    reason = s.reason;
  } catch {
    // not a Status object: the raw text says it
  }
  return new ApiStatusError(status, `${what}: ${message}`, reason);
}

/** The response body as text ("" for none); rejects with ApiStatusError on a non-2xx status. */
export async function apiRequest(conn: ApiConnection, req: ApiRequest): Promise<string> {
  const what = `${req.method} ${req.path}`;
  const { status, body } = await openResponse(conn, req);
  if (status < 200 || status >= 300) throw await statusError(status, body, what);
  // One copy at a time: the chunks go once they are joined, the joined bytes once decoded.
  return (await readBody(body, req.maxBytes, what)).toString('utf8');
}
