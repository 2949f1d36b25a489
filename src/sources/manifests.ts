// A directory of manifests as an event source, for standalone runs, the demo
// and the tests. It behaves like a watch on an API server whose only writer is
// the directory: an object appears (upsert) when a file defines it, changes
// when its definition changes, and disappears (delete) when no file defines it
// any more or when it stops being selected by the proxy labels.
//
// Every regular file (symlinks followed) named *.yaml, *.yml or *.json directly
// in the directory is read, all YAML documents of it; names starting with "."
// are skipped, which makes a ConfigMap volume work: its files are symlinks into
// "..data/", swapped atomically by renaming a new "..data" symlink into place.
// Anything else with a manifest name (a directory, a dangling symlink, a FIFO,
// a device) is skipped with one log line per entry and reason, and never
// opened: opening a FIFO blocks, reading /dev/zero never ends.
//
// Files are parsed in a worker thread (parse-client.ts), within the input
// limits (util/input-limits.ts): a file over --manifest-max-bytes is not read;
// the others are refused before the parse when they exceed a limit
// (prescan.ts), and after it when the exact check finds one (limits.ts).
import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DEFAULT_INPUT_LIMITS, limitExceeded, type InputLimits } from '../util/input-limits.js';
import type { Logger } from '../util/log.js';
import type { Definition, Problem } from './manifest-parse.js';
import { ParseClient } from './parse-client.js';
import { selectedByProxy } from './selection.js';
import type { Source, SourceEvent, SourceListener } from './types.js';

export { parseManifest, type Definition, type ParsedManifest, type Problem } from './manifest-parse.js';

export interface ManifestSourceOptions {
  dir: string;
  log: Logger;
  /** Period of the full rescan that catches changes inotify did not report. */
  rescanIntervalMs?: number;
  /** Default DEFAULT_INPUT_LIMITS. */
  limits?: InputLimits;
}

/** Why the manifest directory cannot be used, or null. Checked before the proxy touches the kernel. */
export async function manifestDirProblem(dir: string): Promise<string | null> {
  try {
    if (!(await stat(dir)).isDirectory()) return `manifest directory ${dir} is not a directory`;
  } catch (err) {
    return `manifest directory ${dir} cannot be used: ${errorMessage(err)}`;
  }
  return null;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
/** Editors and atomic writers produce bursts of events; one rescan per burst. */
const DEBOUNCE_MS = 20;
const DEFAULT_RESCAN_INTERVAL_MS = 2000;

/** The stat fields that change whenever a file is replaced or written. */
interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface FileState {
  identity: FileIdentity;
  /** In document order. The last good ones while the file does not parse. */
  definitions: Definition[];
  problems: Problem[];
}

export function isManifestName(name: string): boolean {
  if (name.startsWith('.')) return false;
  const lower = name.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

export class ManifestSource implements Source {
  readonly name = 'manifests';
  private readonly dir: string;
  private readonly log: Logger;
  private readonly rescanIntervalMs: number;
  private listener: SourceListener | undefined;
  private watcher: FSWatcher | undefined;
  private watchedDirIno: number | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private intervalTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanQueued = false;
  private stopped = false;
  private synced = false;
  private readonly files = new Map<string, FileState>();
  /** What the listener has been told exists, by kind and key. */
  private readonly published = new Map<string, Definition>();
  /** Duplicate definitions already reported, so each is reported once. */
  private reportedDuplicates = new Set<string>();
  private dirProblem: string | undefined;
  private readonly limits: InputLimits;
  private readonly parser = new ParseClient();
  /** Entries skipped, with the reason last logged: one line per entry and reason. */
  private skipped = new Map<string, string>();

  constructor(opts: ManifestSourceOptions) {
    this.dir = opts.dir;
    this.log = opts.log;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
    this.limits = opts.limits ?? DEFAULT_INPUT_LIMITS;
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener) throw new Error(`manifest source ${this.dir}: already started`);
    const problem = await manifestDirProblem(this.dir);
    if (problem) throw new Error(problem);
    this.listener = listener;
    await this.rescan();
    if (!this.synced) {
      const reason = this.dirProblem ?? 'stopped before the first scan completed';
      await this.stop();
      throw new Error(`manifest directory ${this.dir}: ${reason}`);
    }
    if (!this.stopped) this.intervalTimer = setInterval(() => void this.rescan(), this.rescanIntervalMs);
  }

  /**
   * Scans the directory now (after a scan already running) and resolves once
   * the events of that scan have been delivered. Used by start(), the watcher
   * and the periodic timer; also a deterministic barrier for tests.
   */
  rescan(): Promise<void> {
    if (this.stopped || !this.listener) return Promise.resolve();
    this.rescanQueued = true;
    this.scanning ??= this.scanLoop().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounceTimer);
    clearInterval(this.intervalTimer);
    this.debounceTimer = undefined;
    this.intervalTimer = undefined;
    await this.scanning;
    await this.parser.close();
  }

  private async scanLoop(): Promise<void> {
    while (this.rescanQueued && !this.stopped) {
      this.rescanQueued = false;
      try {
        await this.scanOnce();
      } catch (err) {
        this.log.error({ dir: this.dir, err }, 'manifest rescan failed');
      }
    }
  }

  private async scanOnce(): Promise<void> {
    let names: string[];
    try {
      await this.ensureWatcher();
      names = await readdir(this.dir);
    } catch (err) {
      // An unreadable directory is an unavailable source, not an empty one:
      // everything keeps its last state.
      this.reportDirProblem(`cannot list the directory: ${errorMessage(err)}`);
      return;
    }
    this.reportDirProblem(undefined);
    const paths = names.filter(isManifestName).map((n) => join(this.dir, n));
    const newProblems: Problem[] = [];
    const present = new Set<string>();
    const skipped = new Map<string, string>();
    for (const path of paths) {
      const skip = await skipReason(path);
      if (skip) {
        if (this.skipped.get(path) !== skip) this.log.warn({ file: path, reason: skip }, 'skipping an entry with a manifest name');
        skipped.set(path, skip);
        continue;
      }
      const before = this.files.get(path);
      const after = await this.readFileState(path, before);
      if (!after) continue;
      present.add(path);
      if (after === before) continue;
      const known = new Set((before?.problems ?? []).map(problemId));
      newProblems.push(...after.problems.filter((p) => !known.has(problemId(p))));
      this.files.set(path, after);
    }
    for (const path of [...this.files.keys()]) if (!present.has(path)) this.files.delete(path);
    this.skipped = skipped;
    if (this.stopped) return;
    this.publish(newProblems);
    if (!this.synced) {
      this.synced = true;
      this.emit({ type: 'synced', source: this.name });
    }
  }

  /** The file's new state, `before` itself when unchanged, or null when it is gone or not a regular file. */
  private async readFileState(path: string, before: FileState | undefined): Promise<FileState | null> {
    let identity: FileIdentity;
    try {
      const st = await stat(path);
      if (!st.isFile()) return null;
      identity = identityOf(st);
    } catch (err) {
      if (isMissing(err)) return null;
      return this.unreadable(path, before, undefined, err);
    }
    if (before && sameIdentity(before.identity, identity)) return before;
    if (identity.size > this.limits.manifestMaxBytes) return this.refused(path, before, identity, identity.size);
    let bytes: Buffer;
    try {
      // O_NONBLOCK: should the entry have become a FIFO since it was looked
      // at, open() returns at once instead of waiting for a writer.
      const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        // Identity from the open file, so what is recorded is what was read.
        const st = await handle.stat();
        if (!st.isFile()) return null;
        identity = identityOf(st);
        if (identity.size > this.limits.manifestMaxBytes) return this.refused(path, before, identity, identity.size);
        // Never more than the limit, even if the file grows while it is read.
        const cap = this.limits.manifestMaxBytes + 1;
        let buf = Buffer.allocUnsafe(Math.min(cap, identity.size + 4096));
        let n = 0;
        for (;;) {
          if (n === buf.length) {
            if (n === cap) return this.refused(path, before, identity, n);
            const bigger = Buffer.allocUnsafe(Math.min(cap, buf.length * 2));
            buf.copy(bigger, 0, 0, n);
            buf = bigger;
          }
          const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        bytes = buf.subarray(0, n);
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (isMissing(err)) return null;
      return this.unreadable(path, before, identity, err);
    }
    const parsed = await this.parser.parse(path, bytes, before?.definitions ?? [], this.limits);
    if (!parsed.ok) {
      // Keep serving what the file held when it last parsed.
      return { identity, definitions: before?.definitions ?? [], problems: [{ origin: path, reason: parsed.reason }] };
    }
    return { identity, definitions: parsed.definitions, problems: parsed.problems };
  }

  /** A file over --manifest-max-bytes: not read, its last good state stays. */
  private refused(path: string, before: FileState | undefined, identity: FileIdentity, size: number): FileState {
    const reason = `not read: ${limitExceeded('manifestMaxBytes', this.limits.manifestMaxBytes, 'bytes per file', `found ${size}${size > this.limits.manifestMaxBytes + 1 ? '' : ' or more'}`)}`;
    return { identity, definitions: before?.definitions ?? [], problems: [{ origin: path, reason }] };
  }

  private unreadable(path: string, before: FileState | undefined, identity: FileIdentity | undefined, err: unknown): FileState {
    return {
      identity: identity ?? { ino: -1, size: -1, mtimeMs: -1, ctimeMs: -1 },
      definitions: before?.definitions ?? [],
      problems: [{ origin: path, reason: `cannot be read: ${errorMessage(err)}` }],
    };
  }

  /** Resolves duplicates, applies the proxy labels, and tells the listener what changed. */
  private publish(newProblems: Problem[]): void {
    const winners = new Map<string, Definition>();
    const duplicates = new Map<string, Problem>();
    // Plain code-unit order, the same on every machine and locale.
    const paths = [...this.files.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const path of paths) {
      for (const def of this.files.get(path)!.definitions) {
        const id = `${def.kind}\0${def.key}`;
        const winner = winners.get(id);
        if (!winner) {
          winners.set(id, def);
          continue;
        }
        duplicates.set(`${id}\0${def.origin}\0${winner.origin}`, {
          origin: def.origin,
          kind: def.kind,
          key: def.key,
          reason: `${def.kind} ${def.key} is also defined in ${winner.origin}, which wins; this definition is ignored`,
        });
      }
    }
    for (const [id, problem] of duplicates) if (!this.reportedDuplicates.has(id)) newProblems.push(problem);
    this.reportedDuplicates = new Set(duplicates.keys());

    const events: SourceEvent[] = newProblems.map((p) => ({ type: 'invalid', ...p }));
    for (const [id, def] of winners) {
      if (!selectedByProxy(def.kind, def.object)) continue;
      const before = this.published.get(id);
      this.published.set(id, def);
      if (before && isDeepStrictEqual(before.object, def.object)) continue;
      events.push({ type: 'upsert', kind: def.kind, key: def.key, object: def.object, origin: def.origin });
    }
    for (const [id, def] of [...this.published]) {
      const winner = winners.get(id);
      if (winner && selectedByProxy(winner.kind, winner.object)) continue;
      this.published.delete(id);
      events.push({ type: 'delete', kind: def.kind, key: def.key, origin: winner?.origin ?? def.origin });
    }
    for (const ev of events) this.emit(ev);
  }

  private reportDirProblem(reason: string | undefined): void {
    if (reason === this.dirProblem) return;
    this.dirProblem = reason;
    if (reason) this.emit({ type: 'invalid', origin: this.dir, reason });
  }

  /** (Re)opens the directory watcher, also when the directory was replaced. */
  private async ensureWatcher(): Promise<void> {
    const ino = (await stat(this.dir)).ino;
    if (this.watcher && this.watchedDirIno === ino) return;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.stopped) return;
    try {
      const w = watch(this.dir, { persistent: true }, () => this.scheduleRescan());
      w.on('error', (err) => {
        this.log.warn({ dir: this.dir, err }, 'manifest directory watch failed; relying on the periodic rescan');
        w.close();
        if (this.watcher === w) this.watcher = undefined;
      });
      this.watcher = w;
      this.watchedDirIno = ino;
    } catch (err) {
      this.log.warn({ dir: this.dir, err }, 'cannot watch the manifest directory; relying on the periodic rescan');
    }
  }

  private scheduleRescan(): void {
    if (this.stopped || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.rescan();
    }, DEBOUNCE_MS);
  }

  private emit(ev: SourceEvent): void {
    if (this.stopped || !this.listener) return;
    try {
      this.listener(ev);
    } catch (err) {
      // The listener's bug must not stop the remaining events of the scan.
      this.log.error({ err, event: ev.type }, 'manifest source listener threw');
    }
  }
}

/**
 * Why an entry with a manifest name is not a file to read, or null when it
 * is one (or is gone: a race with its removal is as good as absent). Looks
 * with lstat and stat only; nothing is opened.
 */
async function skipReason(path: string): Promise<string | null> {
  let link;
  try {
    link = await lstat(path);
  } catch {
    return null;
  }
  let st = link;
  if (link.isSymbolicLink()) {
    try {
      st = await stat(path);
    } catch (err) {
      // A ConfigMap key whose target is not in "..data" yet looks like this for a moment.
      return isMissing(err) ? 'a symbolic link to nothing (its target does not exist)' : `a symbolic link that cannot be followed: ${errorMessage(err)}`;
    }
  }
  const via = link.isSymbolicLink() ? 'a symbolic link to ' : '';
  if (st.isFile()) return null;
  if (st.isDirectory()) return `${via}a directory: only files directly in the manifest directory are read`;
  if (st.isFIFO()) return `${via}a FIFO: never opened`;
  if (st.isCharacterDevice() || st.isBlockDevice()) return `${via}a device: never opened`;
  if (st.isSocket()) return `${via}a socket: never opened`;
  return `${via}not a regular file`;
}

function identityOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): FileIdentity {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

function problemId(p: Problem): string {
  return `${p.origin}\0${p.reason}`;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
