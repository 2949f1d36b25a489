// The bpf dataplane: DesiredDataplane -> pinned maps read by the BPF
// programs, through the declared tables (lb-tables.ts) and the generic sync
// (sync.ts). A full sync dumps the maps and repairs every difference (so a
// restarted proxy converges without flushing, and an entry edited behind its
// back is put right); a partial sync touches only the changed services and
// trusts the mirror.
import type { Logger } from '../../util/log.js';
import { DEFAULT_MAGLEV_M } from '../../util/maglev-size.js';
import { BPF_OBJECT_DIR } from '../../util/paths.js';
import type { DesiredDataplane, IdHints, PlannedService } from '../../planner/types.js';
import { hasExternalFrontends, newIdHints } from '../../planner/types.js';
import type { FamilyNumber } from '../../planner/address-key.js';
import type { Dataplane, DatapathCounters, SyncError, SyncOptions, SyncResult } from '../types.js';
import type { NodeStateWriter } from '../state-file.js';
import { BACKEND, FE_KEY, FE_VAL } from './layout.js';
import { encodeService, LB_TABLES, reserveFor, tooLarge, type LbTables } from './lb-tables.js';
import { readLinks, resolveDevices } from './devices.js';
import { NodeDeviceFollower } from './node-devices.js';
import { pinnedXdpDevices } from './attach.js';
import { maglevArrayBytes, MaglevWriter, PACKET_LB_TABLES } from './maglev-tables.js';
import { packetDevicesAfterProbe } from './probe-xdp.js';
import { encodeRanges } from './range-tables.js';
import { LocalRedirect } from './local-redirect.js';
import type { Table } from './table.js';
import { mapArrayWords, type MappedArray } from './mmap.js';
import { cleanupPins, ensureBpffs, loadSockDatapath, type LoadOptions, type SockDatapath } from './loader.js';
import type { BpfMap } from './map.js';
import { strerror } from './native.js';
import { cgroupRootProblem, holdsPins, lockPinDir, type PinDirLock } from './pindir.js';
import { sumCounters } from './reasons.js';
import { moveConnectedUdp, removedUdpBackends, SockDestroyer, udpServices } from './sock-destroy.js';
import { isFull, TableSync, type MapIO, type OwnerNames, type VerifyResult, type WriteFaults } from './sync.js';

export class BpfDataplane implements Dataplane {
  readonly mode = 'bpf' as const;
  private readonly sync_: TableSync;
  private readonly t: LbTables;
  /**
   * The planned service last applied per key: a partial sync must find a
   * removed service's entries under the ID they carry, and a full sync
   * whose dump matches the mirror need only look at services that changed.
   */
  private applied = new Map<string, PlannedService>();
  /** The mirror is exactly what `applied` made: the last full sync and every sync since went through. */
  private clean = false;
  private readonly reported = new Set<string>();
  /** The periodic check in flight (one at a time). */
  private verifying: Promise<VerifyResult> | null = null;
  /** A periodic check found the maps differ from the mirror (or failed): the next full sync reloads, periodic or not. */
  private drift = false;
  onFullSyncNeeded: (() => void) | null = null;

  /** The pin directory's lock and whether this start found it empty: only then does abandon() remove what it made. */
  private owner: { lock: PinDirLock; fresh: boolean; pinDir: string } | null = null;
  /** Moves connected UDP sockets off removed backends; null where the kernel cannot (sock-destroy.ts). */
  private destroyer: SockDestroyer | null = null;
  private closed = false;

  /** The Maglev tables of the packet programs (maglev-tables.ts), when they are loaded. */
  private readonly maglev: MaglevWriter | null = null;
  private readonly maglevSlots: MappedArray | null = null;
  private readonly maglevTables: number = 0;
  /** loadBalancerSourceRanges (range-tables.ts), when the packet programs are loaded. */
  private readonly ranges: Table | null = null;
  /** Local backends reached by XDP redirect into their veth (local-redirect.ts), when the packet programs are loaded. */
  private readonly redirect: LocalRedirect | null = null;

  /** Without --devices: attaches the devices holding the Node's addresses once it is known (node-devices.ts, issue 7). */
  private nodeDevices: NodeDeviceFollower | null = null;

  private constructor(private readonly dp: SockDatapath, private readonly log: Logger, private packetDevices: readonly string[], faults?: WriteFaults, maglevM = DEFAULT_MAGLEV_M) {
    const { fe, set, be, member } = dp.maps;
    const io = new Map<string, MapIO>([fe, set, be, member, ...(dp.packet ? [dp.packet.maglevRows, dp.packet.ranges] : [])].map((m: BpfMap) => [m.name, m]));
    this.sync_ = new TableSync(dp.packet ? PACKET_LB_TABLES : LB_TABLES, io, describeFailure, faults);
    const tbl = (name: string) => this.sync_.table(name);
    this.t = { backends: tbl('backends'), members: tbl('memberships'), slots: tbl('set slots'), headers: tbl('set headers'), frontends: tbl('frontends') };
    if (dp.packet) {
      const slots = dp.packet.maglevSlots;
      this.maglevSlots = mapArrayWords(slots.fd, slots.capacity, slots.valueSize, slots.name);
      this.maglev = new MaglevWriter(tbl('maglev rows'), this.maglevSlots);
      // From the array as loaded (a pinned one keeps its size): whole tables of this M.
      this.maglevTables = Math.floor((slots.capacity * 2) / maglevM);
      const bytes = maglevArrayBytes(slots.capacity);
      log.info({ map: slots.name, tables: this.maglevTables, bytes },
        `Maglev array: ${this.maglevTables} tables, ${(bytes / 2 ** 20).toFixed(1)} MiB (--bpf-lb-maglev-map-max x M x 4 bytes)`);
      this.ranges = tbl('source ranges');
      this.redirect = new LocalRedirect({ eps: dp.packet.localEps, devs: dp.packet.localDevs, log });
    }
  }

  /**
   * Takes the pin directory's lock (one proxy per --bpf-fs), checks the
   * settings nothing has checked yet, then loads. A load that fails midway
   * removes what it pinned and attached, unless the directory held pins
   * before: those are an earlier healthy run's datapath, still serving.
   */
  static open(opts: Omit<LoadOptions, 'devices'> & { devices?: readonly string[] | 'auto'; nodeIPs?: readonly string[]; faults?: WriteFaults }): BpfDataplane {
    const problem = cgroupRootProblem(opts.cgroupRoot);
    if (problem) throw new Error(problem);
    const lock = lockPinDir(opts.pinDir);
    const fresh = !holdsPins(opts.pinDir);
    let dp: SockDatapath;
    let devices: readonly string[] = [];
    // Read before this start attaches anything: what an earlier run left attached.
    const pinned = opts.devices === 'auto' ? pinnedXdpDevices(opts.pinDir) : [];
    try {
      devices = resolveDevices(opts.devices, { nodeIPs: opts.nodeIPs, log: opts.log });
      if (devices.length > 0) {
        ensureBpffs(opts.pinDir, opts.log);
        devices = packetDevicesAfterProbe(devices, opts.objectDir ?? BPF_OBJECT_DIR, opts.pinDir, opts.log);
      }
      dp = loadSockDatapath({ ...opts, devices });
    } catch (err) {
      if (fresh) undo(opts.pinDir, opts.log, err);
      lock.release();
      throw err;
    }
    const plane = new BpfDataplane(dp, opts.log, devices, opts.faults, opts.maglev?.m);
    plane.owner = { lock, fresh, pinDir: opts.pinDir };
    if (opts.devices === 'auto') {
      plane.nodeDevices = new NodeDeviceFollower({ base: devices, pinned, packetLoaded: dp.packet !== null, links: readLinks,
        attach: (d) => { dp.attachDevice(d); }, detach: (d) => dp.detachDevice(d), log: opts.log });
    }
    plane.destroyer = SockDestroyer.open({ pinDir: opts.pinDir, cgroupRoot: opts.cgroupRoot, objectDir: opts.objectDir ?? BPF_OBJECT_DIR, log: opts.log });
    return plane;
  }

  /** The Node's addresses, whenever the Node or the node's addresses change: the default --devices follows them (never an explicit list). */
  followNode(addresses: readonly { type: string; address: string }[]): void {
    if (!this.nodeDevices || this.closed) return;
    try {
      this.nodeDevices.follow(addresses);
    } catch (err) {
      this.log.error({ err }, 'following the Node\'s addresses to the XDP/TC devices failed: the devices stay as they are until the Node or the node\'s addresses change again');
    }
    this.packetDevices = this.nodeDevices.devices;
  }

  get maps(): SockDatapath['maps'] {
    return this.dp.maps;
  }

  async restore(): Promise<IdHints> {
    this.sync_.reload();
    const hints = newIdHints();
    const fe = this.t.frontends;
    for (let s = 0; s < fe.index.end; s++) {
      if (!fe.index.used[s]) continue;
      const k = fe.keyWords(s);
      const b = new Uint8Array(k.buffer, k.byteOffset, FE_KEY.size);
      const port = (b[FE_KEY.fields.port.offset]! << 8) | b[FE_KEY.fields.port.offset + 1]!;
      hints.frontends.add(b[FE_KEY.fields.proto.offset]!, b[FE_KEY.fields.family.offset] as FamilyNumber, b, port, fe.valueWord(s, FE_VAL.fields.svc_id.offset / 4), FE_KEY.fields.addr.offset);
    }
    const be = this.t.backends;
    for (let s = 0; s < be.index.end; s++) {
      if (!be.index.used[s]) continue;
      const v = be.valueWords(s);
      const b = new Uint8Array(v.buffer, v.byteOffset, BACKEND.size);
      const port = (b[BACKEND.fields.port.offset]! << 8) | b[BACKEND.fields.port.offset + 1]!;
      hints.backends.add(b[BACKEND.fields.proto.offset]!, b[BACKEND.fields.family.offset] as FamilyNumber, b, port, be.keyWords(s)[0]!, BACKEND.fields.addr.offset);
    }
    if (hints.frontends.size > 0) this.log.info({ frontends: hints.frontends.size, backends: hints.backends.size }, 'found the datapath of an earlier run: keeping its IDs');
    return hints;
  }

  nodeState: NodeStateWriter | null = null;

  async sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult> {
    const started = performance.now();
    let full = opts.full;
    let changed: Iterable<string> = opts.changed;
    if (full) {
      const missing = this.repairPins();
      if (missing) return { full, upserts: 0, deletes: 0, errors: [missing], unsupported: [] };
    }
    // Issue 6: the periodic resync's dumps take ~100 ms at 10,000 services x
    // 10 endpoints (more under load), and an endpoint change would wait for
    // them. So they go to a worker thread and are checked in the background
    // (verify()), after this sync, a partial one over what differs.
    const checkLater = full && opts.periodic === true && this.clean && !this.drift;
    if (checkLater) {
      full = false;
      changed = differing(this.applied, desired.services);
    } else if (full) {
      const rebuilt = this.sync_.reload();
      this.drift = false;
      // The kernel holds what the mirror says, and the mirror holds what the
      // applied plans made: the full sync is a partial one over what differs
      // (planned objects are reused while unchanged, so identity says it).
      if (rebuilt.length === 0 && this.clean) {
        full = false;
        changed = differing(this.applied, desired.services);
      } else if (rebuilt.length > 0 && this.clean) {
        this.log.warn({ tables: rebuilt }, 'pinned maps differ from what this proxy wrote: repairing them');
      }
    }
    // A write that throws midway leaves `applied` behind the mirror: until a
    // sync goes through, a full sync must not shrink to the services that differ.
    const wasClean = this.clean;
    this.clean = false;
    const result = this.write(desired, full, full ? desired.services.keys() : changed);
    this.clean = result.errors.length === 0 && (full || wasClean);
    // Started after the writes (a dump that overlaps one is taken again). A
    // sync that failed leaves the next one full anyway.
    if (checkLater && this.clean) this.checkInBackground();
    this.redirect?.update(desired);
    this.nodeState?.synced(desired, { ...result, full: opts.full }, started);
    return { ...result, full: opts.full };
  }

  private write(desired: DesiredDataplane, full: boolean, keys: Iterable<string>): SyncResult {
    const errors: SyncError[] = [];
    const unsupported: SyncResult['unsupported'] = [];
    // A full sync names every service and prunes by scanning: the owners and
    // names a partial one collects key by key are not needed (names are
    // built on first use, for a message).
    const names = full ? namesOnFirstUse(desired.services, this.applied) : new Map<number, string>();
    const owners = new Set<number>();
    const keep = new Set<number>();
    const touched: string[] = [];
    this.sync_.begin();
    this.maglev?.begin();
    if (full) reserveFor(this.t, desired.services.values(), this.dp.packet !== null);
    const written: PlannedService[] = [];
    for (const key of keys) {
      touched.push(key);
      const oldId = this.applied.get(key)?.id;
      if (oldId !== undefined && names instanceof Map) {
        owners.add(oldId);
        names.set(oldId, key);
      }
      const svc = desired.services.get(key);
      if (!svc) continue;
      if (names instanceof Map) names.set(svc.id, key);
      const problem = tooLarge(svc);
      if (problem) {
        // It cannot be written: whatever it has stays, under its old ID or (after a restart) its restored one.
        errors.push({ service: key, code: 'SERVICE_TOO_LARGE', message: problem });
        if (oldId !== undefined) keep.add(oldId);
        keep.add(svc.id);
        continue;
      }
      if (!full) owners.add(svc.id);
      const ext = encodeService(this.t, svc, this.dp.packet !== null);
      if (this.maglev && !this.maglev.encode(svc, ext)) this.warnMaglevFull(svc.key);
      if (this.ranges) encodeRanges(this.ranges, svc);
      written.push(svc);
      for (const feature of this.unsupportedFeatures(svc)) unsupported.push({ service: key, feature });
    }
    const res = this.sync_.commit({ full, owners, keep, names });
    this.maglev?.apply(res.failed);
    errors.push(...res.errors);

    // Next: untouched services as they were (partial), failed ones as their
    // entries still are, written ones as planned.
    // What the touched UDP services held before this sync (`next` may be `applied` itself).
    // Nothing applied yet (the first sync): no UDP backend can have left, and no pass over every key is needed to say so.
    const before = this.destroyer && this.applied.size > 0 ? udpServices(this.applied, touched) : null;
    const next = full ? new Map<string, PlannedService>() : this.applied;
    for (const key of touched) {
      const old = this.applied.get(key);
      next.delete(key);
      const id = desired.services.get(key)?.id;
      if (old !== undefined && id !== undefined && (keep.has(id) || res.failed.has(id))) next.set(key, old);
    }
    for (const svc of written) if (!res.failed.has(svc.id)) next.set(svc.key, svc);
    this.applied = next;
    if (before) moveConnectedUdp(this.destroyer, removedUdpBackends(before, next, touched), this.log);
    return { full, upserts: res.upserts, deletes: res.deletes, errors, unsupported };
  }

  /**
   * Compares every pinned map with the mirror, the dumps made off the event
   * loop (TableSync.verify()); never repairs. One check at a time: a second
   * call joins the one in flight.
   */
  verify(): Promise<VerifyResult> {
    this.verifying ??= this.sync_.verify().finally(() => {
      this.verifying = null;
    });
    return this.verifying;
  }

  /** The periodic check, not awaited by the sync: what differs makes the next sync a real full one, asked for now. */
  private checkInBackground(): void {
    if (this.verifying) return;
    this.verify().then((r) => {
      if (this.closed) return;
      if (r.raced.length > 0) this.log.debug({ maps: r.raced }, 'maps written during each of their dumps: checked at the next period');
      if (r.drift.length === 0) return;
      // The full sync it asks for repairs them and logs 'pinned maps differ' once.
      this.drift = true;
      this.log.debug({ maps: r.drift }, 'the periodic check found pinned maps that differ from the mirror: asking for a full sync');
      this.onFullSyncNeeded?.();
    }, (err: unknown) => {
      if (this.closed) return;
      this.drift = true;
      this.log.warn({ err }, 'the periodic check of the pinned maps failed: the next full sync reloads them in line');
      this.onFullSyncNeeded?.();
    });
  }

  /** Drop and event counters summed over CPUs, by label (reasons.ts). */
  readCounters(): DatapathCounters {
    return sumCounters(this.dp.maps.stats.dump());
  }

  /** Entries and capacity per map, for metrics. */
  mapUsage(): { name: string; entries: number; capacity: number }[] {
    return this.sync_.usage();
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A dump on a worker thread reads the map fds: they close after it.
    await this.verifying?.catch(() => undefined);
    this.maglevSlots?.unmap();
    this.redirect?.dispose();
    this.destroyer?.close();
    this.dp.close();
    this.owner?.lock.release();
    this.owner = null;
  }

  /** The start failed after opening: remove what this start made, if it made the pin directory's contents. */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.verifying?.catch(() => undefined);
    const owner = this.owner;
    this.maglevSlots?.unmap();
    this.redirect?.dispose();
    this.destroyer?.close();
    this.dp.close();
    this.owner = null;
    if (!owner) return;
    if (owner.fresh) undo(owner.pinDir, this.log);
    owner.lock.release();
  }

  /**
   * Every full sync: the pins and links this load made must still be there
   * (repair.ts). What was removed is put back, in one log line; what cannot
   * be is an error not tied to a service, which fails /healthz.
   */
  private repairPins(): SyncError | null {
    const r = this.dp.repair();
    if (r.restored.length > 0) this.log.warn({ restored: r.restored }, `${r.restored.length} pins or links were removed behind the proxy's back: restored`);
    if (r.failed.length === 0) return null;
    const message = `${r.failed.length} pins or links were removed behind the proxy's back and could not be restored: ${r.failed.join('; ')}`;
    this.log.error({ failed: r.failed }, message);
    return { service: '', code: 'PINS_MISSING', message };
  }

  /** Once per service: its external set found no free Maglev row, so its new flows pick backends at random. */
  private warnMaglevFull(key: string): void {
    const k = `${key}\0maglev`;
    if (this.reported.has(k)) return;
    this.reported.add(k);
    this.log.warn({ service: key, tables: this.maglevTables },
      `no free Maglev table (bpx_maglev_v1 holds ${this.maglevTables}: raise --bpf-lb-maglev-map-max, then \`bpfproxy cleanup\` and a restart resize a pinned array): new flows of this service pick a random backend, which differs from node to node`);
  }

  private unsupportedFeatures(svc: PlannedService): string[] {
    const out: string[] = [];
    const note = (feature: string) => {
      const k = `${svc.key}\0${feature}`;
      if (this.reported.has(k)) return;
      this.reported.add(k);
      out.push(feature);
    };
    // From outside the node (XDP/TC) both families and TCP, UDP and SCTP are served.
    if (svc.protocol === 'SCTP') note('SCTP from this node\'s pods and processes: the socket hooks translate TCP and UDP only (from outside the node, XDP serves it)');
    if (hasExternalFrontends(svc.frontends) && this.packetDevices.length === 0) {
      note('NodePort/ExternalIP/LoadBalancer traffic from outside the node (no --devices given, or the kernel probe refused them: the XDP/TC programs are not attached); connections from this node and its pods work');
    }
    if (svc.sourceRanges.length > 0 && !this.ranges) note('loadBalancerSourceRanges (enforced at XDP: no --devices given, so LoadBalancer IPs are not served from outside the node)');
    return out;
  }
}

/** Service ID -> key of the applied and the desired services (the desired win), built the first time a name is asked for. */
function namesOnFirstUse(desired: ReadonlyMap<string, PlannedService>, applied: ReadonlyMap<string, PlannedService>): OwnerNames {
  let byId: Map<number, string> | null = null;
  return {
    get(id: number): string | undefined {
      if (!byId) {
        byId = new Map();
        for (const [key, svc] of applied) byId.set(svc.id, key);
        for (const [key, svc] of desired) byId.set(svc.id, key);
      }
      return byId.get(id);
    },
  };
}

/** Keys whose planned service is not the one applied (added, changed or removed). */
function differing(applied: ReadonlyMap<string, PlannedService>, desired: ReadonlyMap<string, PlannedService>): string[] {
  const out: string[] = [];
  for (const [key, svc] of desired) if (applied.get(key) !== svc) out.push(key);
  for (const key of applied.keys()) if (!desired.has(key)) out.push(key);
  return out;
}

/** Removes what a failed start pinned and attached; a failure to do so is logged, the start's own error is what counts. */
function undo(pinDir: string, log: Logger, cause?: unknown): void {
  try {
    const removed = cleanupPins(pinDir, log);
    log.info({ pinDir, removed: removed.length, cause: cause instanceof Error ? cause.message : undefined }, 'the start failed: removed what it had pinned and attached');
  } catch (err) {
    log.error({ err, pinDir }, 'the start failed, and removing what it had pinned failed too: run `bpfproxy cleanup`');
  }
}

function describeFailure(map: MapIO, setting: string, errno: number, service: string): SyncError {
  const who = service || 'an entry no service owns';
  return isFull(errno)
    ? {
        service,
        code: 'MAP_FULL',
        message: `map ${map.name} is full (${map.capacity} entries): ${who} does not fit and keeps its previous state; ` +
          `raise bpf.mapSizes.${setting} (then \`bpfproxy cleanup\` and restart to resize a pinned map)`,
      }
    : { service, code: 'MAP_WRITE', message: `write to map ${map.name} failed for ${who}: ${strerror(errno)}` };
}
