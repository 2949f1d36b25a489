// The manifest parse worker: a worker_threads entry that turns file bytes into
// definitions (manifest-parse.ts), so a slow or hostile parse never holds the
// proxy's event loop, and an out-of-memory parse ends this worker (its heap is
// capped by resourceLimits) instead of the proxy. One request at a time.
import { parentPort } from 'node:worker_threads';
import { clip } from '../util/clip.js';
import { parseManifest } from './manifest-parse.js';
import type { ParseRequest, ParseResponse } from './parse-client.js';

parentPort?.on('message', (req: ParseRequest) => {
  let res: ParseResponse;
  try {
    const text = Buffer.from(req.bytes).toString('utf8');
    res = { id: req.id, result: parseManifest(req.path, text, req.previous, req.limits) };
  } catch (err) {
    // A parser bug or a stack overflow: this file is unreadable, the worker lives on.
    res = { id: req.id, result: { ok: false, reason: `does not parse: ${clip(err instanceof Error ? err.message : String(err))}` } };
  }
  parentPort!.postMessage(res);
});
// The client's time bound per file starts here, not at the worker's start (parse-client.ts).
parentPort?.postMessage({ ready: true });
