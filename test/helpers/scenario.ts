// Runs a scenario file: a `kind: Scenario` header, then steps, each a
// `kind: Step` marker followed by the complete set of objects at that step.
// Every step is applied as the difference from the previous one, planned
// incrementally, and dumped; the same step is also planned from scratch and
// must give the same plan (incremental planning is checked for free).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ClusterState, type Rejection, type Warning } from '../../src/model/state.js';
import { objectKey, type KubeObject, type ObjectKind } from '../../src/model/objects.js';
import { DEFAULT_VALIDATION, type ValidationConfig } from '../../src/model/types.js';
import { dumpDesired } from '../../src/planner/dump.js';
import { DEFAULT_PLANNER_LIMITS, Planner, type PlannerConfig } from '../../src/planner/planner.js';
import { EMPTY_ID_HINTS, type DesiredDataplane } from '../../src/planner/types.js';
import { DEFAULT_MAGLEV_M } from '../../src/util/maglev-size.js';

interface Header {
  description?: string;
  node?: string;
  localAddresses?: string[];
  nodePortAddresses?: string[];
  serviceClusterIPRange?: string[];
  maglevTableSize?: number;
}

interface Step {
  title: string;
  objects: Map<string, { kind: ObjectKind; key: string; obj: KubeObject }>;
}

export function parseScenario(path: string): { header: Header; steps: Step[] } {
  const docs = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJSON() as KubeObject | null).filter((d): d is KubeObject => d !== null);
  const first = docs.shift();
  if (first?.kind !== 'Scenario') throw new Error(`${path}: the first document must be kind: Scenario`);
  const header = first as unknown as Header;
  const steps: Step[] = [];
  for (const doc of docs) {
    if (doc.kind === 'Step') {
      steps.push({ title: String((doc as { title?: unknown }).title ?? `step ${steps.length + 1}`), objects: new Map() });
      continue;
    }
    const step = steps.at(-1);
    if (!step) throw new Error(`${path}: objects before the first kind: Step`);
    const kind = doc.kind as ObjectKind;
    const key = objectKey(kind, doc);
    if (!key) throw new Error(`${path}: a ${kind} without a name`);
    step.objects.set(`${kind}/${key}`, { kind, key, obj: doc });
  }
  return { header, steps };
}

function setup(header: Header) {
  const nodeName = header.node ?? 'node1';
  const validation: ValidationConfig = { ...DEFAULT_VALIDATION, serviceClusterIPRanges: header.serviceClusterIPRange ?? [] };
  const events: string[] = [];
  /** Objects whose last good version is in force instead of the one the step lists. */
  const keptPrevious = new Set<string>();
  const reporter = {
    rejected: (r: Rejection) => {
      if (r.keptPrevious) keptPrevious.add(`${r.kind}/${r.key}`);
      events.push(`rejected ${r.kind} ${r.key}${r.keptPrevious ? ' (last good version kept)' : ''}: ${r.reason}`);
    },
    warned: (w: Warning) => events.push(`warning ${w.kind} ${w.key}: ${w.message}`),
  };
  const state = new ClusterState(nodeName, validation, reporter);
  const cfg: PlannerConfig = {
    nodeName,
    nodePortAddresses: header.nodePortAddresses ?? [],
    maglevTableSize: header.maglevTableSize ?? DEFAULT_MAGLEV_M,
    ...DEFAULT_PLANNER_LIMITS,
  };
  const planner = new Planner(cfg, EMPTY_ID_HINTS);
  planner.setLocalAddresses(header.localAddresses ?? ['172.18.0.11']);
  return { state, planner, events, keptPrevious };
}

export function runScenario(path: string): string {
  const { header, steps } = parseScenario(path);
  const live = setup(header);
  let prev = new Map<string, { kind: ObjectKind; key: string; obj: KubeObject }>();
  const out: string[] = [];
  if (header.description) out.push(`# ${header.description.trim().replace(/\n/g, '\n# ')}`);
  steps.forEach((step, i) => {
    live.events.length = 0;
    for (const [id, o] of prev) {
      if (step.objects.has(id)) continue;
      live.keptPrevious.delete(id);
      live.state.delete(o.kind, o.key);
    }
    for (const [id, o] of step.objects) {
      if (JSON.stringify(prev.get(id)?.obj) === JSON.stringify(o.obj)) continue;
      live.keptPrevious.delete(id);
      live.state.upsert(o.kind, o.key, o.obj, `${path}#${id}`);
    }
    if (i === 0) live.state.markSynced();
    const co = live.state.checkout();
    const res = live.planner.plan(live.state, co.services, { nodeChanged: co.nodeChanged });
    for (const w of res.warnings) live.events.push(`warning ${w.service}: ${w.message}`);
    const dump = dumpDesired(res.desired);

    // From scratch: the same objects, in one go.
    const fresh = setup(header);
    for (const o of step.objects.values()) fresh.state.upsert(o.kind, o.key, o.obj, 'fresh');
    fresh.state.markSynced();
    const fco = fresh.state.checkout();
    const freshDump = dumpDesired(fresh.planner.plan(fresh.state, fco.services, { nodeChanged: fco.nodeChanged }).desired);
    if (freshDump !== dump && i > 0) {
      // Conflicts settle by history (who held a port first), so only compare when none were reported;
      // a rejected object whose last good version is in force differs from scratch until it is replaced.
      const conflicts = live.events.some((e) => e.includes('already allocated') || e.includes('already served'));
      if (!conflicts && live.keptPrevious.size === 0) throw new Error(`step ${i + 1} (${step.title}): incremental plan differs from a plan from scratch\n--- incremental\n${dump}--- from scratch\n${freshDump}`);
    }
    out.push(`=== step ${i + 1}: ${step.title}`);
    for (const e of live.events) out.push(`! ${e}`);
    out.push(dump.trimEnd());
    prev = step.objects;
  });
  return out.join('\n') + '\n';
}

/**
 * Plans each step incrementally, as runScenario does, and hands the plan to
 * `visit` before the next step is planned (the planner may reuse its maps).
 * For tests that render plans into a dataplane (the nftables tracer).
 */
export function forEachScenarioStep(path: string, visit: (step: { index: number; title: string; desired: DesiredDataplane; changed: ReadonlySet<string> }) => void): void {
  const { header, steps } = parseScenario(path);
  const live = setup(header);
  let prev = new Map<string, { kind: ObjectKind; key: string; obj: KubeObject }>();
  steps.forEach((step, i) => {
    for (const [id, o] of prev) if (!step.objects.has(id)) live.state.delete(o.kind, o.key);
    for (const [id, o] of step.objects) {
      if (JSON.stringify(prev.get(id)?.obj) !== JSON.stringify(o.obj)) live.state.upsert(o.kind, o.key, o.obj, `${path}#${id}`);
    }
    if (i === 0) live.state.markSynced();
    const co = live.state.checkout();
    const res = live.planner.plan(live.state, co.services, { nodeChanged: co.nodeChanged });
    visit({ index: i, title: step.title, desired: res.desired, changed: res.changed });
    prev = step.objects;
  });
}
