// One request to the API server with the kubeconfig's credentials, its body
// returned as text: the Event sink's requests and the informers' lists.
//
// Lists do not go through client-node's generated API: it deserializes every
// list into its own models (a second full copy of every object, timestamps
// turned into Dates) before handing the response back, and the proxy then
// parsed the raw text again. Measured at 30,000 services x 10 endpoints:
// that copy made most of the first list's peak (bench/memory.ts).
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type * as K8s from '@kubernetes/client-node';

/** A non-2xx answer; `statusCode` is what client-node's errors carry (ListWatch reads it for 410). */
export class ApiStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }

  get statusCode(): number {
    return this.status;
  }
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
}

/** The response body as text ("" for none); rejects with ApiStatusError on a non-2xx status. */
export async function apiRequest(kc: K8s.KubeConfig, req: ApiRequest): Promise<string> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  // gzip as client-go and client-node ask for it: the API server compresses large lists.
  const opts: https.RequestOptions = { method: req.method, headers: { accept: 'application/json', 'accept-encoding': 'gzip', ...req.headers } };
  await kc.applyToHTTPSOptions(opts);
  req.signal?.throwIfAborted();
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  return new Promise((resolve, reject) => {
    const r = (url.protocol === 'https:' ? https : http).request(url, { ...opts, signal: req.signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const body: Readable = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
      if (body !== res) res.on('error', (err) => body.destroy(err));
      body.on('data', (c: Buffer) => {
        size += c.length;
        if (req.maxBytes !== undefined && size > req.maxBytes) return body.destroy(new Error(`${req.method} ${req.path}: response over ${req.maxBytes} bytes`));
        chunks.push(c);
      });
      body.on('error', reject);
      body.on('end', () => {
        // One copy at a time: the chunks go once they are joined, the joined bytes once decoded.
        const bytes = Buffer.concat(chunks, size);
        chunks.length = 0;
        const text = bytes.toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(text);
        let message = text.slice(0, 512);
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not a Status object: the raw text says it
        }
        reject(new ApiStatusError(status, `${req.method} ${req.path}: ${message}`));
      });
    });
    r.on('error', reject);
    r.end(payload);
  });
}
