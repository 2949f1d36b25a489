// The iptables mode as an entry in the table of modes (src/dataplane/select.ts).
import { writeFileSync } from 'node:fs';
import type { IPFamily } from '../../model/types.js';
import { familyOf } from '../../util/ip.js';
import type { Logger } from '../../util/log.js';
import { noteBridgeNetfilter } from '../bridge-netfilter.js';
import type { DataplaneMode, DataplaneOptions } from '../types.js';
import { IptablesDataplane } from './dataplane.js';
import { restoreCommand } from './names.js';
import { DEFAULT_MASQUERADE_BIT, type XtConfig } from './objects.js';
import { binPath, restore, runXtables, type XtRunner } from './xtables.js';

/** Service IDs never reach the rules; the planner's own limit applies. */
const MAX_SERVICE_ID = 0x7fffffff;

/** A restore that changes nothing: it needs the binary, the kernel's tables and the permission to write them. */
const NO_OP = '*nat\nCOMMIT\n*filter\nCOMMIT\n';

export function xtConfig(options: DataplaneOptions): XtConfig {
  const cidrs = options.nftables?.clusterCIDRs ?? [];
  const of = (f: IPFamily) => cidrs.filter((c) => familyOf(c.slice(0, c.indexOf('/'))) === f);
  return {
    clusterCidrs: { IPv4: of('IPv4'), IPv6: of('IPv6') },
    masqueradeAll: options.iptables?.masqueradeAll ?? false,
    masqueradeBit: options.iptables?.masqueradeBit ?? DEFAULT_MASQUERADE_BIT,
    localhostNodePorts: options.iptables?.localhostNodePorts ?? false,
  };
}

/** Why iptables cannot run here for `family`, or null. */
export async function probeFamily(family: IPFamily, run: XtRunner = runXtables): Promise<string | null> {
  const r = await restore(run, family, NO_OP);
  if (r.ok) return null;
  return `\`${binPath(restoreCommand(family))} --noflush\` failed: ${r.stderr.trim().split('\n')[0] || 'no output'}`;
}

/**
 * kube-proxy's --iptables-localhost-nodeports: 127.0.0.1:NODEPORT works only
 * with route_localnet, which lets the kernel route a loopback source out of
 * the node once it is masqueraded. Set in the proxy's own network namespace.
 */
function enableRouteLocalnet(log: Logger): boolean {
  try {
    writeFileSync('/proc/sys/net/ipv4/conf/all/route_localnet', '1');
    return true;
  } catch (err) {
    log.warn({ error: (err as Error).message }, 'cannot set net.ipv4.conf.all.route_localnet: NodePorts are not served on 127.0.0.1');
    return false;
  }
}

export const iptablesMode: DataplaneMode = {
  name: 'iptables',
  capabilities: { packetDatapath: true, socketLB: false, counters: false, mapUsage: false },
  limits: { maxServiceId: MAX_SERVICE_ID },
  probe: () => probeFamily('IPv4'),
  open: async (options, log) => {
    const dlog = log.child({ dataplane: 'iptables' });
    const config = xtConfig(options);
    const families: IPFamily[] = ['IPv4'];
    const v6 = await probeFamily('IPv6');
    if (v6 === null) families.push('IPv6');
    else dlog.warn({ reason: v6 }, 'IPv6 services are not programmed: ip6tables cannot run here');
    if (options.nftables && options.nftables.detectLocalMode !== 'ClusterCIDR') {
      dlog.warn({ detectLocalMode: options.nftables.detectLocalMode }, 'the iptables dataplane tells local pods apart by --cluster-cidr only; this detect-local mode is treated as ClusterCIDR');
    }
    if (config.localhostNodePorts && !enableRouteLocalnet(dlog)) config.localhostNodePorts = false;
    noteBridgeNetfilter(dlog, families);
    dlog.info({ families, masqueradeBit: config.masqueradeBit, masqueradeAll: config.masqueradeAll, localhostNodePorts: config.localhostNodePorts },
      `iptables mode through \`${binPath('iptables-restore')}\` (the iptables on the PATH, as kube-proxy picks it)`);
    return new IptablesDataplane({ config, log: dlog, families });
  },
};
