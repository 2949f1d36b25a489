// How long the lab waits, under a slower clock. Inside a guest under software
// emulation (make test-vm, docs/vm.md) userland runs about 10x slower than on
// the host, more on a loaded machine, and the lab's bounds (a pod server's
// "ready", an exec, a proxy's log line) were chosen for the host.
// BPFPROXY_LAB_TIME_SCALE multiplies them; 1 when unset. What a test asserts
// about time (a refusal "at once", a socket's own timeout) is not scaled.
const raw = Number(process.env.BPFPROXY_LAB_TIME_SCALE ?? '1');
export const LAB_TIME_SCALE = Number.isFinite(raw) && raw >= 1 ? raw : 1;

export function labMs(ms: number): number {
  return Math.round(ms * LAB_TIME_SCALE);
}
