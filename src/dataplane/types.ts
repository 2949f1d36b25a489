// The one interface every dataplane mode implements.
import type { DesiredDataplane, IdHints } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import type { ProxyMode } from '../util/modes.js';
import type { IpvsScheduler } from '../util/ipvs-schedulers.js';
import type { NodeStateWriter } from './state-file.js';

export interface SyncOptions {
  /**
   * Full: rebuild from the desired state, repairing anything that differs and
   * pruning everything not desired. Partial: only the services in `changed`
   * (planned-service keys, including removed ones) are touched.
   */
  full: boolean;
  changed: ReadonlySet<string>;
  /**
   * Only the periodic resync (kube-proxy's syncPeriod) makes this sync full:
   * a dataplane may check its state in the background instead of in line,
   * and ask for a real full sync (onFullSyncNeeded) if the check fails.
   */
  periodic?: boolean;
}

export interface SyncError {
  /** Planned-service key, or "" when the failure is not tied to one service. */
  service: string;
  /** Stable machine-readable code, see dataplane/errors.ts. */
  code: string;
  message: string;
}

export interface SyncResult {
  full: boolean;
  /** Entries written and removed. */
  upserts: number;
  deletes: number;
  /**
   * Services that could not be programmed (a map is full, ...). Each of them
   * keeps its previous state in the datapath; the next sync is full.
   */
  errors: SyncError[];
  /** Planned features this dataplane does not implement yet, once per service and feature. */
  unsupported: { service: string; feature: string }[];
}

/** Cumulative datapath counters: drops by reason and events, by metric label. */
export interface DatapathCounters {
  drops: Map<string, bigint>;
  events: Map<string, bigint>;
}

export interface Dataplane {
  readonly mode: ProxyMode;
  /** IDs found in the state an earlier run left, so the planner keeps them. Called once, before the first sync. */
  restore(): Promise<IdHints>;
  sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult>;
  /** Releases this process's handles. The datapath keeps serving. */
  dispose(): Promise<void>;
  /** The proxy's start failed after this was opened: undo what this start made (never what an earlier run left serving), then dispose. */
  abandon?(): Promise<void>;
  /** Datapath drop and event counters by label, for metrics (modes that have them). */
  readCounters?(): DatapathCounters;
  /** Entries and capacity of each map or table, for metrics (modes that have them). */
  mapUsage?(): { name: string; entries: number; capacity: number }[];
  /** Rules owned and rules written by the last sync, per table (the iptables mode, for kube-proxy's rule metrics). */
  ruleCounts?(): { table: string; total: number; written: number }[];
  /** Where each successful sync is recorded for `bpfproxy status` (state-file.ts); set by whoever owns the proxy. */
  nodeState?: NodeStateWriter | null;
  /** The own Node's status.addresses, when the Node or the node's addresses change (the bpf mode's default --devices follows them, issue 7). */
  followNode?(addresses: readonly { type: string; address: string }[]): void;
  /** Asks the proxy for a full sync soon (a background check found the datapath differs); set by whoever owns the proxy. */
  onFullSyncNeeded?: (() => void) | null;
}

/** What each mode needs to open; each mode reads its own section. */
export interface DataplaneOptions {
  bpf: {
    /** bpffs directory the maps and links are pinned under (--bpf-fs). */
    pinDir: string;
    /** cgroup v2 directory the socket programs attach to (--cgroup-root). */
    cgroupRoot: string;
    /** Capacities by map-size setting name (frontends, backends, ...); see bpf/sizes.ts. */
    mapSizes: Readonly<Record<string, number>>;
    /** Node devices the XDP and TC programs attach to (--devices); 'auto': those holding the node's addresses (bpf/devices.ts); empty or absent: none. */
    devices?: readonly string[] | 'auto';
    /** A specific --bind-address: the node IP the default devices are chosen by. */
    nodeIPs?: readonly string[];
    /** The Maglev array: tables (--bpf-lb-maglev-map-max) of M slots (--bpf-lb-maglev-table-size). */
    maglev?: { tables: number; m: number };
  };
  /** The rule-based modes: how local pods are told apart, for masquerading (--cluster-cidr, --detect-local-mode). */
  nftables?: {
    clusterCIDRs: readonly string[];
    detectLocalMode: string;
  };
  /** The iptables mode, kube-proxy's options (--masquerade-all, --iptables-masquerade-bit, --iptables-localhost-nodeports). */
  iptables?: {
    masqueradeAll: boolean;
    masqueradeBit: number;
    /** Serve NodePorts on 127.0.0.1 too: the flag, and NodePorts on every local address (no --nodeport-addresses). */
    localhostNodePorts: boolean;
  };
  /** The ipvs mode, kube-proxy's options (--ipvs-scheduler, --ipvs-strict-arp, the timeouts in ms, 0: leave the kernel's); it also reads the iptables masquerade options. */
  ipvs?: {
    scheduler: IpvsScheduler;
    strictARP: boolean;
    tcpTimeoutMs: number;
    tcpFinTimeoutMs: number;
    udpTimeoutMs: number;
  };
}

/** What a mode does, reported when it is opened so an operator sees what a fallback costs. */
export interface ModeCapabilities {
  /** Handles traffic that arrives as packets (NodePort, ExternalIP and LoadBalancer from outside the node). */
  packetDatapath: boolean;
  /** Translates a connection once, at the socket: no per-packet NAT, the backend sees the client. */
  socketLB: boolean;
  /** Datapath event counters (readCounters). */
  counters: boolean;
  /** Entries and capacity of its maps or tables (mapUsage). */
  mapUsage: boolean;
}

/** Limits the planner must respect for this mode. */
export interface ModeLimits {
  /** Largest service ID the mode can encode. */
  maxServiceId: number;
}

/** One entry in the table of modes (src/dataplane/select.ts): adding a mode is adding one of these. */
export interface DataplaneMode {
  readonly name: ProxyMode;
  readonly capabilities: ModeCapabilities;
  readonly limits: ModeLimits;
  /**
   * Why this mode cannot run here, or null when nothing cheap says it cannot.
   * A probe only looks (no mounts, no loads); open() is the real test.
   */
  probe(options: DataplaneOptions): string | null | Promise<string | null>;
  open(options: DataplaneOptions, log: Logger): Dataplane | Promise<Dataplane>;
}

/**
 * A reason a mode cannot run that no other mode would cure, so falling back
 * would do harm: another proxy holds this node's datapath (its pin
 * directory's lock), and a fallback mode would program the same node beside it.
 */
export class NoFallbackError extends Error {
  override name = 'NoFallbackError';
}
