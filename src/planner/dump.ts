// A readable, deterministic text form of a DesiredDataplane, for golden files
// and for `bpfproxy` debugging. IDs are left out: they depend on history, and
// are tested on their own.
import { hostPort } from '../util/ip.js';
import { maglevTable } from './maglev.js';
import { hasExternalFrontends, type BackendSet, type DesiredDataplane, type PlannedService } from './types.js';

function backends(set: BackendSet): string {
  if (set.backends.length === 0) return `(none: ${set.onEmpty})`;
  return set.backends
    .map((b) => {
      const tags = [b.nodeName ?? 'no node', ...(b.local ? ['local'] : []), ...(b.terminating ? ['terminating'] : [])];
      return `${hostPort(b.address, b.port)} [${tags.join(', ')}]`;
    })
    .join(', ');
}

export function dumpService(s: PlannedService): string[] {
  const lines = [`${s.key} ${s.protocol}`];
  for (const f of s.frontends) lines.push(`  frontend ${f.kind} ${hostPort(f.address, f.port)}`);
  lines.push(`  internal: ${backends(s.internal)}`);
  if (hasExternalFrontends(s.frontends)) {
    lines.push(`  external: ${s.external === s.internal ? '= internal' : backends(s.external)}`);
    lines.push(`  cluster:  ${s.cluster === s.internal ? '= internal' : s.cluster === s.external ? '= external' : backends(s.cluster)}`);
  }
  if (s.affinityTimeout !== null) lines.push(`  affinity: ClientIP ${s.affinityTimeout}s`);
  if (s.sourceRanges.length > 0) lines.push(`  source ranges: ${s.sourceRanges.join(', ')}`);
  if (s.preserveSource) lines.push('  external traffic keeps its source address');
  if (s.maglev) {
    const keys = s.maglev.backends.map((b) => hostPort(b.address, b.port));
    const counts = new Array<number>(keys.length).fill(0);
    for (const i of maglevTable(keys, s.maglev.m)) counts[i]!++;
    const spread = keys.map((k, i) => `${k}=${counts[i]}`).join(', ');
    lines.push(`  maglev: M=${s.maglev.m}${keys.length ? `, slots ${spread}` : ', no backends'}`);
  }
  if (s.topology) lines.push(`  topology: ${s.topology}`);
  return lines;
}

export function dumpDesired(d: DesiredDataplane): string {
  const lines: string[] = [];
  const np = [...d.nodePortAddresses.IPv4, ...d.nodePortAddresses.IPv6];
  if (np.length > 0) lines.push(`nodeport addresses: ${np.join(', ')}`);
  for (const key of [...d.services.keys()].sort()) lines.push(...dumpService(d.services.get(key)!));
  for (const key of [...d.healthChecks.keys()].sort()) {
    const h = d.healthChecks.get(key)!;
    lines.push(`health check ${key} port ${h.port}: ${h.localEndpoints} local endpoints`);
  }
  return lines.join('\n') + '\n';
}
