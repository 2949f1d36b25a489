// The object limits (util/input-limits.ts) over a parsed value: the same check
// for a document of a manifest file and an object from the API server. It runs
// before the model sees the object. Iterative, so depth costs no stack.
import { limitExceeded, type InputLimits } from '../util/input-limits.js';

/** Why `value` exceeds a limit, or null. One pass over the value, no copies. */
export function objectLimitProblem(value: unknown, limits: InputLimits): string | null {
  const slice = endpointsProblem(value, limits);
  if (slice) return slice;
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.objectMaxStringLength) return limitExceeded('objectMaxStringLength', limits.objectMaxStringLength, 'characters per string', `found ${v.length}`);
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limits.objectMaxDepth) return limitExceeded('objectMaxDepth', limits.objectMaxDepth, 'levels of nesting', 'found deeper');
    if (Array.isArray(v)) {
      for (const item of v) stack.push({ v: item, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.objectMaxKeys) return limitExceeded('objectMaxKeys', limits.objectMaxKeys, 'keys per mapping', `found ${keys.length}`);
    for (const k of keys) {
      if (k.length > limits.objectMaxStringLength) return limitExceeded('objectMaxStringLength', limits.objectMaxStringLength, 'characters per string', `a key of ${k.length}`);
      stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1 });
    }
  }
  return null;
}

/** An EndpointSlice with more endpoints than kube-apiserver would store. Checked per object (a List's items too). */
export function endpointsProblem(value: unknown, limits: InputLimits): string | null {
  if (isSlice(value) && Array.isArray(value.endpoints) && value.endpoints.length > limits.objectMaxEndpoints) {
    return limitExceeded('objectMaxEndpoints', limits.objectMaxEndpoints, 'endpoints per EndpointSlice (kube-apiserver\'s own limit)', `found ${value.endpoints.length}`);
  }
  return null;
}

function isSlice(v: unknown): v is { endpoints?: unknown } {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'EndpointSlice';
}
