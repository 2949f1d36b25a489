// `bpfproxy cleanup` for the nftables mode: removes both of our tables.
import { cleanupText, runNft, type NftRunner } from './nft.js';

/** True when nft ran (the tables are gone, or never existed); false when nft is missing or failed. */
export async function cleanupNftables(nft: NftRunner = runNft): Promise<{ ok: boolean; error: string }> {
  const r = await nft(['-f', '-'], cleanupText());
  return { ok: r.ok, error: r.stderr.trim() };
}
