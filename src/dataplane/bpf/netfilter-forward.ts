// Whether the node's netfilter would do anything to forwarded traffic. The
// local redirect (bpf/lib/redirect-local.h) sends a request past the node's
// stack; its reply still crosses the stack. That is only safe when netfilter
// has nothing to say about forwarded packets: measured in the lab
// (docs/findings.md), one `-A FORWARD -m conntrack --ctstate INVALID -j DROP`
// (kube-proxy's iptables mode has it, Calico's iptables policy chains too)
// drops every redirected TCP flow, because conntrack never saw the SYN and
// judges the pod's SYN-ACK invalid; and a NetworkPolicy enforced in the
// node's iptables would never see the redirected request at all. So the
// redirect is on only while no rule hooks the forward path (prerouting,
// forward, postrouting) in nftables or in the legacy iptables tables.
//
// Read asynchronously through the caller's runner (off-loop-exec.ts): the
// gate is re-read when `nft monitor` reports a ruleset change and on the
// periodic safety refresh (local-redirect.ts), never on the event loop.
import { readFile } from 'node:fs/promises';
import type { Exec } from './off-loop-exec.js';

const FORWARD_PATH_HOOKS = new Set(['prerouting', 'forward', 'postrouting']);

/** From `nft -j list ruleset`: each base chain on the forward path with rules (or a drop policy), as "family table chain". */
export function nftForwardPathChains(json: string): string[] {
  const items = (JSON.parse(json) as { nftables?: Record<string, Record<string, unknown>>[] }).nftables ?? [];
  const chains = new Map<string, { rules: number; drop: boolean }>();
  const id = (o: Record<string, unknown>, chain: unknown) => `${String(o.family)} ${String(o.table)} ${String(chain)}`;
  for (const it of items) {
    const c = it.chain;
    if (c && typeof c.hook === 'string' && FORWARD_PATH_HOOKS.has(c.hook)) chains.set(id(c, c.name), { rules: 0, drop: c.policy === 'drop' });
  }
  for (const it of items) {
    const r = it.rule;
    const c = r && chains.get(id(r, r.chain));
    if (c) c.rules++;
  }
  return [...chains].filter(([, c]) => c.rules > 0 || c.drop).map(([k, c]) => `${k} (${c.rules} rules${c.drop ? ', policy drop' : ''})`);
}

/** From `iptables-legacy-save`: the built-in forward-path chains that hold rules or drop by policy. */
export function legacyForwardPathChains(save: string): string[] {
  const builtin: Record<string, string[]> = {
    raw: ['PREROUTING'], mangle: ['PREROUTING', 'FORWARD', 'POSTROUTING'], nat: ['PREROUTING', 'POSTROUTING'], filter: ['FORWARD'],
  };
  const out = new Set<string>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const chains = builtin[table] ?? [];
    const rule = line.match(/^-A (\S+) /);
    if (rule && chains.includes(rule[1]!)) out.add(`${table} ${rule[1]}`);
    const policy = line.match(/^:(\S+) DROP /);
    if (policy && chains.includes(policy[1]!)) out.add(`${table} ${policy[1]} (policy DROP)`);
  }
  return [...out];
}

/**
 * Why forwarded traffic would meet netfilter in this network namespace (so
 * the local redirect must stay off), or null when nothing hooks it. A tool
 * that fails counts as "cannot tell": the redirect stays off.
 */
export async function netfilterForwardProblem(exec: Exec): Promise<string | null> {
  const found: string[] = [];
  try {
    found.push(...nftForwardPathChains((await exec(['nft', '-j', 'list', 'ruleset'])).stdout).map((c) => `nftables ${c}`));
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') return `cannot read the nftables ruleset: ${(err as Error).message.split('\n')[0]}`;
  }
  for (const [names, save] of [['/proc/net/ip_tables_names', 'iptables-legacy-save'], ['/proc/net/ip6_tables_names', 'ip6tables-legacy-save']] as const) {
    if ((await readFile(names, 'utf8').catch(() => '')).trim() === '') continue;
    try {
      found.push(...legacyForwardPathChains((await exec([save])).stdout).map((c) => `${save.replace('-save', '')} ${c}`));
    } catch (err) {
      return `cannot read the legacy ${save.startsWith('ip6') ? 'ip6tables' : 'iptables'} tables: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  return found.length > 0 ? `the node's netfilter hooks forwarded traffic (${found.join('; ')}): a request that skipped it would meet it on the reply (conntrack INVALID drops, policies)` : null;
}
