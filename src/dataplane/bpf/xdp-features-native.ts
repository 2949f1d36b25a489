// The thin edge over native/xdpfeatures.c: a device's XDP features from the
// kernel's "netdev" generic netlink family (6.3+), through koffi.
import { createRequire } from 'node:module';
import { NATIVE_LIBRARY } from '../../util/paths.js';
import { BpfError } from './native.js';

const require = createRequire(import.meta.url);
type Fn = (...args: unknown[]) => number;

let bound: Fn | null = null;

function bind(): Fn {
  const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown } };
  return koffi.load(NATIVE_LIBRARY).func('int bpx_xdp_features(int ifindex, void *features, void *err, size_t err_len)') as Fn;
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
  const ret = (bound ??= bind())(ifindex, out, err, err.length);
  if (ret === -EOPNOTSUPP) return null;
  if (ret < 0) throw new BpfError(`read the XDP features of ifindex ${ifindex}`, ret, err.toString('utf8', 0, Math.max(0, err.indexOf(0))) || undefined);
  return out.readBigUInt64LE(0);
}
