// Loading the BPF objects, pinning their maps, attaching their programs, and
// removing all of it again (`bpfproxy cleanup`). One lifecycle, each step's
// failure named: check every object against the codecs -> load every object
// (maps pinned by name, shared between objects) -> attach -> (run) -> close.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import { BPF_OBJECT_DIR } from '../../util/paths.js';
import { DeviceAttacher, type Attachment, type TcMode, type XdpMode } from './attach.js';
import { CLSACT_RECORDS, currentNetns, readRecords } from './clsact-records.js';
import { ALL_LAYOUTS, CONSTANT_ENUMS, checkConstants, checkLayouts } from './layout.js';
import { BpfMap } from './map.js';
import * as native from './native.js';
import { DATAPATH_OBJECTS, hookOf, SOCK_OBJECT, type ObjectSpec } from './objects.js';
import { ownershipProblem } from './pindir.js';
import { COUNTERS_MAP } from './reasons.js';
import { repairPins, type OwnedPin, type RepairReport } from './repair.js';
import { maglevMapSizes } from './maglev-tables.js';
import { sizesByMap } from './sizes.js';
import { statePathFor } from '../state-file.js';
import { udpPathRecordFor } from './udp-path-record.js';

export type { Attachment } from './attach.js';

const BPF_FS_MAGIC = 0xcafe4a11;

export interface LoadOptions {
  /** bpffs directory for pins (--bpf-fs). */
  pinDir: string;
  /** cgroup v2 directory the socket programs attach to (--cgroup-root). */
  cgroupRoot: string;
  /** By setting name (see MAP_SIZE_SETTINGS). */
  mapSizes: Readonly<Record<string, number>>;
  /** Node devices for the packet programs (--devices); none: the socket programs only. */
  devices?: readonly string[];
  /** The Maglev array's size: tables of M slots (maglev-tables.ts); default: the size compiled into bpf/lib/maglev.h. */
  maglev?: { tables: number; m: number };
  objectDir?: string;
  log: Logger;
}

export interface DatapathOptions extends Omit<LoadOptions, 'cgroupRoot'> {
  /** Needed when an object has cgroup programs. */
  cgroupRoot?: string;
  /** Node devices the xdp and tc programs attach to (names in this network namespace). */
  devices?: readonly string[];
  /** Default DATAPATH_OBJECTS. */
  objects?: readonly ObjectSpec[];
  /** `clsact` forces the pre-tcx path (tests, or a kernel whose tcx misbehaves); default auto (probed). */
  tc?: TcMode;
  /** `generic` forces generic XDP; `native` refuses to fall back; default auto. */
  xdp?: XdpMode;
}

export interface Datapath {
  /** A map of any loaded object, by its pinned name. */
  map(name: string): BpfMap;
  /** Every pinned map name of the loaded objects. */
  readonly mapNames: readonly string[];
  /** What this load attached or replaced, in order. */
  readonly attachments: readonly Attachment[];
  /** Closes this process's handles; the pinned links and maps stay. */
  close(): void;
  /** Puts back the map pins and pinned links of this load that someone removed (repair.ts). */
  repair(): RepairReport;
  /** Attaches the loaded device programs (xdp, tc) to one more device, as at load; repair() keeps its links from then on. */
  attachDevice(device: string): Attachment[];
  /** Takes them off a device again (attach.ts detach); returns what was removed. */
  detachDevice(device: string): string[];
}

export interface SockDatapath {
  /** stats: the drop and event counters (labels in reasons.ts, checked against BTF with the other constants). */
  maps: { fe: BpfMap; set: BpfMap; be: BpfMap; member: BpfMap; aff: BpfMap; skRnat: BpfMap; flow: BpfMap; stats: BpfMap };
  /** The maps only the packet programs read (Maglev rows and slots, source ranges), when they are loaded (devices given). */
  /** localEps/localDevs: local backends reached by redirect (local-redirect.ts). */
  packet: { maglevRows: BpfMap; maglevSlots: BpfMap; ranges: BpfMap; localEps: BpfMap; localDevs: BpfMap } | null;
  close(): void;
  repair(): RepairReport;
  attachDevice(device: string): Attachment[];
  detachDevice(device: string): string[];
}

function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Makes sure `pinDir` lives on bpffs, mounting /sys/fs/bpf when it is not (like Cilium does). */
export function ensureBpffs(pinDir: string, log: Logger): void {
  if (existsSync(pinDir) && isBpffs(pinDir)) return;
  if (pinDir.startsWith('/sys/fs/bpf/') && !isBpffs('/sys/fs/bpf')) {
    log.info({ path: '/sys/fs/bpf' }, 'bpffs is not mounted: mounting it');
    execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  // 0700, and only ours: another user's directory lets that user unlink our pins (pindir.ts).
  mkdirSync(pinDir, { recursive: true, mode: 0o700 });
  if (!isBpffs(pinDir)) throw new Error(`--bpf-fs ${pinDir} is not on a bpf filesystem (mount -t bpf bpf DIR)`);
  const problem = ownershipProblem(pinDir, '--bpf-fs');
  if (problem) throw new Error(problem);
}

/**
 * What is wrong with the object at `path` under its declaration: codecs that
 * differ from its BTF (every struct and enum it uses must be there and match;
 * any other codec's struct or enum found there must match too), and programs
 * the declaration does not cover or names without the object having them.
 * Reads BTF only: no privileges, nothing loaded.
 */
export function checkObject(spec: ObjectSpec, path: string): string[] {
  const h = native.objectOpen(path);
  try {
    const btfStruct = (name: string) => native.btfStruct(h, name);
    const btfEnum = (name: string) => native.btfEnum(h, name);
    const structs = [...spec.structs, ...ALL_LAYOUTS.filter((l) => !spec.structs.includes(l) && btfStruct(l.name) !== null)];
    const enums = [...spec.enums, ...Object.keys(CONSTANT_ENUMS).filter((e) => !spec.enums.includes(e) && btfEnum(e) !== null)];
    const problems = [...checkLayouts(btfStruct, structs), ...checkConstants(btfEnum, enums)];
    const programs = native.objectPrograms(h).map((p) => p.name);
    for (const p of programs) if (!hookOf(spec, p)) problems.push(`program ${p}: no hook declared for it (objects.ts)`);
    for (const p of Object.keys(spec.programs)) if (p !== '*' && !programs.includes(p)) problems.push(`program ${p}: declared, but not in the object`);
    return problems;
  } finally {
    native.objectClose(h);
  }
}

/**
 * Loads every declared object into one pin directory, so maps of the same
 * name are one map, then attaches each program to its hook through a pinned
 * link (or a recorded clsact filter). A pinned map of another layout is
 * refused, naming it. Attachments already made stay when a later one fails:
 * they are pinned, a retry replaces them in place, and cleanup removes them.
 */
export function loadDatapath(opts: DatapathOptions): Datapath {
  const { pinDir, log } = opts;
  const objects = opts.objects ?? DATAPATH_OBJECTS;
  const dir = opts.objectDir ?? BPF_OBJECT_DIR;
  ensureBpffs(pinDir, log);
  mkdirSync(join(pinDir, 'links'), { recursive: true, mode: 0o700 });
  const sizes = { ...sizesByMap(opts.mapSizes), ...(opts.maglev ? maglevMapSizes(opts.maglev.tables, opts.maglev.m) : {}) };

  // Every object is checked before any is loaded: a mismatch pins nothing.
  for (const spec of objects) {
    const problems = checkObject(spec, join(dir, spec.file));
    if (problems.length > 0) {
      throw new Error(`${join(dir, spec.file)} does not match this build's declaration and map codecs (rebuild with \`make build\`):\n  ${problems.join('\n  ')}`);
    }
  }

  const loaded: { spec: ObjectSpec; handle: native.ObjectHandle }[] = [];
  const closeAll = () => { for (const o of loaded) native.objectClose(o.handle); };
  try {
    for (const spec of objects) {
      const path = join(dir, spec.file);
      let obj: native.LoadedObject;
      try {
        obj = native.objectLoad(path, pinDir, sizes);
      } finally {
        const libbpfLog = native.takeLibbpfLog();
        if (libbpfLog) log.warn({ object: path, libbpf: libbpfLog }, 'libbpf said');
      }
      loaded.push({ spec, handle: obj.handle });
      for (const note of obj.notes) log.warn({ object: path }, note);
    }

    const attachments: Attachment[] = [];
    const owned: OwnedPin[] = [];
    /** The pinned device links by device, so detachDevice can drop a device's from what repair() restores. */
    const deviceOwned = new Map<string, OwnedPin[]>();
    const devices = new DeviceAttacher(pinDir, { tc: opts.tc ?? 'auto', xdp: opts.xdp ?? 'auto' }, log);
    /** The device programs in load order, for devices attached after the load (attachDevice). */
    const deviceProgs: { ref: { object: string; program: string; fd: number }; hook: 'xdp' | 'tc-ingress' | 'tc-egress' }[] = [];
    const attachTo = (ref: (typeof deviceProgs)[number]['ref'], hook: (typeof deviceProgs)[number]['hook'], device: string): Attachment => {
      const redo = () => devices.attach(ref, hook, device);
      const a = redo();
      if (a.via !== 'clsact') deviceOwned.set(device, [...(deviceOwned.get(device) ?? []), { kind: 'link', what: `${ref.program} on ${device}`, path: a.pin, redo }]);
      return a;
    };
    for (const { spec, handle } of loaded) {
      for (const prog of native.objectPrograms(handle)) {
        const hook = hookOf(spec, prog.name)!;
        if (hook === 'none') continue;
        const ref = { object: spec.file, program: prog.name, fd: native.objectProgFd(handle, prog.name) };
        if (hook === 'cgroup') {
          const redo = () => attachCgroup(ref, prog.attachType, opts.cgroupRoot, pinDir);
          const a = redo();
          attachments.push(a);
          owned.push({ kind: 'link', what: `${prog.name} on ${a.target}`, path: a.pin, redo });
          continue;
        }
        deviceProgs.push({ ref, hook });
        for (const device of opts.devices ?? []) attachments.push(attachTo(ref, hook, device));
      }
    }
    for (const a of attachments) {
      log.debug({ object: a.object, program: a.program, target: a.target, via: a.via, linkId: a.linkId, progId: a.progId }, a.replaced ? 'program replaced in place' : 'program attached');
    }

    const owner = new Map<string, native.ObjectHandle>();
    for (const { handle } of loaded) for (const name of native.objectPinnedMaps(handle)) if (!owner.has(name)) owner.set(name, handle);
    const opened = new Map<string, BpfMap>();
    return {
      map(name) {
        let m = opened.get(name);
        if (!m) {
          const h = owner.get(name);
          if (!h) throw new Error(`no loaded object has a pinned map ${name} (it has ${[...owner.keys()].join(', ')})`);
          m = new BpfMap(name, native.objectMapFd(h, name));
          opened.set(name, m);
        }
        return m;
      },
      mapNames: [...owner.keys()],
      repair: () => repairPins([
        ...[...owner].map(([name, h]): OwnedPin => ({ kind: 'map', name, path: join(pinDir, name), fd: native.objectMapFd(h, name) })),
        ...owned,
        ...[...deviceOwned.values()].flat(),
      ]),
      attachments,
      attachDevice(device) {
        return deviceProgs.map(({ ref, hook }) => attachTo(ref, hook, device));
      },
      detachDevice(device) {
        deviceOwned.delete(device);
        return devices.detach(device);
      },
      close: closeAll,
    };
  } catch (err) {
    closeAll();
    throw err;
  }
}

/** Attaches (or atomically replaces) a cgroup program through the link pinned at links/<program>. */
function attachCgroup(prog: { object: string; program: string; fd: number }, attachType: number, cgroupRoot: string | undefined, pinDir: string): Attachment {
  if (!cgroupRoot) throw new Error(`attach cgroup program ${prog.program} (${prog.object}): no cgroup given (--cgroup-root)`);
  const pin = join(pinDir, 'links', prog.program);
  let replaced: boolean;
  try {
    replaced = native.cgroupLink(prog.fd, cgroupRoot, attachType, pin);
  } catch (err) {
    throw new Error(`attach cgroup program ${prog.program} (${prog.object}) to ${cgroupRoot}: ${(err as Error).message}`, { cause: err });
  }
  const info = native.pinnedLinkInfo(pin);
  return { object: prog.object, program: prog.program, hook: 'cgroup', target: cgroupRoot, via: 'cgroup-link', replaced, linkId: info?.id ?? 0, progId: info?.progId ?? 0, pin };
}

/**
 * The socket datapath with its maps by role: the contract the bpf dataplane
 * reads. With devices, the packet programs (DATAPATH_OBJECTS) are loaded too
 * and attached to them; without, only the socket programs (opt-in until the
 * packet datapath is complete, issue 7).
 */
export function loadSockDatapath(opts: LoadOptions): SockDatapath {
  const devices = opts.devices ?? [];
  const dp = loadDatapath({ ...opts, devices, objects: devices.length > 0 ? DATAPATH_OBJECTS : [SOCK_OBJECT] });
  try {
    const map = (name: string) => dp.map(name);
    const maps = {
      fe: map('bpx_fe_v1'), set: map('bpx_set_v1'), be: map('bpx_be_v1'), member: map('bpx_member_v1'),
      aff: map('bpx_aff_v1'), skRnat: map('bpx_sk_rnat_v1'), flow: map('bpx_flow_v1'), stats: map(COUNTERS_MAP),
    };
    const packet = devices.length > 0 ? { maglevRows: map('bpx_maglev_row_v1'), maglevSlots: map('bpx_maglev_v1'), ranges: map('bpx_range_v1'),
      localEps: map('bpx_local_ep_v1'), localDevs: map('bpx_local_dev_v1') } : null;
    return { maps, packet, close: () => dp.close(), repair: () => dp.repair(), attachDevice: (d) => dp.attachDevice(d), detachDevice: (d) => dp.detachDevice(d) };
  } catch (err) {
    dp.close();
    throw err;
  }
}

/**
 * Removes everything a load left under pinDir: the recorded clsact filters,
 * every link (detached at once, then unpinned: XDP, tcx and cgroup alike),
 * then every map. Returns what it removed. A filter recorded in another
 * network namespace cannot be reached from here: it is logged and left (it
 * goes with its namespace or with a cleanup run inside it).
 */
export function cleanupPins(pinDir: string, log?: Logger): string[] {
  // The record of how connected UDP sockets are moved (for `bpfproxy status`) belongs to these pins:
  // it goes with them, also when the directory is already gone (a bench or test that opened a dataplane).
  rmSync(udpPathRecordFor(statePathFor(pinDir)), { force: true });
  if (!existsSync(pinDir)) return [];
  const removed: string[] = [];
  const netns = currentNetns();
  for (const r of readRecords(pinDir)) {
    const where = `clsact ${r.egress ? 'egress' : 'ingress'} filter on ${r.ifname} (ifindex ${r.ifindex})`;
    // The ifindex must still name the recorded device here, or it is another device.
    if (r.netns !== netns || native.ifIndexToName(r.ifindex) !== r.ifname) {
      log?.warn({ filter: where, netns: String(r.netns) }, 'recorded clsact filter is not in this network namespace (or its device is gone): left alone');
      continue;
    }
    const ret = native.tcFilterRemove(r.ifindex, r.egress, r.handle, r.priority);
    if (ret < 0) throw new native.BpfError(`remove the ${where}`, ret);
    removed.push(where);
  }
  const links = join(pinDir, 'links');
  if (existsSync(links)) {
    for (const name of readdirSync(links)) {
      // Unpinning alone detaches only when the pin holds the last reference;
      // a running proxy's fd would keep the program attached. Detach first.
      native.linkDetachPinned(join(links, name));
      rmSync(join(links, name), { force: true });
      removed.push(join(links, name));
    }
  }
  for (const name of readdirSync(pinDir)) {
    rmSync(join(pinDir, name), { recursive: true, force: true });
    if (name !== 'links' && name !== CLSACT_RECORDS) removed.push(join(pinDir, name));
  }
  rmSync(pinDir, { recursive: true, force: true });
  return removed;
}
