// Whether bridged packets go through the IP netfilter hooks here (br_netfilter,
// net.bridge.bridge-nf-call-iptables and -ip6tables), probed once when a rule
// mode starts. Pods on a Linux bridge (the bridge CNI plugin, kubenet,
// flannel's cni0) reach an endpoint on the same bridge by switching, not
// routing, and that endpoint's reply has the ClusterIP's DNAT undone by the
// node's conntrack only when br_netfilter hands bridged packets to the IP
// hooks. Without it the client gets the reply from the endpoint's own address:
// a TCP connect times out, a UDP reply comes from the wrong address (measured
// in Debian's 6.1 kernel, where br_netfilter is a module nothing loads on its
// own; docs/findings.md). kube-proxy's iptables and ipvs modes log this at
// start too ("missing br-netfilter module or unset sysctl"), but only when the
// sysctl exists and is not 1: a module that is not loaded says nothing there,
// and that is the case Debian's kernels are in. Routed CNIs (a veth per pod,
// no bridge) need neither, so this is a notice, not an error; the socket-level
// bpf mode translates at connect() and does not depend on it.
import { readFileSync } from 'node:fs';
import type { IPFamily } from '../model/types.js';
import type { Logger } from '../util/log.js';

export const BRIDGE_NF_CALL: Record<IPFamily, string> = {
  IPv4: 'net/bridge/bridge-nf-call-iptables',
  IPv6: 'net/bridge/bridge-nf-call-ip6tables',
};

/** A sysctl's value (path under /proc/sys), or null when it does not exist here. */
export type ReadSysctl = (key: string) => string | null;

const readProcSys: ReadSysctl = (key) => {
  try {
    // /proc/sys/net is the reading process's network namespace: the node's own.
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return null;
  }
};

/** Why bridged packets of these families skip the IP hooks here, or null when they all go through them. */
export function bridgeNetfilterGap(families: readonly IPFamily[], read: ReadSysctl = readProcSys): string | null {
  const values = families.map((f) => ({ key: BRIDGE_NF_CALL[f], value: read(BRIDGE_NF_CALL[f]) }));
  const off = values.filter((v) => v.value !== '1');
  if (off.length === 0) return null;
  if (off.some((v) => v.value === null)) return 'no br_netfilter in the kernel (/proc/sys/net/bridge is missing: the module is not loaded)';
  return off.map((v) => `${v.key.replaceAll('/', '.')}=${v.value}`).join(', ');
}

/** Logs once, at the mode's start, when bridged pod traffic would miss the rules' reverse NAT. */
export function noteBridgeNetfilter(log: Logger, families: readonly IPFamily[], read: ReadSysctl = readProcSys): void {
  const reason = bridgeNetfilterGap(families, read);
  if (reason === null) return;
  log.info({ reason },
    'bridged packets skip the netfilter hooks: a pod on a Linux bridge that reaches a service endpoint on the same bridge gets the reply ' +
    'from the endpoint\'s own address (TCP times out); where pods sit on a bridge, load br_netfilter and set net.bridge.bridge-nf-call-iptables=1 ' +
    '(and -ip6tables), as Kubernetes asks of bridge-based networks');
}
