// The thin edge: runs iptables-restore / iptables-save (and the ip6 ones) in
// the proxy's own network namespace (the proxy runs in the node's namespace
// already). Everything else in this folder is pure.
//
// Which iptables: the `iptables` on the PATH, which is what kube-proxy's
// image and Debian pick. On Debian 12 that is the nft backend
// (iptables-nft, "iptables v1.8.9 (nf_tables)"); iptables-legacy exists too,
// and a node whose other software (kubelet, CNI) uses legacy should have
// `iptables` point there (update-alternatives), as it must for kube-proxy.
import { join } from 'node:path';
import type { IPFamily } from '../../model/types.js';
import { runTool } from '../run-tool.js';
import { restoreCommand, saveCommand } from './names.js';

export interface XtResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs one of the xtables programs with `input` on stdin. Never rejects: a missing binary is a failed result. */
export type XtRunner = (command: string, args: readonly string[], input?: string) => Promise<XtResult>;

/**
 * Directory of the iptables programs, for tests: BPFPROXY_IPTABLES_DIR=/nonexistent
 * makes every call fail, so a test can run bpfproxy without touching the host's tables.
 */
const BIN_DIR = process.env.BPFPROXY_IPTABLES_DIR ?? '';

export function binPath(command: string): string {
  return BIN_DIR ? join(BIN_DIR, command) : command;
}

/** Seconds to wait for the xtables lock (-w), held by kubelet or a CNI plugin now and then. */
export const XTABLES_LOCK_WAIT_S = 5;

export const runXtables: XtRunner = (command, args, input) => runTool(binPath(command), args, input);

/** One restore of `text` for the family: --noflush keeps everything we do not name, -w waits for the lock. */
export function restore(run: XtRunner, family: IPFamily, text: string): Promise<XtResult> {
  return run(restoreCommand(family), ['-w', String(XTABLES_LOCK_WAIT_S), '--noflush'], text);
}

/** The nat and filter tables of the family, as iptables-save prints them. */
export async function save(run: XtRunner, family: IPFamily): Promise<XtResult> {
  const nat = await run(saveCommand(family), ['-t', 'nat']);
  if (!nat.ok) return nat;
  const filter = await run(saveCommand(family), ['-t', 'filter']);
  return { ok: filter.ok, stdout: nat.stdout + filter.stdout, stderr: filter.stderr };
}
