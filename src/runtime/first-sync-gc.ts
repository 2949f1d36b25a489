// One full garbage collection after the first full sync.
//
// The first sync lists, plans and programs everything at once, and the
// typed arrays it grows (index and ID tables, by doubling) leave their
// outgrown predecessors behind. Those lived long enough to reach V8's old
// space, so only a full collection frees them, and an idle proxy may not run
// one for minutes: at 30,000 services x 10 endpoints, 5-35 MB of dead
// array buffers were still mapped after the sync (bench/memory.ts: the
// external memory above the live arrays of a heap snapshot). Their bytes
// have their own mappings (malloc.ts), so freeing them returns them at
// once: 12 MB less resident (docs/findings.md). The collection takes
// 0.2-0.7 s of the main thread, once, after the sync is in and logged.
// Later syncs change in proportion to what changed: once is enough.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null = null;

/** A full collection; returns how long it took, in ms. */
export function collectFirstSyncGarbage(): number {
  // Node's documented way to reach gc() in a process not started with --expose-gc.
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  const t = performance.now();
  gc();
  return performance.now() - t;
}
