// A traffic generator that hands a lab node's uplink what a NIC hands its
// driver: frames without an skb. bench/nodeport.ts measures NodePort packets
// per second with it.
//
// BPF_PROG_TEST_RUN in live-frames mode runs bpf/bench/trafficgen.bpf.c's
// bench_gen on `frames` copies of one packet (a UDP datagram from the
// external client to a NodePort, valid checksums, Ethernet addressed to the
// node's eth0), each with the next of FLOWS source ports, and the program
// redirects each one out of the node's wire port: the veth whose peer is the
// node's eth0. The call runs from Node's main thread moved into the wire
// namespace (src/lab/netns-thread.ts), where that ifindex means that port.
// Why the wire port and not the external client's own eth0: the client's
// peer is the bridge port vext, so its frames would reach the bridge as
// xdp_frames and the node as skbs again, which is the socket path with extra
// steps. Sending from the switch port puts the generator where a NIC's wire is.
//
// What receives them, measured here (docs/findings.md): a veth accepts
// redirected frames (ndo_xdp_xmit) only when it runs NAPI, which it does when
// an XDP program is attached or GRO is on; with neither, every frame is
// dropped at the sender. The bpf node has its XDP program; the iptables node
// gets GRO on its eth0, and the kernel builds the skb there from the frame,
// as a NIC driver does. GRO does not do for XDP_TX what it does for these
// redirects (the frames wait in the peer's ring), so the bpf node's wire
// port keeps an XDP program (dropLabWirePass, bench/nodeport.ts).
//
// Counting: bench_count_tc_drop on tcx ingress of the backend pod's eth0
// counts the datagrams addressed to the backend (so only translated ones)
// and drops them: the same program at the same place for every dataplane,
// and the sink's socket (what bounded the sendmmsg figures) out of the way.
// bench_count_tc_pass counts and lets them through, for the check that the
// socket accepts them (checksums right after translation).
// The generator's own ceiling: the same frames redirected into a veth pair
// of its own in the wire namespace whose far end drops them in XDP.
//
// Every link is pinned under the lab's bpffs and detached by close(); the
// sink pair and GRO are undone there too (and go with the lab's namespaces
// in any case).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as native from '../src/dataplane/bpf/native.js';
import { runLiveFrames } from '../src/dataplane/bpf/testrun.js';
import type { Lab, LabNode, LabPod } from '../src/lab/lab.js';
import { enterNetns } from '../src/lab/netns-thread.js';
import { BPF_OBJECT_DIR } from '../src/util/paths.js';
import { buildPacket } from '../test/helpers/packet.js';

const OBJECT = join(BPF_OBJECT_DIR, 'bench', 'trafficgen.bpf.o');
export const FLOWS = 64;
const SPORT_BASE = 40000;
/** Payload bytes: a 60-byte frame, the same size udpgen sends. */
const PAYLOAD = 18;
/** Ethernet + IPv4 + UDP: what bench_gen rewrites in every frame (GEN_HDR_LEN). */
const HDR_LEN = 14 + 20 + 8;
/** The generator's own sink: a veth pair inside the wire namespace. */
const SINK_TX = 'bxgen0';
const SINK_RX = 'bxgen1';

/** SIOCETHTOOL with ETHTOOL_SGRO (no ethtool binary on the image). */
const setGroScript = (dev: string, on: boolean) => `import socket, fcntl, struct, array
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = array.array('B', struct.pack('II', 0x2c, ${on ? 1 : 0}))
fcntl.ioctl(s.fileno(), 0x8946, struct.pack('16sP', b'${dev}', buf.buffer_info()[0]))`;

const zeroKey = () => Buffer.alloc(4);
/** BPF_LINK_TYPE_XDP. */
const LINK_TYPE_XDP = 6;
/** Generators opened in this process: each pins under a directory of its own. */
let opened = 0;

export class LiveFrames {
  private readonly links: string[] = [];
  private readonly groOn: { netns: string; dev: string }[] = [];
  private sinkPair = false;
  private wireNetfilterOff = false;
  private readonly ncpu = native.possibleCpus();

  private constructor(private readonly lab: Lab, private readonly obj: native.ObjectHandle, readonly pin: string) {}

  static open(lab: Lab): LiveFrames {
    const pin = join(lab.bpffsRoot, `_livegen${++opened}`);
    mkdirSync(pin, { recursive: true });
    return new LiveFrames(lab, native.objectLoad(OBJECT, pin, {}).handle, pin);
  }

  /** A datagram from the external client to host:port, addressed on the wire to `node`'s eth0. */
  async packetTo(node: LabNode, host: string, port: number): Promise<Buffer> {
    const ext = this.lab.external!;
    return buildPacket({
      eth: { src: await this.mac(ext.netns, 'eth0'), dst: await this.mac(node.netns, 'eth0') },
      ipv4: { src: ext.ipv4, dst: host },
      l4: { proto: 'udp', sport: SPORT_BASE, dport: port, payload: Buffer.alloc(PAYLOAD) },
    });
  }

  /** Sends `frames` live frames out of the wire-namespace device `wireDev`; the call's wall time in ns. */
  send(wireDev: string, packet: Buffer, frames: number, batchSize: number): number {
    const leave = enterNetns(this.lab.wireNetns);
    try {
      const ifindex = native.ifNameToIndex(wireDev);
      if (!ifindex) throw new Error(`live frames: no device ${wireDev} in ${this.lab.wireNetns}`);
      // struct bench_gen_cfg: ifindex, sport_base, flows, the 42 header bytes, padding.
      const cfg = Buffer.alloc(8 + HDR_LEN + 6);
      cfg.writeUInt32LE(ifindex, 0);
      cfg.writeUInt16LE(SPORT_BASE, 4);
      cfg.writeUInt16LE(FLOWS, 6);
      packet.copy(cfg, 8, 0, HDR_LEN);
      this.mapUpdate('bench_gen_cfg', cfg);
      return runLiveFrames(native.objectProgFd(this.obj, 'bench_gen'), packet, frames, { batchSize }).wallNs;
    } finally {
      leave();
    }
  }

  /**
   * One bounded run: `frames` frames out of `wireDev`, counted where
   * countHost:countPort receives them; per second of the generator's wall
   * time, which covers the forwarding its batches' softirqs do.
   */
  async run(wireDev: string, packet: Buffer, frames: number, countHost: string, countPort: number, batchSize = 64): Promise<{ pps: number; delivered: number; counted: number }> {
    this.countFor(countHost, countPort);
    const before = this.counted();
    const wallNs = this.send(wireDev, packet, frames, batchSize);
    await new Promise((r) => setTimeout(r, 100)); // what the last batch's softirq left to ksoftirqd arrives
    const counted = this.counted() - before;
    return { pps: counted / (wallNs / 1e9), delivered: counted / frames, counted };
  }

  /** From now on the counters count UDP datagrams to host:port. */
  countFor(host: string, port: number): void {
    const cfg = Buffer.alloc(8);
    Buffer.from(host.split('.').map(Number)).copy(cfg, 0);
    cfg.writeUInt16BE(port, 4);
    this.mapUpdate('bench_count_cfg', cfg);
  }

  /** Datagrams counted so far, every CPU. */
  counted(): number {
    const v = Buffer.alloc(8 * this.ncpu);
    if (!native.lookup(native.objectMapFd(this.obj, 'bench_count'), zeroKey(), v)) throw new Error('live frames: bench_count lookup failed');
    let n = 0;
    for (let i = 0; i < this.ncpu; i++) n += Number(v.readBigUInt64LE(8 * i));
    return n;
  }

  /** The counter on tcx ingress of the pod's eth0: dropping what it counts, or passing it to the pod's sockets. */
  attachCounter(pod: LabPod, drop: boolean): void {
    const link = join(this.pin, `tc-${pod.name}`);
    this.inNetns(pod.netns, () => {
      native.tcxLink(native.objectProgFd(this.obj, drop ? 'bench_count_tc_drop' : 'bench_count_tc_pass'), native.ifNameToIndex('eth0'), false, link, `tcx counter on ${pod.name}'s eth0`);
    });
    if (!this.links.includes(link)) this.links.push(link);
  }

  /** GRO on a lab device: with it a veth takes redirected frames without an XDP program. */
  async setGro(netns: string, dev: string, on: boolean): Promise<void> {
    const r = await this.lab.exec(netns, ['/usr/bin/python3', '-c', setGroScript(dev, on)]);
    if (r.code !== 0) throw new Error(`GRO ${on ? 'on' : 'off'} for ${dev} in ${netns}: ${r.stderr.trim()}`);
    const i = this.groOn.findIndex((g) => g.netns === netns && g.dev === dev);
    if (on && i < 0) this.groOn.push({ netns, dev });
    if (!on && i >= 0) this.groOn.splice(i, 1);
  }

  /** An XDP program of this object on a device, or none (`program` null). */
  setXdp(netns: string, dev: string, program: 'bench_pass' | 'bench_count_xdp_drop' | 'bench_wire_switch' | null): void {
    const link = join(this.pin, `xdp-${netns}-${dev}`);
    if (program === null) {
      this.unlink(link);
      return;
    }
    this.inNetns(netns, () => {
      native.xdpLink(native.objectProgFd(this.obj, program), native.ifNameToIndex(dev), native.XDP_NATIVE, false, link, `XDP ${program} on ${dev}`);
    });
    if (!this.links.includes(link)) this.links.push(link);
  }

  /**
   * Our XDP_PASS program on a node's wire port, after a phase with GRO alone
   * there. With GRO on and no XDP program, the node's XDP_TX frames land in
   * the port's receive ring but nothing polls it (measured: 256 stay, the
   * rest are dropped; as we read the veth driver, its XDP_TX flush kicks
   * only a peer with an XDP program). Attaching the program kicks nothing
   * either, and once it is there the node's eth0 loses TSO (the veth driver
   * takes GSO off the peer of an XDP device), so the node's own skbs qualify
   * for that full ring and are dropped too, its ARP requests among them
   * (docs/findings.md, "A NodePort flood toward a node never talked to").
   * GRO off first, with no program there, frees the ring; GRO goes back on
   * after.
   */
  async setWirePass(node: LabNode): Promise<void> {
    const wire = this.lab.wireNetns;
    const gro = this.groOn.some((g) => g.netns === wire && g.dev === node.wirePort);
    if (gro) await this.setGro(wire, node.wirePort, false);
    this.setXdp(wire, node.wirePort, 'bench_pass');
    if (gro) await this.setGro(wire, node.wirePort, true);
  }

  /**
   * Takes the lab's XDP_PASS program off a node's wire port (src/lab/xdp.ts
   * puts one on every wire port so that the node's XDP_TX frames arrive).
   * For a node that transmits no XDP frames it is pure cost: every skb the
   * node sends out of its eth0 is turned into an XDP buffer on the wire port,
   * often copied, which charges the netfilter dataplanes for a lab artifact.
   * Returns whether a link was found and detached.
   */
  dropLabWirePass(node: LabNode): boolean {
    const dir = join(this.lab.bpffsRoot, '_wire', 'links');
    if (!existsSync(dir)) return false;
    const ifindex = this.inWire(() => native.ifNameToIndex(node.wirePort));
    for (const f of readdirSync(dir)) {
      const info = native.pinnedLinkInfo(join(dir, f));
      if (info && info.ifindex === ifindex && info.type === LINK_TYPE_XDP) {
        native.linkDetachPinned(join(dir, f));
        rmSync(join(dir, f), { force: true });
        return true;
      }
    }
    return false;
  }

  /**
   * The wire as a switch that costs the nodes nothing, as a hardware one:
   * bench_wire_switch on each node's switch port forwards a frame addressed
   * to another node's eth0 straight to that node's port as an xdp_frame (no
   * skb, no bridge; what nothing matches still goes to the bridge). Replaces
   * whatever XDP program the port had (the lab's XDP_PASS, ours); GRO goes
   * on at each node's eth0, so that a node without an XDP program takes the
   * redirected frames (its kernel builds the skb, as a NIC driver does).
   * For every side alike; close() undoes it.
   */
  async setWireSwitch(nodes: LabNode[]): Promise<void> {
    const wire = this.lab.wireNetns;
    const fdb = native.objectMapFd(this.obj, 'bench_fdb');
    for (const node of nodes) {
      this.dropLabWirePass(node);
      this.setXdp(wire, node.wirePort, null);
      const key = Buffer.alloc(8);
      Buffer.from((await this.mac(node.netns, 'eth0')).split(':').map((h) => parseInt(h, 16))).copy(key, 0);
      const port = Buffer.alloc(4);
      port.writeUInt32LE(this.inWire(() => native.ifNameToIndex(node.wirePort)), 0);
      const ret = native.update(fdb, key, port);
      if (ret < 0) throw new native.BpfError(`update bench_fdb for ${node.name}`, ret);
      await this.setGro(node.netns, 'eth0', true);
    }
    for (const node of nodes) this.setXdp(wire, node.wirePort, 'bench_wire_switch');
  }

  /** The generator's own sink: a veth pair in the wire namespace whose far end counts and drops in XDP. Returns the device to send into. */
  async openSink(): Promise<string> {
    const wire = this.lab.wireNetns;
    for (const argv of [['ip', 'link', 'add', SINK_TX, 'type', 'veth', 'peer', 'name', SINK_RX], ['ip', 'link', 'set', SINK_TX, 'up'], ['ip', 'link', 'set', SINK_RX, 'up']]) {
      const r = await this.lab.exec(wire, argv);
      if (r.code !== 0) throw new Error(`generator sink: ${argv.join(' ')}: ${r.stderr.trim()}`);
      this.sinkPair = true;
    }
    this.setXdp(wire, SINK_RX, 'bench_count_xdp_drop');
    return SINK_TX;
  }

  /**
   * Whether the wire's bridge hands bridged frames to netfilter
   * (net.bridge.bridge-nf-call-{ip,ip6,arp}tables in the wire namespace; the
   * lab leaves the kernel's default, on). A switch does not run the hooks:
   * they cost every frame on the wire, whichever dataplane sent it (perf,
   * bench/nodeport.ts), and nothing in the wire namespace filters.
   */
  async setWireNetfilter(on: boolean): Promise<void> {
    const v = on ? '1' : '0';
    const r = await this.lab.exec(this.lab.wireNetns, ['/bin/sh', '-c',
      `for t in iptables ip6tables arptables; do echo ${v} > /proc/sys/net/bridge/bridge-nf-call-$t; done`]);
    if (r.code !== 0) throw new Error(`bridge netfilter ${on ? 'on' : 'off'} in ${this.lab.wireNetns}: ${r.stderr.trim()}`);
    this.wireNetfilterOff = !on;
  }

  /** Detaches every link, turns GRO back off, the wire's bridge netfilter back on, removes the sink pair, closes the object. */
  async close(): Promise<void> {
    for (const l of this.links.splice(0)) this.unlink(l);
    if (this.wireNetfilterOff) await this.setWireNetfilter(true).catch(() => undefined);
    for (const g of [...this.groOn]) await this.setGro(g.netns, g.dev, false).catch(() => undefined);
    if (this.sinkPair) await this.lab.exec(this.lab.wireNetns, ['ip', 'link', 'del', SINK_TX]).catch(() => undefined);
    this.sinkPair = false;
    native.objectClose(this.obj);
    rmSync(this.pin, { recursive: true, force: true });
  }

  private unlink(link: string): void {
    native.linkDetachPinned(link);
    rmSync(link, { force: true });
    const i = this.links.indexOf(link);
    if (i >= 0) this.links.splice(i, 1);
  }

  private mapUpdate(map: string, value: Buffer): void {
    const ret = native.update(native.objectMapFd(this.obj, map), zeroKey(), value);
    if (ret < 0) throw new native.BpfError(`update ${map}`, ret);
  }

  private inNetns<T>(netns: string, fn: () => T): T {
    const leave = enterNetns(netns);
    try {
      return fn();
    } finally {
      leave();
    }
  }

  private inWire<T>(fn: () => T): T {
    return this.inNetns(this.lab.wireNetns, fn);
  }

  private async mac(netns: string, dev: string): Promise<string> {
    const r = await this.lab.exec(netns, ['ip', '-j', 'link', 'show', dev]);
    if (r.code !== 0) throw new Error(`MAC of ${dev} in ${netns}: ${r.stderr.trim()}`);
    return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
  }
}
