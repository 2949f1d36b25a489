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
//
// Origins name the file and the 0-based document index: "dir/svc.yaml#1", and
// "dir/list.yaml#0.items[3]" for an item of a `kind: List`.
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { Logger } from '../util/log.js';
import { selectedByProxy } from './selection.js';
import {
  API_VERSIONS,
  OBJECT_KINDS,
  objectKey,
  type KubeObject,
  type ObjectKey,
  type ObjectKind,
  type Source,
  type SourceEvent,
  type SourceListener,
} from './types.js';

export interface ManifestSourceOptions {
  dir: string;
  log: Logger;
  /** Period of the full rescan that catches changes inotify did not report. */
  rescanIntervalMs?: number;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
/** Editors and atomic writers produce bursts of events; one rescan per burst. */
const DEBOUNCE_MS = 20;
const DEFAULT_RESCAN_INTERVAL_MS = 2000;

/** One object as a file defines it. */
export interface Definition {
  kind: ObjectKind;
  key: ObjectKey;
  object: KubeObject;
  origin: string;
}

/** Something in a file that could not become an object; becomes one `invalid` event. */
export interface Problem {
  origin: string;
  kind?: string;
  key?: string;
  reason: string;
}

/** What the text of one file defines. */
export type ParsedManifest =
  | { ok: true; definitions: Definition[]; problems: Problem[] }
  | { ok: false; reason: string };

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

/**
 * Parses one file. `previous` is what the file defined before: a document that
 * names a known object but is otherwise unacceptable (wrong apiVersion) keeps
 * that object's last good definition, as a rejected `kubectl apply` would.
 */
export function parseManifest(path: string, text: string, previous: readonly Definition[]): ParsedManifest {
  const definitions: Definition[] = [];
  const problems: Problem[] = [];
  const docs = Array.from(parseAllDocuments(text));
  for (const [index, doc] of docs.entries()) {
    const error = doc.errors[0];
    if (error) return { ok: false, reason: `does not parse: ${firstLine(error.message)} (document ${index})` };
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (err) {
      return { ok: false, reason: `does not parse: ${errorMessage(err)} (document ${index})` };
    }
    if (value === null || value === undefined) continue;
    const origin = `${path}#${index}`;
    if (isRecord(value) && value.kind === 'List') {
      if (!Array.isArray(value.items)) {
        problems.push({ origin, kind: 'List', reason: 'a List without an items array' });
        continue;
      }
      value.items.forEach((item: unknown, j: number) =>
        collectObject(item, `${origin}.items[${j}]`, previous, definitions, problems),
      );
    } else {
      collectObject(value, origin, previous, definitions, problems);
    }
  }
  return { ok: true, definitions, problems };
}

function collectObject(
  value: unknown,
  origin: string,
  previous: readonly Definition[],
  definitions: Definition[],
  problems: Problem[],
): void {
  if (!isRecord(value)) {
    problems.push({ origin, reason: 'the document is not an object' });
    return;
  }
  const kindText = typeof value.kind === 'string' ? value.kind : undefined;
  const metadata = isRecord(value.metadata) ? value.metadata : undefined;
  const name = typeof metadata?.name === 'string' && metadata.name !== '' ? metadata.name : undefined;
  const kind = OBJECT_KINDS.find((k) => k === kindText);
  if (!kind) {
    const expected = OBJECT_KINDS.join(', ');
    const reason = kindText === undefined ? `no kind (expected one of ${expected})` : `unknown kind "${kindText}" (expected one of ${expected})`;
    const problem: Problem = { origin, reason };
    if (kindText !== undefined) problem.kind = kindText;
    if (name !== undefined) problem.key = name;
    problems.push(problem);
    return;
  }
  if (!metadata || !name) {
    problems.push({ origin, kind, reason: `${kind} without metadata.name` });
    return;
  }
  const namespace = metadata.namespace;
  if (kind !== 'Node' && namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    problems.push({ origin, kind, key: name, reason: `${kind} ${name}: metadata.namespace is not a string` });
    return;
  }
  const object = normalize(kind, value, metadata);
  const key = objectKey(kind, object)!;
  if (value.apiVersion !== API_VERSIONS[kind]) {
    problems.push({
      origin,
      kind,
      key,
      reason: `${kind} ${key}: apiVersion is ${JSON.stringify(value.apiVersion ?? null)}, expected "${API_VERSIONS[kind]}"`,
    });
    const lastGood = previous.find((d) => d.kind === kind && d.key === key);
    if (lastGood) definitions.push(lastGood);
    return;
  }
  definitions.push({ kind, key, object, origin });
}

/** What the API server would store: namespaced objects get "default", Nodes no namespace. */
function normalize(kind: ObjectKind, value: Record<string, unknown>, metadata: Record<string, unknown>): KubeObject {
  const meta: Record<string, unknown> = { ...metadata };
  if (kind === 'Node') delete meta.namespace;
  else if (!meta.namespace) meta.namespace = 'default';
  return { ...value, metadata: meta } as KubeObject;
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

  constructor(opts: ManifestSourceOptions) {
    this.dir = opts.dir;
    this.log = opts.log;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener) throw new Error(`manifest source ${this.dir}: already started`);
    let isDir: boolean;
    try {
      isDir = (await stat(this.dir)).isDirectory();
    } catch (err) {
      throw new Error(`manifest directory ${this.dir} cannot be used: ${errorMessage(err)}`, { cause: err });
    }
    if (!isDir) throw new Error(`manifest directory ${this.dir} is not a directory`);
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
    for (const path of paths) {
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
      // Gone since readdir, or a dangling symlink (a ConfigMap key whose
      // target is not in "..data" yet): as good as absent.
      if (isMissing(err)) return null;
      return this.unreadable(path, before, undefined, err);
    }
    if (before && sameIdentity(before.identity, identity)) return before;
    let text: string;
    try {
      // Identity from the open file, so what is recorded is what was read.
      const handle = await open(path, 'r');
      try {
        identity = identityOf(await handle.stat());
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (isMissing(err)) return null;
      return this.unreadable(path, before, identity, err);
    }
    const parsed = parseManifest(path, text, before?.definitions ?? []);
    if (!parsed.ok) {
      // Keep serving what the file held when it last parsed.
      return { identity, definitions: before?.definitions ?? [], problems: [{ origin: path, reason: parsed.reason }] };
    }
    return { identity, definitions: parsed.definitions, problems: parsed.problems };
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

function identityOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): FileIdentity {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

function problemId(p: Problem): string {
  return `${p.origin}\0${p.reason}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.replace(/:$/, '');
}
