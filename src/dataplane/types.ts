// The one interface every dataplane mode implements.
import type { DesiredDataplane, IdHints } from '../planner/types.js';

export type ProxyMode = 'bpf' | 'nftables' | 'iptables' | 'ipvs';

export interface SyncOptions {
  /**
   * Full: rebuild from the desired state, repairing anything that differs and
   * pruning everything not desired. Partial: only the services in `changed`
   * (planned-service keys, including removed ones) are touched.
   */
  full: boolean;
  changed: ReadonlySet<string>;
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

export interface Dataplane {
  readonly mode: ProxyMode;
  /** IDs found in the state an earlier run left, so the planner keeps them. Called once, before the first sync. */
  restore(): Promise<IdHints>;
  sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult>;
  /** Releases this process's handles. The datapath keeps serving. */
  dispose(): Promise<void>;
  /** Datapath event counters by name, for metrics (modes that have them). */
  readCounters?(): Map<string, bigint>;
  /** Entries and capacity of each map or table, for metrics (modes that have them). */
  mapUsage?(): { name: string; entries: number; capacity: number }[];
}
