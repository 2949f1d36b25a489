// The containment self-check: every lab namespace routes only within the lab's
// address plan (no default route, nothing wider), carries only plan addresses,
// and the root namespace has the same interfaces and routes as before the lab.
import { ipJsonBatch, forEachLimited, LabError } from './commands.js';
import { snapshotRoot, type RootSnapshot } from './host.js';
import { isContainedPrefix } from './plan.js';

export interface ContainmentSubject {
  runId: string;
  namespaces: readonly string[];
  /** The root namespace before the lab existed. */
  rootBefore: RootSnapshot;
}

/** Every way the lab breaks containment, one sentence each; empty when contained. */
export async function containmentViolations(subject: ContainmentSubject): Promise<string[]> {
  const violations: string[] = [];
  await forEachLimited(subject.namespaces, 16, async (ns) => {
    violations.push(...await namespaceViolations(ns));
  });
  violations.push(...rootViolations(subject.rootBefore, await snapshotRoot()));
  return violations.sort();
}

export async function assertContainedSubject(subject: ContainmentSubject): Promise<void> {
  const violations = await containmentViolations(subject);
  if (violations.length > 0) throw new LabError(`lab ${subject.runId} is not contained: ${violations.join('; ')}`);
}

async function namespaceViolations(ns: string): Promise<string[]> {
  const out: string[] = [];
  // `root 0.0.0.0/0` selects every IPv4 route (default included) and sets the family.
  const [v4, v6, addrs] = await ipJsonBatch(ns, ['route show table all root 0.0.0.0/0', 'route show table all root ::/0', 'addr show']);
  for (const route of [...asObjects(v4), ...asObjects(v6)]) {
    const dst = typeof route.dst === 'string' ? route.dst : '?';
    const where = `netns ${ns}: route ${dst}${typeof route.dev === 'string' ? ` dev ${route.dev}` : ''}`;
    if (dst === 'default') out.push(`${where} is a default route`);
    else if (!isContainedPrefix(dst)) out.push(`${where} leads outside the lab's address plan`);
    const gateways = [route.gateway, ...asObjects(route.nexthops).map((h) => h.gateway)].filter((g): g is string => typeof g === 'string');
    for (const gw of gateways) if (!isContainedPrefix(gw)) out.push(`${where} goes via ${gw}, outside the lab's address plan`);
  }
  for (const link of asObjects(addrs)) {
    for (const a of asObjects(link.addr_info)) {
      if (typeof a.local === 'string' && !isContainedPrefix(a.local)) {
        out.push(`netns ${ns}: address ${a.local} on ${String(link.ifname)} is outside the lab's address plan`);
      }
    }
  }
  return out;
}

export function rootViolations(before: RootSnapshot, after: RootSnapshot): string[] {
  const diff = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
  return [
    ...diff(after.links, before.links).map((l) => `root namespace: interface "${l}" appeared`),
    ...diff(before.links, after.links).map((l) => `root namespace: interface "${l}" vanished`),
    ...diff(after.routes, before.routes).map((r) => `root namespace: route "${r}" appeared`),
    ...diff(before.routes, after.routes).map((r) => `root namespace: route "${r}" vanished`),
  ];
}

function asObjects(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
}
