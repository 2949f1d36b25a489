// The thin edge over native/xdpfeatures.c: a device's XDP features from the
// kernel's "netdev" generic netlink family (6.3+), through koffi.
import { createRequire } from 'node:module';
import { NATIVE_LIBRARY } from '../../util/paths.js';
import { BpfError } from './native.js';

const require = createRequire(import.meta.url);
type Fn = (...args: unknown[]) => number;

let bound: { one: Fn; all: Fn } | null = null;

function bind(): { one: Fn; all: Fn } {
  const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown } };
  const lib = koffi.load(NATIVE_LIBRARY);
  return {
    one: lib.func('int bpx_xdp_features(int ifindex, void *features, void *err, size_t err_len)') as Fn,
    all: lib.func('int bpx_xdp_features_all(void *ifindexes, void *features, int max, void *err, size_t err_len)') as Fn,
  };
}

const EOPNOTSUPP = 95;

/** NETDEV_XDP_ACT_NDO_XMIT: the device takes frames redirected into it (a veth: its peer runs NAPI). */
export const XDP_ACT_NDO_XMIT = 1n << 2n;

/**
 * The NETDEV_XDP_ACT_* bits of a device of this thread's network namespace;
 * null when the kernel cannot say (no "netdev" family: before 6.3). Throws
 * BpfError otherwise (no such device, ...).
 */
export function xdpFeatures(ifindex: number): bigint | null {
  const out = Buffer.alloc(8);
  const err = Buffer.alloc(256);
  const ret = (bound ??= bind()).one(ifindex, out, err, err.length);
  if (ret === -EOPNOTSUPP) return null;
  if (ret < 0) throw new BpfError(`read the XDP features of ifindex ${ifindex}`, ret, err.toString('utf8', 0, Math.max(0, err.indexOf(0))) || undefined);
  return out.readBigUInt64LE(0);
}

/** At most this many devices per namespace are read by xdpFeaturesAll (a node with more pods than this has other problems first). */
const MAX_DEVICES = 8192;

/**
 * The NETDEV_XDP_ACT_* bits of every device of this thread's network
 * namespace, by ifindex, in one netlink dump: what the local redirect polls
 * (a query per veth cost about 0.25 ms each on the event loop). null when the
 * kernel cannot say (before 6.3). Throws BpfError otherwise.
 */
export function xdpFeaturesAll(): Map<number, bigint> | null {
  const idx = Buffer.alloc(4 * MAX_DEVICES);
  const feats = Buffer.alloc(8 * MAX_DEVICES);
  const err = Buffer.alloc(256);
  const n = (bound ??= bind()).all(idx, feats, MAX_DEVICES, err, err.length);
  if (n === -EOPNOTSUPP) return null;
  if (n < 0) throw new BpfError('read the XDP features of the devices', n, err.toString('utf8', 0, Math.max(0, err.indexOf(0))) || undefined);
  const out = new Map<number, bigint>();
  for (let i = 0; i < n; i++) out.set(idx.readInt32LE(4 * i), feats.readBigUInt64LE(8 * i));
  return out;
}
