// Changing mode removes everything the previous mode installed. Run once the
// mode in force has programmed the node (after its first successful sync,
// not at open: until then the old mode's rules or programs are what serves
// the node's traffic, and removing them first would open a window in which
// nothing does). It never touches the mode in force, and each mode removes
// only what bpfproxy made, as `bpfproxy cleanup` does. The removers are a
// table in select.ts, the one place that reaches into the modes:
// - bpf (bpf/leftovers.ts): the pins and links under --bpf-fs, only when the
//   directory is on bpffs and no other bpfproxy holds its lock;
// - nftables (nftables/cleanup.ts): the `ip bpfproxy` and `ip6 bpfproxy` tables;
// - iptables (iptables/cleanup.ts): our chains and the jumps with the bpfproxy comment;
// - ipvs (ipvs/leftovers.ts): what the ipvs mode's own cleanup removes.
import type { Logger } from '../util/log.js';
import { PROXY_MODES, type ProxyMode } from '../util/modes.js';

/** What one mode's removal found: the things removed ([] when the mode left nothing), or why it could not look. */
export interface ModeLeftovers {
  removed: string[];
  /** "" when it worked. */
  error: string;
}

export interface LeftoverContext {
  /** --bpf-fs. */
  pinDir: string;
}

export type LeftoverRemover = (ctx: LeftoverContext, log: Logger) => Promise<ModeLeftovers>;

/** Removes what every mode but `inForce` left on this node, logging each mode that left something. */
export async function removeLeftovers(
  inForce: ProxyMode,
  removers: Readonly<Partial<Record<ProxyMode, LeftoverRemover>>>,
  ctx: LeftoverContext,
  log: Logger,
): Promise<(ModeLeftovers & { mode: ProxyMode })[]> {
  const out: (ModeLeftovers & { mode: ProxyMode })[] = [];
  for (const mode of PROXY_MODES) {
    const remove = removers[mode];
    if (mode === inForce || !remove) continue;
    let r: ModeLeftovers;
    try {
      r = await remove(ctx, log);
    } catch (err) {
      r = { removed: [], error: (err as Error).message };
    }
    out.push({ mode, ...r });
    if (r.error) log.warn({ mode, inForce, error: r.error }, `could not remove what the ${mode} mode left on this node`);
    else if (r.removed.length > 0) log.info({ mode, inForce, removed: r.removed.slice(0, 20), count: r.removed.length }, `removed what the ${mode} mode left on this node`);
  }
  return out;
}
