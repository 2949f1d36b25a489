// `bpfproxy cleanup` for the nftables mode: removes both of our tables.
import type { ModeLeftovers } from '../mode-cleanup.js';
import { NFT_FAMILIES, TABLE } from './names.js';
import { cleanupText, runNft, type NftRunner } from './nft.js';

/** True when nft ran (the tables are gone, or never existed); false when nft is missing or failed. */
export async function cleanupNftables(nft: NftRunner = runNft): Promise<{ ok: boolean; error: string }> {
  const r = await nft(['-f', '-'], cleanupText());
  return { ok: r.ok, error: r.stderr.trim() };
}

/** After a change of mode (src/dataplane/mode-cleanup.ts): our tables, named, if there were any. */
export async function removeNftablesLeftovers(nft: NftRunner = runNft): Promise<ModeLeftovers> {
  const listed = await nft(['list', 'tables']);
  // No nft, or a kernel without nf_tables: nothing the nftables mode could have made.
  if (!listed.ok) return { removed: [], error: '' };
  const ours = new Set(NFT_FAMILIES.map((f) => `table ${f} ${TABLE}`));
  const tables = listed.stdout.split('\n').map((l) => l.trim()).filter((l) => ours.has(l));
  if (tables.length === 0) return { removed: [], error: '' };
  const r = await cleanupNftables(nft);
  return { removed: r.ok ? tables : [], error: r.error };
}
