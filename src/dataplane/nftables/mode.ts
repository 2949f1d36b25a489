// The nftables mode as an entry in the table of modes (src/dataplane/select.ts).
import { familyOf } from '../../util/ip.js';
import { noteBridgeNetfilter } from '../bridge-netfilter.js';
import type { DataplaneMode, DataplaneOptions } from '../types.js';
import { NftablesDataplane } from './dataplane.js';
import { NFT_BIN, runNft, type NftRunner } from './nft.js';
import type { NftConfig } from './objects.js';

/** Service IDs never reach the rules; the planner's own limit applies. */
const MAX_SERVICE_ID = 0x7fffffff;

export function nftConfig(options: DataplaneOptions): NftConfig {
  const cidrs = options.nftables?.clusterCIDRs ?? [];
  return {
    clusterCidrs: {
      ip: cidrs.filter((c) => familyOf(c.slice(0, c.indexOf('/'))) === 'IPv4'),
      ip6: cidrs.filter((c) => familyOf(c.slice(0, c.indexOf('/'))) === 'IPv6'),
    },
  };
}

/** Why nftables cannot run here, or null: the binary runs and the kernel answers a listing. */
export async function probeNftables(nft: NftRunner = runNft): Promise<string | null> {
  const r = await nft(['list', 'tables']);
  if (r.ok) return null;
  return `\`${NFT_BIN} list tables\` failed: ${r.stderr.trim().split('\n')[0] || 'no output'}`;
}

export const nftablesMode: DataplaneMode = {
  name: 'nftables',
  capabilities: { packetDatapath: true, socketLB: false, counters: false, mapUsage: false },
  limits: { maxServiceId: MAX_SERVICE_ID },
  probe: () => probeNftables(),
  open: (options, log) => {
    const config = nftConfig(options);
    const dlog = log.child({ dataplane: 'nftables' });
    if (options.nftables && options.nftables.detectLocalMode !== 'ClusterCIDR') {
      dlog.warn({ detectLocalMode: options.nftables.detectLocalMode }, 'the nftables dataplane tells local pods apart by --cluster-cidr only; this detect-local mode is treated as ClusterCIDR');
    }
    if (config.clusterCidrs.ip.length + config.clusterCidrs.ip6.length === 0) {
      dlog.info('no --cluster-cidr: traffic to ClusterIPs is not masqueraded, and pods reach external frontends with the external policy (as kube-proxy without a local-traffic detector)');
    }
    // Both families' tables are always written.
    noteBridgeNetfilter(dlog, ['IPv4', 'IPv6']);
    return new NftablesDataplane({ config, log: dlog });
  },
};
