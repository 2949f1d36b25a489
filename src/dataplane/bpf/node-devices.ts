// Issue 7: the default --devices follows the Node object. The devices are
// chosen at start (devices.ts resolveDevices), before any source has listed,
// so a node whose InternalIP sits on another device than the one chosen then
// (--bind-address naming the other one, or an address added since) got no
// XDP there and its NodePorts on that IP were not served from outside. Once
// the Node is known, and whenever its addresses or the node's change, the
// devices holding its InternalIP and ExternalIP addresses are attached the
// same way as at start (pinned links, restored by repair, removed by
// cleanup), each logged once with the address that asked for it.
//
// Decided: a device attached for the Node alone is detached when the Node no
// longer holds an address on it (it was never asked for otherwise); the
// devices chosen at start are never detached here. A device found attached
// by an earlier run that the start did not choose counts as attached for the
// Node: the first Node seen decides whether it stays. Without a Node
// (deleted, not listed) nothing changes.
import type { Logger } from '../../util/log.js';
import { nodeDeviceAddresses, nodeDeviceChanges, selectNodeDevices, type LinkInfo } from './devices.js';

export interface NodeDeviceOptions {
  /** The devices chosen at start (after the kernel probe). */
  base: readonly string[];
  /** Devices an earlier run attached that `base` does not name. */
  pinned: readonly string[];
  /** Whether the packet programs are loaded in this run (only then can a device be added). */
  packetLoaded: boolean;
  links: () => LinkInfo[];
  attach: (device: string) => void;
  detach: (device: string) => string[];
  log: Logger;
}

export class NodeDeviceFollower {
  private added: string[];
  /** Warnings already given, so a resync does not repeat them. */
  private readonly warned = new Set<string>();

  constructor(private readonly o: NodeDeviceOptions) {
    this.added = o.pinned.filter((d) => !o.base.includes(d));
  }

  /** Every device the packet programs are attached to. */
  get devices(): string[] {
    return [...this.o.base, ...this.added].sort();
  }

  /** Attaches and detaches so the Node's addresses are served; returns what changed. */
  follow(addresses: readonly { type: string; address: string }[]): { attached: string[]; detached: string[] } {
    const { log } = this.o;
    const typeOf = new Map(addresses.map((a) => [a.address, a.type]));
    const named = (ips: readonly string[]) => ips.map((ip) => `${typeOf.get(ip) ?? 'address'} ${ip}`).join(', ');
    const choice = selectNodeDevices(this.o.links(), nodeDeviceAddresses(addresses));
    for (const ip of choice.unplaced) {
      this.warnOnce(`unplaced ${ip}`, { address: ip, type: typeOf.get(ip) },
        `the Node's ${named([ip])} is on no device of this network namespace: no XDP/TC device for it (an ExternalIP behind a NAT is never local; NodePorts on the local addresses are served as before)`);
    }
    for (const s of choice.skipped) {
      this.warnOnce(`skipped ${s.device} ${s.why}`, { device: s.device, addresses: s.addresses },
        `the Node's ${named(s.addresses)} is on ${s.device}, which the XDP/TC programs cannot serve (${s.why}): not attached there`);
    }
    const wanted = choice.devices.map((d) => d.device);
    const changes = nodeDeviceChanges(this.o.base, this.added, wanted);
    if (!this.o.packetLoaded) {
      if (changes.attach.length > 0) {
        this.warnOnce(`unloaded ${changes.attach.join(',')}`, { devices: changes.attach },
          `the Node's addresses are on ${changes.attach.join(', ')}, but this run loaded no XDP/TC programs (no device held the node's addresses at start, or the kernel probe refused them): restart the proxy to serve them, or name them with --devices`);
      }
      return { attached: [], detached: [] };
    }
    const attached: string[] = [];
    for (const device of changes.attach) {
      const ips = choice.devices.find((d) => d.device === device)!.addresses;
      try {
        this.o.attach(device);
      } catch (err) {
        // What was attached before the failure comes off again; retried at the next change of the Node or of the node's addresses.
        try {
          this.o.detach(device);
        } catch { /* the attach error is the one worth reporting */ }
        this.warnOnce(`attach ${device} ${(err as Error).message}`, { device, err }, `could not attach the XDP/TC programs to ${device}, which holds the Node's ${named(ips)}`);
        continue;
      }
      this.added.push(device);
      attached.push(device);
      log.info({ device, addresses: ips, devices: this.devices },
        `attached the XDP/TC programs to ${device}: it holds the Node's ${named(ips)} (--devices not given: the default follows the Node)`);
    }
    const detached: string[] = [];
    for (const device of changes.detach) {
      const removed = this.o.detach(device);
      this.added = this.added.filter((d) => d !== device);
      detached.push(device);
      log.info({ device, removed, devices: this.devices }, `detached the XDP/TC programs from ${device}: the Node holds no address there any more`);
    }
    return { attached, detached };
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log.warn(fields, msg);
  }
}
