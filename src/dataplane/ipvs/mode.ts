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
 * kube-proxy's sysctls for the ipvs mode, in this network namespace:
 * conntrack=1 lets iptables masquerade IPVS traffic (without it the
 * masquerade rules never see those packets); expire_nodest_conn and
 * expire_quiescent_template end connections to a removed real server at
 * once; strict ARP keeps the node from answering ARP for kube-ipvs0's addresses.
 */
function setSysctls(strictARP: boolean, log: Logger): void {
  const set = (path: string, value: string, required: boolean) => {
    try {
      writeFileSync(`/proc/sys/${path}`, value);
    } catch (err) {
      if (required) throw new Error(`cannot set ${path.replaceAll('/', '.')}=${value}: ${(err as Error).message}`);
      log.warn({ sysctl: path.replaceAll('/', '.'), error: (err as Error).message }, 'cannot set a sysctl the ipvs mode wants');
    }
  };
  set('net/ipv4/vs/conntrack', '1', true);
  set('net/ipv4/vs/expire_nodest_conn', '1', false);
  set('net/ipv4/vs/expire_quiescent_template', '1', false);
  if (strictARP) {
    set('net/ipv4/conf/all/arp_ignore', '1', true);
    set('net/ipv4/conf/all/arp_announce', '2', true);
  }
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
  setSysctls(options.ipvs?.strictARP ?? false, dlog);
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
  dlog.info({ families: xt.families, scheduler: config.scheduler, masqueradeBit: config.masqueradeBit, masqueradeAll: config.masqueradeAll, strictARP: options.ipvs?.strictARP ?? false },
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
