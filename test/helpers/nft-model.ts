// A fake `nft` for the nftables dataplane: applies each `nft -f -` text to a
// RulesetModel (atomically, enforcing the ordering rules nft enforces) and
// answers `nft -t list table` from it. No root, no kernel.
import { pino } from 'pino';
import { NftablesDataplane } from '../../src/dataplane/nftables/dataplane.js';
import { TABLE } from '../../src/dataplane/nftables/names.js';
import type { NftResult, NftRunner } from '../../src/dataplane/nftables/nft.js';
import type { NftConfig } from '../../src/dataplane/nftables/objects.js';
import { RulesetModel } from '../../src/dataplane/nftables/ruleset.js';

export const TEST_NFT_CONFIG: NftConfig = { clusterCidrs: { ip: ['10.244.0.0/16'], ip6: ['fd00:244::/32'] } };

export interface FakeNft {
  model: RulesetModel;
  run: NftRunner;
  /** Every call: args and the text given. */
  calls: { args: readonly string[]; input: string }[];
  /** Make the next `-f` fail with this stderr. */
  failNext: string | null;
}

export function fakeNft(model = new RulesetModel()): FakeNft {
  const fake: FakeNft = {
    model,
    calls: [],
    failNext: null,
    run: async (args, input = ''): Promise<NftResult> => {
      fake.calls.push({ args, input });
      if (args[0] === '-f') {
        if (fake.failNext !== null) {
          const stderr = fake.failNext;
          fake.failNext = null;
          return { ok: false, stdout: '', stderr };
        }
        try {
          model.apply(input);
          return { ok: true, stdout: '', stderr: '' };
        } catch (err) {
          return { ok: false, stdout: '', stderr: (err as Error).message };
        }
      }
      if (args.join(' ').startsWith('-t list table')) {
        const t = model.table(args[3]!);
        if (!t) return { ok: false, stdout: '', stderr: `Error: No such file or directory\nlist table ${args[3]} ${TABLE}` };
        const lines = [`table ${args[3]} ${TABLE} {`];
        for (const [n, s] of t.sets) lines.push(`\t${s.kind} ${n} {`, '\t}');
        for (const n of t.chains.keys()) lines.push(`\tchain ${n} {`, '\t}');
        lines.push('}');
        return { ok: true, stdout: lines.join('\n') + '\n', stderr: '' };
      }
      return { ok: false, stdout: '', stderr: `fake nft: ${args.join(' ')} not handled` };
    },
  };
  return fake;
}

export const silentLog = pino({ level: 'silent' });

export function modelDataplane(fake = fakeNft(), config = TEST_NFT_CONFIG): { dp: NftablesDataplane; fake: FakeNft } {
  return { dp: new NftablesDataplane({ config, log: silentLog, nft: fake.run }), fake };
}
