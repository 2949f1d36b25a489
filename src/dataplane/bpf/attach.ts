// Attaching programs to node devices: XDP (native, generic where the driver has
// none) and TC (tcx links where the kernel has them, clsact filters before).
// Links are pinned under pinDir/links, so the datapath outlives the proxy and
// a restart swaps programs in place (bpf_link_update); clsact filters sit at a
// fixed handle and priority, are replaced in place, and are recorded beside
// the pins (clsact-records.ts) so cleanup finds them. What is available is
// probed, not read from the kernel version.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import { currentNetns, deleteRecord, findRecord, putRecord } from './clsact-records.js';
import * as native from './native.js';
import type { Hook } from './objects.js';

const EINVAL = 22;
const EOPNOTSUPP = 95;

/** Where bpfproxy's clsact filters sit: one per device and direction. */
export const TC_HANDLE = 0xb9f;
export const TC_PRIORITY = 0xb9f;

export type TcMode = 'auto' | 'tcx' | 'clsact';
export type XdpMode = 'auto' | 'native' | 'generic';

export interface Attachment {
  object: string;
  program: string;
  hook: Exclude<Hook, 'none'>;
  /** The cgroup directory or the device name. */
  target: string;
  ifindex?: number;
  via: 'cgroup-link' | 'xdp-native' | 'xdp-generic' | 'tcx' | 'clsact';
  /** An existing attachment got the new program in place. */
  replaced: boolean;
  /** Absent for clsact filters, which are not links. */
  linkId?: number;
  progId: number;
  /** The pinned link, or for clsact the record map. */
  pin: string;
}

export interface ProgramRef { object: string; program: string; fd: number }

/** bpffs refuses names with dots, and device names may have them (eth0.100). */
function pinName(device: string): string {
  return device.replace(/%/g, '%25').replace(/\./g, '%2e');
}

export function deviceLinkPath(pinDir: string, kind: 'xdp' | 'tcx-ingress' | 'tcx-egress', device: string): string {
  return join(pinDir, 'links', `${kind}-${pinName(device)}`);
}

/**
 * The devices with an XDP link pinned under pinDir/links: what an earlier run
 * attached, found again at start (node-devices.ts detaches those the Node no
 * longer needs). Names decoded as pinName encodes them.
 */
export function pinnedXdpDevices(pinDir: string): string[] {
  const dir = join(pinDir, 'links');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.startsWith('xdp-')).map((n) => n.slice(4).replace(/%2e/g, '.').replace(/%25/g, '%'));
}

function hasErrno(err: unknown, ...errnos: number[]): err is native.BpfError {
  return err instanceof native.BpfError && errnos.includes(-err.errno);
}

export class DeviceAttacher {
  /** Settled by the first TC attachment (the probe), unless forced. */
  private tc: 'tcx' | 'clsact' | undefined;

  constructor(
    private readonly pinDir: string,
    private readonly modes: { tc: TcMode; xdp: XdpMode },
    private readonly log: Logger,
  ) {
    if (modes.tc !== 'auto') this.tc = modes.tc;
  }

  attach(prog: ProgramRef, hook: 'xdp' | 'tc-ingress' | 'tc-egress', device: string): Attachment {
    const ifindex = native.ifNameToIndex(device);
    const step = `attach ${hook === 'xdp' ? 'xdp' : hook.replace('-', ' ')} program ${prog.program} (${prog.object}) to ${device} (ifindex ${ifindex || 'none'})`;
    if (ifindex === 0) throw new Error(`${step}: no such device in this network namespace`);
    return hook === 'xdp' ? this.xdp(prog, device, ifindex, step) : this.tcHook(prog, hook === 'tc-egress', device, ifindex, step);
  }

  private xdp(prog: ProgramRef, device: string, ifindex: number, step: string): Attachment {
    const pin = deviceLinkPath(this.pinDir, 'xdp', device);
    const before = native.pinnedLinkInfo(pin);
    let r: { replaced: boolean; mode: number };
    if (this.modes.xdp === 'generic') {
      r = native.xdpLink(prog.fd, ifindex, native.XDP_GENERIC, false, pin, step);
    } else {
      // auto keeps a pinned link in the mode it runs in: a restart swaps the
      // program in place rather than trying native again (a mode change
      // needs a moment without a program: the kernel runs one mode per device).
      try {
        r = native.xdpLink(prog.fd, ifindex, native.XDP_NATIVE, this.modes.xdp === 'auto', pin, step);
      } catch (err) {
        if (this.modes.xdp === 'native' || !hasErrno(err, EOPNOTSUPP)) throw err;
        this.log.info({ device, ifindex, reason: err.message }, 'the driver has no native XDP: attaching in generic mode');
        r = native.xdpLink(prog.fd, ifindex, native.XDP_GENERIC, true, pin, step);
      }
    }
    if (before && before.ifindex === ifindex && !r.replaced) {
      this.log.warn({ device, mode: r.mode === native.XDP_NATIVE ? 'native' : 'generic' }, 'XDP mode changed: the old link was detached before the new one (a short gap)');
    }
    return this.linkAttachment(prog, 'xdp', device, ifindex, r.mode === native.XDP_NATIVE ? 'xdp-native' : 'xdp-generic', r.replaced, pin, step);
  }

  private tcHook(prog: ProgramRef, egress: boolean, device: string, ifindex: number, step: string): Attachment {
    const hook = egress ? 'tc-egress' : 'tc-ingress';
    const pin = deviceLinkPath(this.pinDir, egress ? 'tcx-egress' : 'tcx-ingress', device);
    if (this.tc !== 'clsact') {
      try {
        const replaced = native.tcxLink(prog.fd, ifindex, egress, pin, step);
        this.tc = 'tcx';
        // A clsact filter of an earlier run (forced, or an older kernel) would run the program a second time.
        this.removeFilter(ifindex, egress);
        return this.linkAttachment(prog, hook, device, ifindex, 'tcx', replaced, pin, step);
      } catch (err) {
        // Only the first TC attachment probes: once tcx worked, or when it was asked for, a failure is a failure.
        if (this.tc === 'tcx' || this.modes.tc === 'tcx' || !hasErrno(err, EINVAL, EOPNOTSUPP)) throw err;
        this.tc = 'clsact';
        this.log.info({ device, reason: err.message }, 'tcx is not available: TC programs attach as clsact filters');
      }
    }
    const netns = currentNetns();
    const r = native.tcFilter(prog.fd, ifindex, egress, TC_HANDLE, TC_PRIORITY, step);
    putRecord(this.pinDir, { ifindex, egress, netns, handle: TC_HANDLE, priority: TC_PRIORITY, ifname: device });
    // A tcx link of an earlier run would run the program a second time; the filter is in place, so no gap.
    if (existsSync(pin)) {
      native.linkDetachPinned(pin);
      rmSync(pin, { force: true });
    }
    return { object: prog.object, program: prog.program, hook, target: device, ifindex, via: 'clsact', replaced: r.replaced, progId: r.progId, pin: this.pinDir };
  }

  /**
   * Takes the programs off a device attached through `attach` (its XDP and
   * tcx links, or its clsact filters), for a device the proxy no longer
   * serves while it runs (node-devices.ts). Returns what it removed.
   */
  detach(device: string): string[] {
    const removed: string[] = [];
    for (const kind of ['xdp', 'tcx-ingress', 'tcx-egress'] as const) {
      const pin = deviceLinkPath(this.pinDir, kind, device);
      if (!existsSync(pin)) continue;
      // Detach first: the proxy's own fd would otherwise keep the link (and the program) attached.
      native.linkDetachPinned(pin);
      rmSync(pin, { force: true });
      removed.push(`${kind} on ${device}`);
    }
    const ifindex = native.ifNameToIndex(device);
    for (const egress of [false, true]) {
      if (ifindex === 0 || !findRecord(this.pinDir, ifindex, egress)) continue;
      this.removeFilter(ifindex, egress);
      removed.push(`clsact ${egress ? 'egress' : 'ingress'} on ${device}`);
    }
    return removed;
  }

  private removeFilter(ifindex: number, egress: boolean): void {
    const rec = findRecord(this.pinDir, ifindex, egress);
    if (!rec || rec.netns !== currentNetns()) return;
    const ret = native.tcFilterRemove(ifindex, egress, rec.handle, rec.priority);
    if (ret < 0) throw new native.BpfError(`remove the clsact ${egress ? 'egress' : 'ingress'} filter of ${rec.ifname}`, ret);
    deleteRecord(this.pinDir, ifindex, egress);
  }

  private linkAttachment(prog: ProgramRef, hook: Attachment['hook'], device: string, ifindex: number, via: Attachment['via'], replaced: boolean, pin: string, step: string): Attachment {
    const info = native.pinnedLinkInfo(pin);
    if (!info) throw new Error(`${step}: the link pinned at ${pin} vanished`);
    return { object: prog.object, program: prog.program, hook, target: device, ifindex, via, replaced, linkId: info.id, progId: info.progId, pin };
  }
}
