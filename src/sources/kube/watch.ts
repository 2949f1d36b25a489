// One watch request: GET ...?watch=true from a resourceVersion, its body
// parsed line by line (watch-stream.ts) as it arrives. Resolves when the
// server ends the stream (its timeoutSeconds expired, or it went away
// cleanly); rejects on a non-2xx answer (ApiStatusError, 410 among them), a
// broken connection, or a socket silent for longer than the server's own
// timeout plus a margin (a connection that died without a FIN).
import { ApiStatusError, openResponse, statusError } from '../api-request.js';
import type { ApiConnection } from './connection.js';
import { collectionPath, type Collection } from './collection.js';
import { WatchStreamParser, type WatchEvent } from './watch-stream.js';

export interface WatchOptions {
  resourceVersion: string;
  /** The server ends the watch after this long; client-go picks 5-10 minutes at random so watches do not end together. */
  timeoutSeconds: number;
  signal: AbortSignal;
  /** The response headers are in (200): the watch is open. */
  onOpen?: () => void;
}

/** Extra silence allowed past timeoutSeconds before the connection is taken for dead. */
const IDLE_MARGIN_MS = 60_000;

/**
 * Watches `c`, calling `onEvent` per event in order. An ERROR event ends the
 * watch with its Status as an ApiStatusError (as the server ends the stream
 * after one anyway).
 */
export async function watchOnce(conn: ApiConnection, c: Collection, opts: WatchOptions, onEvent: (ev: WatchEvent) => void): Promise<void> {
  const path = collectionPath(c, {
    watch: true,
    resourceVersion: opts.resourceVersion,
    allowWatchBookmarks: true,
    timeoutSeconds: opts.timeoutSeconds,
  });
  const what = `watch ${c.path}`;
  const { status, body } = await openResponse(conn, {
    method: 'GET',
    path,
    signal: opts.signal,
    gzip: false,
    idleTimeoutMs: opts.timeoutSeconds * 1000 + IDLE_MARGIN_MS,
  });
  if (status !== 200) throw await statusError(status, body, what);
  opts.onOpen?.();
  let failure: ApiStatusError | undefined;
  const parser = new WatchStreamParser((ev) => {
    if (failure) return;
    if (ev.type === 'ERROR') {
      failure = new ApiStatusError(ev.code, `${what}: ${ev.message}`, ev.reason);
      body.destroy();
      return;
    }
    onEvent(ev);
  });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) parser.push(chunk);
    parser.end();
  } catch (err) {
    if (!failure) throw err;
  }
  if (failure) throw failure;
}
