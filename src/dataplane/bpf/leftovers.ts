// What the bpf mode leaves on a node, removed when another mode took over
// (src/dataplane/mode-cleanup.ts): the pins and links under --bpf-fs. Only a
// directory on bpffs is touched (rm -r elsewhere could remove someone's
// files), and only when no other bpfproxy holds its lock.
import { statfsSync } from 'node:fs';
import type { Logger } from '../../util/log.js';
import type { ModeLeftovers } from '../mode-cleanup.js';
import { cleanupPins } from './loader.js';
import { holdsPins, lockPinDir } from './pindir.js';

const BPF_FS_MAGIC = 0xcafe4a11;

function onBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export async function removeBpfLeftovers(pinDir: string, log: Logger): Promise<ModeLeftovers> {
  if (!onBpffs(pinDir) || !holdsPins(pinDir)) return { removed: [], error: '' };
  const lock = lockPinDir(pinDir);
  try {
    return { removed: cleanupPins(pinDir, log), error: '' };
  } finally {
    lock.release();
  }
}
