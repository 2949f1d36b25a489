// The thin edge: runs ipvsadm, ipset, ip and iptables-restore in the
// proxy's own network namespace (the proxy runs in the node's namespace
// already; the lab starts it there). Everything else in this folder is pure.
//
// The commands are the ones on the PATH, not the iptables mode's
// BPFPROXY_IPTABLES_DIR: that variable exists to make the iptables mode fail
// (so a test can provoke a fallback into this mode), and this mode needs the
// real iptables-restore for its masquerade rules.
import type { IPFamily } from '../../model/types.js';
import { isLinkLocal } from '../../util/ip.js';
import { runTool } from '../run-tool.js';
import { DUMMY_ALIAS, DUMMY_DEVICE } from './names.js';

export interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs one program with `input` on stdin. Never rejects: a missing binary is a failed result. */
export type Runner = (command: string, args: readonly string[], input?: string) => Promise<RunResult>;

export const IPVSADM = process.env.BPFPROXY_IPVSADM ?? 'ipvsadm';

export const runCommand: Runner = (command, args, input) => runTool(command === 'ipvsadm' ? IPVSADM : command, args, input);

/** Seconds to wait for the xtables lock (-w), which kubelet or a CNI plugin holds now and then. */
const XTABLES_LOCK_WAIT_S = 5;

/** One `iptables-restore --noflush` (ip6tables- for IPv6): tables we do not name are left alone. */
export const xtRestore = (run: Runner, family: IPFamily, text: string) =>
  run(family === 'IPv4' ? 'iptables-restore' : 'ip6tables-restore', ['-w', String(XTABLES_LOCK_WAIT_S), '--noflush'], text);

/** The nat and filter tables of the family, as iptables-save prints them. */
export async function xtSave(run: Runner, family: IPFamily): Promise<RunResult> {
  const cmd = family === 'IPv4' ? 'iptables-save' : 'ip6tables-save';
  const nat = await run(cmd, ['-t', 'nat']);
  if (!nat.ok) return nat;
  const filter = await run(cmd, ['-t', 'filter']);
  return { ok: filter.ok, stdout: nat.stdout + filter.stdout, stderr: filter.stderr };
}

/**
 * The virtual server table, numeric, in restore syntax. `-S -n`: ipvsadm 1.31
 * refuses the `-Save -n` spelling some guides use ("invalid option `-Save'",
 * measured in the VM guest).
 */
export const ipvsSave = (run: Runner) => run('ipvsadm', ['-S', '-n']);
/** The table with each real server's ActiveConn and InActConn (graceful.ts reads it). */
export const ipvsList = (run: Runner) => run('ipvsadm', ['-L', '-n']);
/** ipvsadm -R: the lines of `ipvsadm-restore`, one ipvsadm command each. */
export const ipvsRestore = (run: Runner, lines: readonly string[]) => run('ipvsadm', ['-R'], lines.join('\n') + '\n');
/** kube-proxy's tcpTimeout, tcpFinTimeout, udpTimeout, in seconds; 0 leaves one as it is. */
export const ipvsSetTimeouts = (run: Runner, tcp: number, tcpFin: number, udp: number) => run('ipvsadm', ['--set', String(tcp), String(tcpFin), String(udp)]);

export const ipsetSave = (run: Runner) => run('ipset', ['save']);
export const ipsetRestore = (run: Runner, lines: readonly string[]) => run('ipset', ['restore', '-exist'], lines.join('\n') + '\n');

/** `ip -batch -`: address add/del lines for kube-ipvs0. */
export const ipBatch = (run: Runner, lines: readonly string[]) => run('ip', ['-batch', '-'], lines.join('\n') + '\n');

/**
 * The dummy device: absent, ours (alias bpfproxy) or someone else's
 * (kube-proxy's). From the list of every link, not `ip link show dev NAME`:
 * asking for a device by a name that does not exist makes the kernel run
 * `modprobe netdev-NAME` (dev_load), which took tens of seconds in the TCG
 * guest of the VM tests and is a wasted module search anywhere.
 */
export async function dummyDevice(run: Runner): Promise<'absent' | 'ours' | 'theirs'> {
  const r = await run('ip', ['-o', '-d', 'link', 'show']);
  const line = r.stdout.split('\n').find((l) => new RegExp(`^\\d+: ${DUMMY_DEVICE}[:@]`).test(l));
  if (!r.ok || !line) return 'absent';
  return new RegExp(`\\balias ${DUMMY_ALIAS}\\b`).test(line) ? 'ours' : 'theirs';
}

/**
 * Creates kube-ipvs0 with our alias, left down as kube-proxy leaves it: an
 * address on a down device is still local. Measured here (kernel 6.18, on a
 * down veth in a scratch namespace): an IPv4 address gets its local route at
 * once; an IPv6 address stays "tentative" with no local route until duplicate
 * address detection can run (device up), unless it is added with `nodad`,
 * which addressLine does: then it is local at once, device down or not.
 */
export async function createDummy(run: Runner): Promise<RunResult> {
  const add = await run('ip', ['link', 'add', DUMMY_DEVICE, 'type', 'dummy']);
  if (!add.ok) return add;
  return run('ip', ['link', 'set', 'dev', DUMMY_DEVICE, 'alias', DUMMY_ALIAS]);
}

/** The addresses on kube-ipvs0 (canonical text). */
export async function dummyAddresses(run: Runner): Promise<{ ok: boolean; addresses: string[]; stderr: string }> {
  const r = await run('ip', ['-o', 'addr', 'show', 'dev', DUMMY_DEVICE]);
  if (!r.ok) return { ok: false, addresses: [], stderr: r.stderr };
  // Not a link-local address (the kernel gives one to a device set up by someone): it is no service's.
  const addresses = [...r.stdout.matchAll(/\binet6? ([0-9a-fA-F.:]+)\//g)].map((m) => m[1]!).filter((a) => !isLinkLocal(a));
  return { ok: true, addresses, stderr: '' };
}

export function addressLine(verb: 'add' | 'del', address: string): string {
  // nodad: without it an IPv6 address on the down device stays tentative, not local (see createDummy).
  return address.includes(':') ? `address ${verb} ${address}/128 dev ${DUMMY_DEVICE}${verb === 'add' ? ' nodad' : ''}` : `address ${verb} ${address}/32 dev ${DUMMY_DEVICE}`;
}
