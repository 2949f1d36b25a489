// The one place that picks and opens the dataplane for --proxy-mode, and owns
// the fallback decision. Modes are a table; adding one (nftables, iptables,
// ipvs) is adding its entry to MODES.
//
// The rule: the mode asked for is opened if it can run here. If it cannot
// (its probe says why, or opening it fails), the proxy says why in one log
// line and tries the next mode in PROXY_MODES order (bpf, nftables, iptables,
// ipvs) that is built, unless fallback is off (--no-fallback), in which case
// that reason is fatal. A mode that is not built is never "asked for" silently:
// naming it in --proxy-mode is an error.
import type { Logger } from '../util/log.js';
import { PROXY_MODES, type ProxyMode } from '../util/modes.js';
import { removeBpfLeftovers } from './bpf/leftovers.js';
import { bpfMode } from './bpf/mode.js';
import { ConntrackJanitor, usesNetfilterConntrack } from './conntrack/janitor.js';
import type { ConntrackClearer } from './conntrack/netlink.js';
import { removeIptablesLeftovers } from './iptables/cleanup.js';
import { removeIpvsLeftovers } from './ipvs/leftovers.js';
import { removeLeftovers, type LeftoverContext, type LeftoverRemover } from './mode-cleanup.js';
import { removeNftablesLeftovers } from './nftables/cleanup.js';
import { iptablesMode } from './iptables/mode.js';
import { ipvsMode } from './ipvs/mode.js';
import { nftablesMode } from './nftables/mode.js';
import { NoFallbackError, type Dataplane, type DataplaneMode, type DataplaneOptions, type ModeCapabilities, type ModeLimits } from './types.js';

/** The built modes. PROXY_MODES, not this list, gives the fallback order. */
export const MODES: readonly DataplaneMode[] = [bpfMode, nftablesMode, iptablesMode, ipvsMode];

/** How each mode's state is removed from a node when another mode took over (mode-cleanup.ts). */
const LEFTOVER_REMOVERS: Readonly<Record<ProxyMode, LeftoverRemover>> = {
  bpf: (ctx, log) => removeBpfLeftovers(ctx.pinDir, log),
  nftables: () => removeNftablesLeftovers(),
  iptables: () => removeIptablesLeftovers(),
  ipvs: () => removeIpvsLeftovers(),
};

/** Removes what every mode but the one in force left on this node; logs what it removed. */
export function removeOtherModes(inForce: ProxyMode, ctx: LeftoverContext, log: Logger): ReturnType<typeof removeLeftovers> {
  return removeLeftovers(inForce, LEFTOVER_REMOVERS, ctx, log);
}

export type { ConntrackClearer } from './conntrack/netlink.js';

/** Conntrack hygiene after each sync (conntrack/janitor.ts) for the modes whose service NAT is netfilter's; null for the others. */
export function conntrackHygiene(mode: ProxyMode, log: Logger, clear?: ConntrackClearer): ConntrackJanitor | null {
  return usesNetfilterConntrack(mode) ? new ConntrackJanitor(log, clear) : null;
}

export interface SelectOptions extends DataplaneOptions {
  /** Try the next mode when the one asked for cannot run (false: --no-fallback). */
  fallback: boolean;
}

export interface OpenedDataplane {
  dataplane: Dataplane;
  /** The mode in use, which is not the one asked for after a fallback. */
  mode: ProxyMode;
  /** Why this mode: asked for, or the fallback and what made it necessary. */
  reason: string;
  capabilities: ModeCapabilities;
  limits: ModeLimits;
}

/** The opened dataplane, or why this mode cannot run here. */
async function tryOpen(mode: DataplaneMode, options: DataplaneOptions, log: Logger): Promise<{ dataplane: Dataplane } | { why: string }> {
  try {
    const why = await mode.probe(options);
    if (why !== null) return { why };
    return { dataplane: await mode.open(options, log) };
  } catch (err) {
    if (err instanceof NoFallbackError) throw err;
    return { why: (err as Error).message };
  }
}

function list(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * Opens the dataplane for `mode`, falling back as described above. Throws an
 * Error whose message is the one line to print: which mode could not run, why,
 * and why there is nothing (more) to fall back to.
 */
export async function openDataplane(mode: ProxyMode, options: SelectOptions, log: Logger, modes: readonly DataplaneMode[] = MODES): Promise<OpenedDataplane> {
  const built = new Map(modes.map((m) => [m.name, m]));
  if (!built.has(mode)) {
    throw new Error(`--proxy-mode ${mode} is not built yet; bpfproxy implements ${list([...built.keys()])} (${list(PROXY_MODES.filter((m) => !built.has(m)))} come next)`);
  }
  // The mode asked for, then the built modes after it in fallback order.
  const chain = PROXY_MODES.slice(PROXY_MODES.indexOf(mode)).flatMap((name) => built.get(name) ?? []);
  const failures: string[] = [];
  for (const [i, candidate] of chain.entries()) {
    const r = await tryOpen(candidate, options, log);
    if ('dataplane' in r) {
      const reason = failures.length === 0 ? `--proxy-mode ${mode}` : `fallback: ${failures.join('; ')}`;
      return { dataplane: r.dataplane, mode: candidate.name, reason, capabilities: candidate.capabilities, limits: candidate.limits };
    }
    const line = `the ${candidate.name} dataplane cannot run here: ${r.why}`;
    failures.push(line);
    if (!options.fallback) throw new Error(`${line} (--no-fallback: not trying another mode)`);
    const next = chain[i + 1];
    if (next) {
      log.warn({ mode: candidate.name, fallback: next.name, reason: r.why }, `${line}; falling back to ${next.name}`);
      continue;
    }
    const unbuilt = PROXY_MODES.slice(PROXY_MODES.indexOf(candidate.name) + 1).filter((m) => !built.has(m));
    const nowhere = unbuilt.length > 0
      ? `no mode to fall back to: ${list(unbuilt)} ${unbuilt.length === 1 ? 'is' : 'are'} not built yet`
      : 'no mode left to fall back to';
    throw new Error(failures.length > 1 ? `${line}; ${nowhere} (earlier: ${failures.slice(0, -1).join('; ')})` : `${line}; ${nowhere}`);
  }
  throw new Error(`--proxy-mode ${mode}: no mode to open`); // Unreachable: the chain starts with `mode`.
}
