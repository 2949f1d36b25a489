// The ipvs mode as an entry in the table of modes (src/dataplane/select.ts).
//
// IPVS is a kernel module (ip_vs, and one module per scheduler, ip_vs_rr ...).
// The probe only looks: /proc/net/ip_vs is there once ip_vs is loaded, and
// otherwise the module must be on disk for this kernel. open() loads ip_vs
// and the scheduler's module when they are not loaded yet (as kube-proxy's
// images did), then checks that `ipvsadm -Ln` answers. A kernel built
// without IPVS and without modules (this repository's host kernel) fails the
// probe with one clear line, and the selector falls back or exits.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import type { IPFamily } from '../../model/types.js';
import { familyOf } from '../../util/ip.js';
import { DEFAULT_IPVS_SCHEDULER } from '../../util/ipvs-schedulers.js';
import type { Logger } from '../../util/log.js';
import { noteBridgeNetfilter } from '../bridge-netfilter.js';
import type { DataplaneMode, DataplaneOptions } from '../types.js';
import { IpvsDataplane } from './dataplane.js';
import { createDummy, dummyDevice, IPVSADM, ipvsSetTimeouts, runCommand, xtRestore, type Runner } from './exec.js';
import { DEFAULT_MASQUERADE_BIT, DROP_BIT, DUMMY_DEVICE, MAX_SERVICE_ID, schedulerModule } from './names.js';
import type { IpvsConfig } from './objects.js';

const PROC_IP_VS = '/proc/net/ip_vs';

export function ipvsConfig(options: DataplaneOptions): IpvsConfig {
  const cidrs = options.nftables?.clusterCIDRs ?? [];
  const of = (f: IPFamily) => cidrs.filter((c) => familyOf(c.slice(0, c.indexOf('/'))) === f);
  return {
    clusterCidrs: { IPv4: of('IPv4'), IPv6: of('IPv6') },
    masqueradeAll: options.iptables?.masqueradeAll ?? false,
    masqueradeBit: options.iptables?.masqueradeBit ?? DEFAULT_MASQUERADE_BIT,
    scheduler: options.ipvs?.scheduler ?? DEFAULT_IPVS_SCHEDULER,
  };
}

/** Is module `name` on disk for the running kernel (modules.dep lists it)? */
function moduleOnDisk(name: string): boolean {
  try {
    return new RegExp(`/${name}\\.ko(\\.[a-z]+)?:`, 'm').test(readFileSync(`/lib/modules/${release()}/modules.dep`, 'utf8'));
  } catch {
    return false;
  }
}

/** Why ipvs cannot run here, or null; looks only. */
export function probeIpvs(): string | null {
  if (existsSync(PROC_IP_VS)) return null;
  if (moduleOnDisk('ip_vs')) return null;
  return `the kernel has no IPVS: ${PROC_IP_VS} is missing (ip_vs not loaded) and /lib/modules/${release()} has no ip_vs module`;
}

/** Loads ip_vs (when not loaded) and the scheduler's module; the kernel would load the latter on the first service, but an error then is later and vaguer. */
async function loadModules(run: Runner, scheduler: string, log: Logger): Promise<void> {
  if (!existsSync(PROC_IP_VS)) {
    const r = await run('modprobe', ['ip_vs']);
    if (!r.ok || !existsSync(PROC_IP_VS)) throw new Error(`the kernel has no IPVS: ${PROC_IP_VS} is missing and \`modprobe ip_vs\` failed: ${r.stderr.trim().split('\n')[0] || 'no output'}`);
  }
  const mod = schedulerModule(scheduler as never);
  const r = await run('modprobe', [mod]);
  if (!r.ok) log.warn({ module: mod, error: r.stderr.trim() }, `cannot load ${mod}: virtual servers with scheduler ${scheduler} will fail unless the kernel has it built in`);
}

/**
 * The kernel that fixed conn_reuse_mode (torvalds/linux 35dfb013149f, 5.9):
 * before it, kube-proxy sets conn_reuse_mode=0, as reused source ports were
 * otherwise delayed a second per connection (kubernetes/kubernetes#93297);
 * from it on, kube-proxy leaves the setting as it is. So does this mode.
 */
const CONN_REUSE_FIXED: readonly [number, number] = [5, 9];
/** conn_reuse_mode itself came in 4.1; kube-proxy does not touch it before. */
const CONN_REUSE_MIN: readonly [number, number] = [4, 1];

function kernelBefore(kernel: string, v: readonly [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  return m !== null && (Number(m[1]) < v[0] || (Number(m[1]) === v[0] && Number(m[2]) < v[1]));
}

/**
 * kube-proxy's sysctls for the ipvs mode (pkg/proxy/ipvs/proxier.go), in this
 * network namespace, each failure fatal as there:
 * - conntrack=1: iptables sees IPVS traffic (the masquerade rules need it);
 * - expire_nodest_conn=1: a connection whose real server was deleted is
 *   expired instead of blackholed. This is what moves a UDP flow that keeps
 *   its source port off a removed endpoint: kube-proxy deletes UDP real
 *   servers at once, with no graceful termination, "existing connections will
 *   be deleted on the next packet because sysctlExpireNoDestConn=1"
 *   (graceful_termination.go), and since 5.9 the kernel also flushes them
 *   right after the deletion. IPVS keeps its own connection table beside
 *   nf_conntrack: deleting only the conntrack entry (conntrack/janitor.ts)
 *   would leave the IPVS connection pointing at the removed real server;
 * - expire_quiescent_template=1: the same for persistence templates
 *   (sessionAffinity) of a real server of weight 0;
 * - conn_reuse_mode=0 only on kernels 4.1 to 5.8 (CONN_REUSE_FIXED above);
 * - strict ARP when asked: the node does not answer ARP for kube-ipvs0's addresses.
 * Pure: the sysctls (path under /proc/sys, value) in the order they are set.
 */
export function ipvsSysctls(strictARP: boolean, kernel: string): [string, string][] {
  const out: [string, string][] = [
    ['net/ipv4/vs/conntrack', '1'],
    ['net/ipv4/vs/expire_nodest_conn', '1'],
    ['net/ipv4/vs/expire_quiescent_template', '1'],
  ];
  if (!kernelBefore(kernel, CONN_REUSE_MIN) && kernelBefore(kernel, CONN_REUSE_FIXED)) out.push(['net/ipv4/vs/conn_reuse_mode', '0']);
  if (strictARP) out.push(['net/ipv4/conf/all/arp_ignore', '1'], ['net/ipv4/conf/all/arp_announce', '2']);
  return out;
}

/** Writes ipvsSysctls in this network namespace; what was set, for the log line. */
function setSysctls(strictARP: boolean): Record<string, string> {
  const done: Record<string, string> = {};
  for (const [path, value] of ipvsSysctls(strictARP, release())) {
    const name = path.replaceAll('/', '.');
    try {
      writeFileSync(`/proc/sys/${path}`, value);
    } catch (err) {
      throw new Error(`cannot set ${name}=${value}: ${(err as Error).message}`);
    }
    done[name] = value;
  }
  return done;
}

/** A restore that changes nothing, for each family: which ones this node can program. */
async function xtFamilies(run: Runner): Promise<{ families: IPFamily[]; v4Error: string; v6Error: string }> {
  const NO_OP = '*nat\nCOMMIT\n*filter\nCOMMIT\n';
  const v4 = await xtRestore(run, 'IPv4', NO_OP);
  const v6 = await xtRestore(run, 'IPv6', NO_OP);
  const families: IPFamily[] = [];
  if (v4.ok) families.push('IPv4');
  if (v6.ok) families.push('IPv6');
  return { families, v4Error: v4.stderr.trim().split('\n')[0] ?? '', v6Error: v6.stderr.trim().split('\n')[0] ?? '' };
}

export async function openIpvs(options: DataplaneOptions, log: Logger, run: Runner = runCommand): Promise<IpvsDataplane> {
  const dlog = log.child({ dataplane: 'ipvs' });
  const config = ipvsConfig(options);
  if (config.masqueradeBit >= DROP_BIT) {
    throw new Error(`--iptables-masquerade-bit ${config.masqueradeBit}: the ipvs mode needs a bit below ${DROP_BIT} (bit ${DROP_BIT} is its drop mark, bits 16-31 its fwmarks)`);
  }
  await loadModules(run, config.scheduler, dlog);
  const list = await run('ipvsadm', ['-Ln']);
  if (!list.ok) throw new Error(`\`${IPVSADM} -Ln\` failed: ${list.stderr.trim().split('\n')[0] || 'no output'}`);
  const sets = await run('ipset', ['list', '-n']);
  if (!sets.ok) throw new Error(`\`ipset list -n\` failed: ${sets.stderr.trim().split('\n')[0] || 'no output'} (apt-get install ipset)`);
  const xt = await xtFamilies(run);
  if (!xt.families.includes('IPv4')) throw new Error(`\`iptables-restore --noflush\` failed: ${xt.v4Error || 'no output'}`);
  if (!xt.families.includes('IPv6')) dlog.warn({ reason: xt.v6Error }, 'IPv6 services are not programmed: ip6tables cannot run here');
  const sysctls = setSysctls(options.ipvs?.strictARP ?? false);
  const t = options.ipvs;
  if (t && (t.tcpTimeoutMs || t.tcpFinTimeoutMs || t.udpTimeoutMs)) {
    const s = (ms: number) => Math.round(ms / 1000);
    const r = await ipvsSetTimeouts(run, s(t.tcpTimeoutMs), s(t.tcpFinTimeoutMs), s(t.udpTimeoutMs));
    if (!r.ok) dlog.warn({ error: r.stderr.trim() }, 'cannot set the IPVS timeouts (ipvsadm --set)');
  }
  const device = await dummyDevice(run);
  if (device === 'absent') {
    const r = await createDummy(run);
    if (!r.ok) throw new Error(`\`ip link add ${DUMMY_DEVICE} type dummy\` failed: ${r.stderr.trim().split('\n')[0] || 'no output'}`);
  } else if (device === 'theirs') {
    dlog.warn(`${DUMMY_DEVICE} exists and was not made by bpfproxy (kube-proxy's?): its addresses are used, and \`bpfproxy cleanup\` will leave the device`);
  }
  if (config.clusterCidrs.IPv4.length + config.clusterCidrs.IPv6.length === 0 && !config.masqueradeAll) {
    dlog.info('no --cluster-cidr: traffic to ClusterIPs is not masqueraded (as kube-proxy without a local-traffic detector)');
  }
  noteBridgeNetfilter(dlog, xt.families);
  dlog.info({ families: xt.families, sysctls, scheduler: config.scheduler, masqueradeBit: config.masqueradeBit, masqueradeAll: config.masqueradeAll, strictARP: options.ipvs?.strictARP ?? false },
    `ipvs mode through \`${IPVSADM}\`, ipset and iptables-restore; virtual addresses on ${DUMMY_DEVICE}`);
  return new IpvsDataplane({ config, log: dlog, families: xt.families, run });
}

export const ipvsMode: DataplaneMode = {
  name: 'ipvs',
  capabilities: { packetDatapath: true, socketLB: false, counters: false, mapUsage: false },
  limits: { maxServiceId: MAX_SERVICE_ID },
  probe: () => probeIpvs(),
  open: (options, log) => openIpvs(options, log),
};
