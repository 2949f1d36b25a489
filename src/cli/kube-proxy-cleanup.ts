// `bpfproxy cleanup --kube-proxy`: removes what kube-proxy left on this node
// once it is gone, as kube-proxy's own --cleanup would, and nothing else:
// - iptables and ip6tables (filter, nat, mangle): kube-proxy's chains, by
//   its fixed names and its per-service prefixes (KUBE-SVC-, KUBE-SEP-, ...),
//   and the rules of the built-in chains that jump to them. Chains other
//   software owns keep every rule: a kube-proxy chain that such a chain still
//   jumps to is left and reported. kubelet's KUBE-* chains (KUBE-FIREWALL,
//   KUBE-KUBELET-CANARY, KUBE-MARK-DROP, KUBE-IPTABLES-HINT) are not
//   kube-proxy's and stay.
// - nftables: the `ip kube-proxy` and `ip6 kube-proxy` tables of its nftables mode.
// - ipvs (when the kernel has IPVS): the virtual servers on the addresses of
//   kube-ipvs0 (ClusterIPs, external and load-balancer IPs), the NodePort
//   ones (a local address, a port in --service-node-port-range), kube-ipvs0
//   itself, and the KUBE-* ipsets its rules matched against.
// One log line per kind of thing removed (chains of a family, a table, the
// virtual servers, the device, the sets), naming them.
import { existsSync } from 'node:fs';
import type { IPFamily } from '../model/types.js';
import type { Logger } from '../util/log.js';
import { removeFamily, type RemovalSpec } from '../dataplane/iptables/cleanup.js';
import { jumpTarget } from '../dataplane/iptables/model.js';
import { runXtables, type XtRunner } from '../dataplane/iptables/xtables.js';
import { runCommand } from '../dataplane/ipvs/exec.js';
import { OUR_SET_RE } from '../dataplane/ipvs/names.js';
import { runNft, type NftRunner } from '../dataplane/nftables/nft.js';

/** kube-proxy's fixed chains, every mode and version since iptables mode's KUBE-XLB- days. */
const KUBE_PROXY_CHAINS = new Set([
  'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-FORWARD',
  'KUBE-PROXY-FIREWALL', 'KUBE-PROXY-CANARY',
  // ipvs mode
  'KUBE-LOAD-BALANCER', 'KUBE-NODE-PORT', 'KUBE-SOURCE-RANGES-FIREWALL', 'KUBE-IPVS-FILTER', 'KUBE-IPVS-OUT-FILTER',
]);
/** Per service port and per endpoint: a prefix and 16 base32 characters of a hash. */
const KUBE_PROXY_CHAIN_RE = /^KUBE-(SVC|SVL|EXT|FW|SEP|XLB)-[A-Z2-7]{16}$/;
const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export function isKubeProxyChain(chain: string): boolean {
  return KUBE_PROXY_CHAINS.has(chain) || KUBE_PROXY_CHAIN_RE.test(chain);
}

export const KUBE_PROXY_REMOVAL: RemovalSpec = {
  tables: ['filter', 'nat', 'mangle'],
  isTarget: (_table, chain) => isKubeProxyChain(chain),
  isJump: (_table, chain, rule) => {
    const t = jumpTarget(rule);
    return BUILTIN.has(chain) && t !== null && isKubeProxyChain(t);
  },
};

/** kube-proxy's nftables mode: one table per family. */
export const KUBE_PROXY_NFT_TABLES = ['ip kube-proxy', 'ip6 kube-proxy'] as const;
export const KUBE_IPVS_DEVICE = 'kube-ipvs0';

/** A virtual server as `ipvsadm -Sn` writes it: "-t 10.96.0.1:443". */
export interface VirtualServer {
  /** "-t", "-u" or "--sctp-service". */
  proto: string;
  address: string;
  port: number;
}

/** The virtual servers of `ipvsadm -Sn` output. */
export function parseVirtualServers(save: string): VirtualServer[] {
  const out: VirtualServer[] = [];
  for (const m of save.matchAll(/^-A (-t|-u|--sctp-service) (\[[^\]]+\]|[^\s:]+):(\d+)/gm)) {
    out.push({ proto: m[1]!, address: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) });
  }
  return out;
}

/** kube-proxy's virtual servers: on a kube-ipvs0 address, or a NodePort (a local address, a port in the node port range). */
export function kubeProxyVirtualServers(all: readonly VirtualServer[], ipvsAddresses: ReadonlySet<string>, localAddresses: ReadonlySet<string>, nodePorts: { min: number; max: number }): VirtualServer[] {
  return all.filter((v) => ipvsAddresses.has(v.address) || (localAddresses.has(v.address) && v.port >= nodePorts.min && v.port <= nodePorts.max));
}

/** Addresses of `ip -o addr show` output. */
export function parseAddresses(text: string): string[] {
  return [...text.matchAll(/ inet6? ([^/\s]+)\//g)].map((m) => m[1]!);
}

export interface KubeProxyCleanupDeps {
  xt?: XtRunner;
  nft?: NftRunner;
  /** Runs ip, ipvsadm and ipset. */
  run?: XtRunner;
  /** Whether the kernel has IPVS; default: /proc/net/ip_vs exists. */
  hasIpvs?: () => boolean;
  /** --service-node-port-range. */
  nodePorts: { min: number; max: number };
}

/** Removes kube-proxy's leftovers; true when every step that could run worked. */
export async function cleanupKubeProxy(deps: KubeProxyCleanupDeps, log: Logger): Promise<boolean> {
  let ok = true;
  for (const family of ['IPv4', 'IPv6'] as IPFamily[]) ok = (await removeIptables(deps.xt ?? runXtables, family, log)) && ok;
  ok = (await removeNftTables(deps.nft ?? runNft, log)) && ok;
  const run = deps.run ?? runCommand;
  if (await bpfproxyIpvsInUse(run)) {
    // bpfproxy's own ipvs mode puts its virtual servers on kube-ipvs0 too: removing
    // "kube-proxy's" there would take bpfproxy's with them. Say so instead.
    log.warn("bpfproxy's ipvs mode is in use on this node (its BPX- ipsets exist) and shares kube-ipvs0: kube-proxy's ipvs virtual servers and kube-ipvs0 are left; run kube-proxy --cleanup before switching bpfproxy to ipvs mode");
  } else {
    if ((deps.hasIpvs ?? (() => existsSync('/proc/net/ip_vs')))()) ok = (await removeIpvs(run, deps.nodePorts, log)) && ok;
    else log.debug('the kernel has no IPVS: no kube-proxy virtual servers to look for');
    ok = (await removeIpvsDevice(run, log)) && ok;
  }
  ok = (await removeIpsets(run, log)) && ok;
  return ok;
}

async function removeIptables(xt: XtRunner, family: IPFamily, log: Logger): Promise<boolean> {
  const cmd = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const r = await removeFamily(xt, family, KUBE_PROXY_REMOVAL);
  if (!r.ok) {
    log.warn({ family, error: r.error }, `could not remove kube-proxy's ${cmd} chains`);
    return false;
  }
  if (r.removedChains.length > 0 || r.removedJumps.length > 0) {
    log.info({ family, chains: r.removedChains.length, jumps: r.removedJumps, removed: r.removedChains.slice(0, 50) }, `removed kube-proxy's ${cmd} chains and the jumps to them`);
  } else {
    log.info({ family }, `no kube-proxy chains in ${cmd}`);
  }
  if (r.kept.length > 0) log.warn({ family, kept: r.kept }, `kept kube-proxy ${cmd} chains that other chains still jump to`);
  return true;
}

async function removeNftTables(nft: NftRunner, log: Logger): Promise<boolean> {
  const listed = await nft(['list', 'tables']);
  if (!listed.ok) {
    log.debug({ error: listed.stderr.trim() }, 'nft cannot list tables: no kube-proxy nftables tables to look for');
    return true;
  }
  const present = new Set(listed.stdout.split('\n').map((l) => l.trim().replace(/^table /, '')));
  let ok = true;
  for (const t of KUBE_PROXY_NFT_TABLES) {
    if (!present.has(t)) continue;
    const r = await nft(['delete', 'table', ...t.split(' ')]);
    if (r.ok) log.info({ table: t }, `removed kube-proxy's nftables table ${t}`);
    else log.warn({ table: t, error: r.stderr.trim() }, `could not remove kube-proxy's nftables table ${t}`);
    ok &&= r.ok;
  }
  return ok;
}

async function addressesOf(run: XtRunner, dev?: string): Promise<Set<string>> {
  const r = await run('ip', ['-o', 'addr', 'show', ...(dev ? ['dev', dev] : [])]);
  return new Set(r.ok ? parseAddresses(r.stdout) : []);
}

async function removeIpvs(run: XtRunner, nodePorts: { min: number; max: number }, log: Logger): Promise<boolean> {
  const saved = await run('ipvsadm', ['-Sn']);
  if (!saved.ok) {
    log.warn({ error: saved.stderr.trim() }, 'could not list the ipvs virtual servers (ipvsadm -Sn)');
    return false;
  }
  const ipvsAddresses = await addressesOf(run, KUBE_IPVS_DEVICE);
  const local = await addressesOf(run);
  for (const a of ipvsAddresses) local.delete(a);
  const mine = kubeProxyVirtualServers(parseVirtualServers(saved.stdout), ipvsAddresses, local, nodePorts);
  if (mine.length === 0) return true;
  const fmt = (v: VirtualServer) => `${v.proto} ${v.address.includes(':') ? `[${v.address}]` : v.address}:${v.port}`;
  const failed: string[] = [];
  for (const v of mine) {
    const r = await run('ipvsadm', ['-D', v.proto, `${v.address.includes(':') ? `[${v.address}]` : v.address}:${v.port}`]);
    if (!r.ok) failed.push(`${fmt(v)}: ${r.stderr.trim()}`);
  }
  log.info({ count: mine.length - failed.length, removed: mine.slice(0, 50).map(fmt) }, "removed kube-proxy's ipvs virtual servers");
  if (failed.length > 0) log.warn({ failed: failed.slice(0, 20) }, "could not remove some of kube-proxy's ipvs virtual servers");
  return failed.length === 0;
}

async function removeIpvsDevice(run: XtRunner, log: Logger): Promise<boolean> {
  const shown = await run('ip', ['-o', 'link', 'show', 'dev', KUBE_IPVS_DEVICE]);
  if (!shown.ok) return true;
  const r = await run('ip', ['link', 'delete', KUBE_IPVS_DEVICE]);
  if (r.ok) log.info({ device: KUBE_IPVS_DEVICE }, `removed kube-proxy's dummy device ${KUBE_IPVS_DEVICE}`);
  else log.warn({ device: KUBE_IPVS_DEVICE, error: r.stderr.trim() }, `could not remove ${KUBE_IPVS_DEVICE}`);
  return r.ok;
}

/** Whether bpfproxy's ipvs mode has state here: its ipsets (named BPX-/BPX6-) are its record. */
async function bpfproxyIpvsInUse(run: XtRunner): Promise<boolean> {
  const listed = await run('ipset', ['list', '-n']);
  return listed.ok && listed.stdout.split('\n').some((l) => OUR_SET_RE.test(l.trim()));
}

/** kube-proxy's ipsets (ipvs mode), once no rule matches them any more. */
async function removeIpsets(run: XtRunner, log: Logger): Promise<boolean> {
  const listed = await run('ipset', ['list', '-n']);
  if (!listed.ok) return true; // no ipset tool or no ip_set in the kernel: kube-proxy's ipvs mode cannot have made any
  const sets = listed.stdout.split('\n').map((l) => l.trim()).filter((n) => /^KUBE-/.test(n));
  if (sets.length === 0) return true;
  const failed: string[] = [];
  for (const s of sets) {
    const r = await run('ipset', ['destroy', s]);
    if (!r.ok) failed.push(`${s}: ${r.stderr.trim()}`);
  }
  log.info({ removed: sets.filter((s) => !failed.some((f) => f.startsWith(`${s}:`))) }, "removed kube-proxy's ipsets");
  if (failed.length > 0) log.warn({ failed }, "could not remove some of kube-proxy's ipsets (a rule still uses them?)");
  return failed.length === 0;
}
