// `bpfproxy cleanup` for the ipvs mode: removes exactly what bpfproxy made
// (ownership.ts says how that is known): its virtual servers, kube-ipvs0 when
// it made the device (else only its addresses there), its jumps and BPX-*
// chains in both families, and last its ipsets (a set cannot be destroyed
// while a rule uses it). Without IPVS in the kernel the mode never ran, so
// there is nothing to remove and no command is run.
import { existsSync } from 'node:fs';
import type { IPFamily } from '../../model/types.js';
import { addressLine, dummyAddresses, dummyDevice, ipBatch, ipsetRestore, ipsetSave, ipvsRestore, ipvsSave, runCommand, xtRestore, xtSave, type Runner } from './exec.js';
import { parseIpsetSave } from './ipset.js';
import { parseSave, serviceSpec } from './ipvsadm.js';
import { DUMMY_DEVICE, XT_TABLES } from './names.js';
import { ourAddresses, ourVirtualServers } from './ownership.js';
import { parseXtSave, type XtExisting } from './xt.js';

export interface IpvsCleanupResult {
  ok: boolean;
  virtualServers: number;
  /** "removed": kube-ipvs0 was ours and is gone; "kept": someone else's, our addresses removed from it. */
  device: 'removed' | 'kept' | 'absent';
  chains: number;
  sets: number;
  error: string;
}

/** The restore input that removes our jumps and chains from one family's tables; "" when there are none. */
export function cleanupXtRestore(e: XtExisting): string {
  let text = '';
  for (const t of XT_TABLES) {
    if (e.chains[t].size === 0 && e.jumps[t].length === 0) continue;
    text += [`*${t}`, ...[...e.chains[t]].map((c) => `:${c} - [0:0]`), ...e.jumps[t].map((j) => `-D ${j.chain} ${j.rule}`), ...[...e.chains[t]].map((c) => `-X ${c}`), 'COMMIT'].join('\n') + '\n';
  }
  return text;
}

export async function cleanupIpvs(run: Runner = runCommand, hasIpvs = existsSync('/proc/net/ip_vs')): Promise<IpvsCleanupResult> {
  const result: IpvsCleanupResult = { ok: true, virtualServers: 0, device: 'absent', chains: 0, sets: 0, error: '' };
  if (!hasIpvs) return result;
  const errors: string[] = [];
  const step = (what: string, r: { ok: boolean; stderr: string }) => {
    if (!r.ok) errors.push(`${what}: ${r.stderr.trim().split('\n')[0] || 'failed'}`);
    return r.ok;
  };
  const saved = await ipsetSave(run);
  const { sets, entries } = step('ipset save', saved) ? parseIpsetSave(saved.stdout) : { sets: new Set<string>(), entries: new Set<string>() };
  const table = await ipvsSave(run);
  if (step('ipvsadm -S -n', table)) {
    try {
      const ours = ourVirtualServers(parseSave(table.stdout), entries);
      if (ours.size > 0 && step('ipvsadm -R', await ipvsRestore(run, [...ours.values()].map((v) => `-D ${serviceSpec(v)}`)))) result.virtualServers = ours.size;
    } catch (err) {
      errors.push(`ipvsadm -S -n: ${(err as Error).message}`);
    }
  }
  const device = await dummyDevice(run);
  if (device === 'ours') {
    if (step(`ip link del ${DUMMY_DEVICE}`, await run('ip', ['link', 'del', DUMMY_DEVICE]))) result.device = 'removed';
  } else if (device === 'theirs') {
    result.device = 'kept';
    const a = await dummyAddresses(run);
    const mine = ourAddresses(a.addresses, false, entries);
    if (mine.size > 0) step('ip address del', await ipBatch(run, [...mine].map((x) => addressLine('del', x))));
  }
  for (const f of ['IPv4', 'IPv6'] as IPFamily[]) {
    const s = await xtSave(run, f);
    if (!s.ok) {
      if (f === 'IPv4') step('iptables-save', s); // no ip6tables on this node: nothing of ours there either
      continue;
    }
    const e = parseXtSave(s.stdout);
    const text = cleanupXtRestore(e);
    if (text !== '' && step(`${f === 'IPv4' ? 'iptables' : 'ip6tables'}-restore`, await xtRestore(run, f, text))) result.chains += e.chains.nat.size + e.chains.filter.size;
  }
  if (sets.size > 0 && step('ipset destroy', await ipsetRestore(run, [...sets].map((s) => `destroy ${s}`)))) result.sets = sets.size;
  result.ok = errors.length === 0;
  result.error = errors.join('; ');
  return result;
}
