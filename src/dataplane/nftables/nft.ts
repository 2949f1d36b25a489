// The thin edge: runs `nft` in the proxy's own network namespace (the proxy
// runs in the node's namespace already). Everything else in this folder is pure.
import { runTool } from '../run-tool.js';
import { NFT_FAMILIES, TABLE, type NftFamily } from './names.js';
import type { Existing } from './transaction.js';

export interface NftResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs nft with `input` on stdin (for `-f -`). Never rejects: a missing binary is a failed result. */
export type NftRunner = (args: readonly string[], input?: string) => Promise<NftResult>;

export const NFT_BIN = process.env.BPFPROXY_NFT ?? 'nft';

export const runNft: NftRunner = (args, input) => runTool(NFT_BIN, args, input);

/** The names in our table as the kernel has them (`nft -t`: no set elements). An absent table is empty. */
export async function listExisting(nft: NftRunner, family: NftFamily): Promise<Existing> {
  const existing: Existing = { chains: new Set(), sets: new Set(), maps: new Set() };
  const r = await nft(['-t', 'list', 'table', family, TABLE]);
  if (!r.ok) {
    if (/No such file or directory/.test(r.stderr)) return existing;
    throw new Error(`nft list table ${family} ${TABLE}: ${r.stderr.trim()}`);
  }
  for (const m of r.stdout.matchAll(/^\s*(chain|set|map) (\S+) \{/gm)) {
    const kind = m[1] as 'chain' | 'set' | 'map';
    existing[kind === 'chain' ? 'chains' : kind === 'set' ? 'sets' : 'maps'].add(m[2]!);
  }
  return existing;
}

/** Removes both of our tables. `add` first so the delete cannot fail on an absent table (nft 1.0.6 has no `destroy`). */
export function cleanupText(): string {
  return NFT_FAMILIES.map((f) => `add table ${f} ${TABLE}\ndelete table ${f} ${TABLE}\n`).join('');
}
