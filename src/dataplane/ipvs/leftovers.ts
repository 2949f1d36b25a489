// What the ipvs mode leaves on a node, removed when another mode took over
// (src/dataplane/mode-cleanup.ts): what `bpfproxy cleanup` removes for it
// (cleanup.ts), as a list for the log line.
import type { ModeLeftovers } from '../mode-cleanup.js';
import { cleanupIpvs } from './cleanup.js';

export async function removeIpvsLeftovers(): Promise<ModeLeftovers> {
  const r = await cleanupIpvs();
  const removed = [
    r.virtualServers > 0 ? `${r.virtualServers} virtual servers` : '',
    r.device === 'removed' ? 'its dummy device' : '',
    r.chains > 0 ? `${r.chains} iptables chains` : '',
    r.sets > 0 ? `${r.sets} ipsets` : '',
  ].filter(Boolean);
  return { removed, error: r.ok ? '' : r.error };
}
