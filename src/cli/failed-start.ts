// What keeps serving this node after a start failed. The fatal line says why
// the start failed; an operator must also learn whether the node's services
// are still served (issue 12: a failed start said nothing about it), and the
// answer must be true: only pins that are there can serve.
import { readdirSync } from 'node:fs';
import { holdsPins } from '../dataplane/bpf/pindir.js';

export function datapathAfterFailedStart(pinDir: string): string {
  try {
    readdirSync(pinDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `nothing is pinned in ${pinDir}: no bpf datapath serves this node`;
    return `cannot tell whether a bpf datapath serves this node: ${pinDir} cannot be read (${code ?? String(err)})`;
  }
  return holdsPins(pinDir)
    ? `the bpf datapath already pinned in ${pinDir} (an earlier run's, or the running proxy's) keeps serving as it was`
    : `nothing is pinned in ${pinDir}: no bpf datapath serves this node`;
}
