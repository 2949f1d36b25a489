// kube-proxy exits when its --config file changes, so that editing the ConfigMap
// rolls out by restarts; bpfproxy does the same. A ConfigMap volume swaps the
// `..data` symlink of the directory rather than writing the file, so the
// directory is watched, not the file, and the contents are compared: an event
// that leaves the bytes as they were (a touch, a resync of the same ConfigMap)
// changes nothing. A slow poll backs the watch up (a watch can miss a directory
// being replaced under it).
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface ConfigWatchOptions {
  /** Wait this long after an event before reading, so a write-then-rename settles. */
  settleMs?: number;
  pollMs?: number;
  readFile?: (path: string) => string;
}

export interface ConfigWatch {
  close(): void;
}

/** Calls `changed` once, with why, when the contents of `path` differ from `initial` or it is gone. */
export function watchConfigFile(path: string, initial: string, changed: (why: string) => void, opts: ConfigWatchOptions = {}): ConfigWatch {
  const settleMs = opts.settleMs ?? 100;
  const read = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const name = basename(path);
  let done = false;
  let settle: NodeJS.Timeout | undefined;

  const check = () => {
    if (done) return;
    let why: string | null = null;
    try {
      if (read(path) !== initial) why = `${path} changed`;
    } catch (err) {
      why = `${path} cannot be read any more (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    if (why === null) return;
    close();
    changed(why);
  };
  const soon = () => {
    clearTimeout(settle);
    settle = setTimeout(check, settleMs);
  };

  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name || file === '..data') soon();
    });
    watcher.on('error', () => { /* the poll still runs */ });
  } catch {
    watcher = null;
  }
  const poll = setInterval(check, opts.pollMs ?? 10_000);
  poll.unref();

  function close(): void {
    done = true;
    clearTimeout(settle);
    clearInterval(poll);
    watcher?.close();
  }
  return { close };
}
