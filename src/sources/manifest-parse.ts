// What the text of one manifest file defines: the limits checked before the
// parse (prescan.ts), the YAML parse, the object limits (limits.ts), then each
// document as an object definition or a problem. Pure; it runs in the parse
// worker (parse-worker.ts), off the event loop, and in tests directly.
//
// Origins name the file and the 0-based document index: "dir/svc.yaml#1", and
// "dir/list.yaml#0.items[3]" for an item of a `kind: List`.
import { parseAllDocuments } from 'yaml';
import { clip } from '../util/clip.js';
import { DEFAULT_INPUT_LIMITS, limitExceeded, type InputLimits } from '../util/input-limits.js';
import { endpointsProblem, objectLimitProblem } from './limits.js';
import { prescanYaml } from './prescan.js';
import { API_VERSIONS, OBJECT_KINDS, objectKey, type KubeObject, type ObjectKey, type ObjectKind } from './types.js';

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

/**
 * Parses one file. `previous` is what the file defined before: a document that
 * names a known object but is otherwise unacceptable (wrong apiVersion) keeps
 * that object's last good definition, as a rejected `kubectl apply` would.
 */
export function parseManifest(path: string, text: string, previous: readonly Definition[], limits: InputLimits = DEFAULT_INPUT_LIMITS): ParsedManifest {
  const definitions: Definition[] = [];
  const problems: Problem[] = [];
  const tooBig = prescanYaml(text, limits);
  if (tooBig) return { ok: false, reason: `not parsed: ${tooBig}` };
  const docs = Array.from(parseAllDocuments(text));
  if (docs.length > limits.manifestMaxDocuments) {
    return { ok: false, reason: `not read: ${limitExceeded('manifestMaxDocuments', limits.manifestMaxDocuments, 'YAML documents per file', `found ${docs.length}`)}` };
  }
  for (const [index, doc] of docs.entries()) {
    const error = doc.errors[0];
    if (error) return { ok: false, reason: `does not parse: ${clip(firstLine(error.message))} (document ${index})` };
    let value: unknown;
    try {
      // maxAliasCount: the library's own bound on alias expansion ("billion laughs").
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      return { ok: false, reason: `does not parse: ${clip(errorMessage(err))} (document ${index})` };
    }
    if (value === null || value === undefined) continue;
    const origin = `${path}#${index}`;
    // The whole file keeps its last good state, as when it does not parse.
    const over = objectLimitProblem(value, limits);
    if (over) return { ok: false, reason: `not read: ${over} (document ${index})` };
    if (isRecord(value) && value.kind === 'List') {
      if (!Array.isArray(value.items)) {
        problems.push({ origin, kind: 'List', reason: 'a List without an items array' });
        continue;
      }
      value.items.forEach((item: unknown, j: number) =>
        collectObject(item, `${origin}.items[${j}]`, previous, definitions, problems, limits),
      );
    } else {
      collectObject(value, origin, previous, definitions, problems, limits);
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
  limits: InputLimits,
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
    const reason = kindText === undefined ? `no kind (expected one of ${expected})` : `unknown kind ${JSON.stringify(clip(kindText))} (expected one of ${expected})`;
    const problem: Problem = { origin, reason };
    if (kindText !== undefined) problem.kind = kindText;
    if (name !== undefined) problem.key = clip(name);
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
  const tooMany = endpointsProblem(value, limits);
  if (tooMany) {
    // A List item: the rest of the List stands; this object keeps its last good definition.
    problems.push({ origin, kind, key: clip(key), reason: `not read: ${tooMany}` });
    const lastGood = previous.find((d) => d.kind === kind && d.key === key);
    if (lastGood) definitions.push(lastGood);
    return;
  }
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

/** The yaml library's default; named so it is a decision, not an accident. */
const MAX_ALIAS_COUNT = 100;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.replace(/:$/, '');
}
