// The thin edge: native/conntrack.c through koffi. Runs on the calling
// thread, so in the network namespace of the proxy (the node's), the same one
// its nft and iptables children run in. Synchronous on purpose: a koffi async
// call would run on a worker thread, whose namespace is not guaranteed to be
// the main thread's (tests move the main thread with setns).
import { createRequire } from 'node:module';
import { PROTOCOL_NUMBERS } from '../../model/types.js';
import { NATIVE_LIBRARY } from '../../util/paths.js';
import type { StaleFlowRule } from './plan.js';

const require = createRequire(import.meta.url);
type ClearFn = (family: number, rules: string, deleted: Uint32Array, err: Buffer, errLen: number) => number;
let clearFn: ClearFn | null = null;

function bind(): ClearFn {
  const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown } };
  return koffi.load(NATIVE_LIBRARY).func('int bpx_ct_clear(int family, const char *rules, _Inout_ uint32_t *deleted, void *err, size_t err_len)') as ClearFn;
}

export interface ClearResult {
  deleted: number;
  /** "" on success. */
  error: string;
}

/** Deletes what `rules` (all of one family) match. Never throws for a kernel error: the result says it. */
export type ConntrackClearer = (family: 4 | 6, rules: readonly StaleFlowRule[]) => ClearResult;

/** The rules as native/conntrack.c reads them: "PROTO ADDR PORT KEEP..." per line. */
export function rulesText(rules: readonly StaleFlowRule[]): string {
  return rules.map((r) => [PROTOCOL_NUMBERS[r.protocol], r.address, r.port, ...r.keep].join(' ')).join('\n');
}

export const clearConntrack: ConntrackClearer = (family, rules) => {
  if (rules.length === 0) return { deleted: 0, error: '' };
  clearFn ??= bind();
  const deleted = new Uint32Array(1);
  const err = Buffer.alloc(256);
  const rc = clearFn(family, rulesText(rules), deleted, err, err.length);
  const end = err.indexOf(0);
  const text = err.toString('utf8', 0, end < 0 ? err.length : end);
  return { deleted: deleted[0]!, error: rc === 0 ? '' : text || `bpx_ct_clear: error ${rc}` };
};
