// What a lab needs before its nodes run the XDP/TC datapath, standing in for
// real NICs (platform-notes.md, bpf/lib/csum.h), shared by the packet lab
// tests, the benches and the demo:
// - the far end of each node's uplink (its wire port) gets an XDP_PASS
//   program, without which native XDP_TX frames on a veth never arrive;
// - TX checksum offload is off where packets start (the external clients'
//   and the pods' eth0), so frames carry full checksums as on a wire: XDP
//   cannot tell a CHECKSUM_PARTIAL frame's pseudo-header sum from a full one.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceAttacher } from '../dataplane/bpf/attach.js';
import * as native from '../dataplane/bpf/native.js';
import { silentLogger } from '../util/log.js';
import { BPF_OBJECT_DIR } from '../util/paths.js';
import type { Lab } from './lab.js';
import { enterNetns } from './netns-thread.js';

/** ETHTOOL_STXCSUM off through SIOCETHTOOL (no ethtool binary on the image). */
const txCsumOff = (dev: string) => `import socket, fcntl, struct, array
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = array.array('B', struct.pack('II', 0x17, 0))
fcntl.ioctl(s.fileno(), 0x8946, struct.pack('16sP', b'${dev}', buf.buffer_info()[0]))`;

/** Checksum offload off in these namespaces (eth0, and the external client's ends of the nodes' side links), XDP_PASS on every node's wire port. */
export async function prepareXdpLab(lab: Lab, namespaces: readonly string[]): Promise<void> {
  const sides = lab.nodes.flatMap((n) => (n.side ? [n.side.peerDevice] : []));
  for (const ns of namespaces) {
    for (const dev of ['eth0', ...(ns === lab.external?.netns ? sides : [])]) {
      const r = await lab.exec(ns, ['/usr/bin/python3', '-c', txCsumOff(dev)]);
      if (r.code !== 0) throw new Error(`tx checksum offload off for ${dev} in ${ns}: ${r.stderr}`);
    }
  }
  // XDP_PASS on the wire ports, pinned in the lab's bpffs (gone with the lab).
  const leave = enterNetns(lab.wireNetns);
  try {
    const pin = join(lab.bpffsRoot, '_wire');
    mkdirSync(join(pin, 'links'), { recursive: true });
    const obj = native.objectLoad(join(BPF_OBJECT_DIR, 'xdp.bpf.o'), pin, { bpx_ct_v1: 16, bpx_nat_v1: 16 });
    const attacher = new DeviceAttacher(pin, { tc: 'auto', xdp: 'native' }, silentLogger());
    for (const n of lab.nodes) attacher.attach({ object: 'xdp.bpf.o', program: 'bpx_xdp_pass', fd: native.objectProgFd(obj.handle, 'bpx_xdp_pass') }, 'xdp', n.wirePort);
    native.objectClose(obj.handle);
  } finally {
    leave();
  }
}

/** SIOCETHTOOL with ETHTOOL_SGRO (no ethtool binary on the image). */
const setGroScript = (dev: string, on: boolean) => `import socket, fcntl, struct, array
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = array.array('B', struct.pack('II', 0x2c, ${on ? 1 : 0}))
fcntl.ioctl(s.fileno(), 0x8946, struct.pack('16sP', b'${dev}', buf.buffer_info()[0]))`;

/**
 * GRO on or off on a lab device. On a pod's eth0 it decides whether the
 * pod's veth takes frames XDP redirects into it (its NAPI runs with GRO on):
 * the proxy's local redirect (bpf/lib/redirect-local.h) applies only then.
 */
export async function setLabGro(lab: Lab, netns: string, dev: string, on: boolean): Promise<void> {
  const r = await lab.exec(netns, ['/usr/bin/python3', '-c', setGroScript(dev, on)]);
  if (r.code !== 0) throw new Error(`GRO ${on ? 'on' : 'off'} for ${dev} in ${netns}: ${r.stderr.trim()}`);
}
