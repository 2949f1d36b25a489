// What became of a guest: the exit status of its job, read from the file it
// wrote into the results share, or why there is none (a panic, a timeout, a
// guest that stopped without writing one), with the console lines that show
// it.

/** The lines stage 2 and stage 1 print on the serial console. */
export const MARKERS = { started: 'BPFPROXY-VM-STARTED', exit: 'BPFPROXY-VM-EXIT', fail: 'BPFPROXY-VM-FAIL' } as const;

/** Exit statuses of the harness for guests that did not report one. */
export const EXIT = { timeout: 124, panic: 125, noStatus: 126 } as const;

export type Outcome =
  | { kind: 'exited'; code: number }
  | { kind: 'timeout'; phase: 'boot' | 'run' }
  | { kind: 'panic'; line: string }
  | { kind: 'no-status'; reason: string };

export interface ConsoleFacts {
  /** uname -r as stage 2 printed it, once the guest reached its root. */
  started: string | null;
  exit: number | null;
  fail: string | null;
  panic: string | null;
}

const PANIC = /Kernel panic - not syncing.*|BUG: kernel NULL pointer dereference.*|Oops: .*|general protection fault.*/;

export function stripConsole(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

export function readConsole(text: string): ConsoleFacts {
  const clean = stripConsole(text);
  const line = (marker: string) => new RegExp(`^.*${marker} ?(.*)$`, 'm').exec(clean)?.[1]?.trim() ?? null;
  const exit = line(MARKERS.exit);
  return {
    started: line(MARKERS.started),
    exit: exit !== null && /^\d+$/.test(exit) ? Number(exit) : null,
    fail: line(MARKERS.fail),
    panic: PANIC.exec(clean)?.[0] ?? null,
  };
}

/** The status file's content as a number, or null when it is missing or not one. */
export function parseStatusFile(text: string | null): number | null {
  const t = text?.trim();
  return t !== undefined && /^\d{1,3}$/.test(t) ? Number(t) : null;
}

/**
 * The status file decides; the console explains when there is none. A timeout
 * is reported as such even when the console shows why the guest stalled.
 */
export function decideOutcome(input: { statusFile: string | null; console: string; timedOut: 'boot' | 'run' | null }): Outcome {
  const status = parseStatusFile(input.statusFile);
  if (status !== null) return { kind: 'exited', code: status };
  const facts = readConsole(input.console);
  if (facts.panic) return { kind: 'panic', line: facts.panic };
  if (input.timedOut) return { kind: 'timeout', phase: input.timedOut };
  if (facts.fail) return { kind: 'no-status', reason: `stage 1 failed: ${facts.fail}` };
  if (facts.exit !== null) return { kind: 'no-status', reason: `the console says the job exited ${facts.exit}, but no status file arrived` };
  return { kind: 'no-status', reason: facts.started ? 'the guest stopped before its job finished' : 'the guest stopped before reaching its root' };
}

export function exitCode(o: Outcome): number {
  switch (o.kind) {
    case 'exited': return o.code;
    case 'timeout': return EXIT.timeout;
    case 'panic': return EXIT.panic;
    case 'no-status': return EXIT.noStatus;
  }
}

export function describeOutcome(o: Outcome, limits: { bootS: number; runS: number }): string {
  switch (o.kind) {
    case 'exited': return `the job exited ${o.code}`;
    case 'timeout': return o.phase === 'boot' ? `the guest did not reach its root within ${limits.bootS} s` : `the job did not finish within ${limits.runS} s`;
    case 'panic': return `the guest kernel panicked: ${o.line}`;
    case 'no-status': return o.reason;
  }
}

/** The last lines of the console, for a failure report. */
export function consoleTail(text: string, lines = 40): string {
  const all = stripConsole(text).split('\n');
  while (all.length && all[all.length - 1] === '') all.pop();
  return all.slice(-lines).join('\n');
}

/**
 * Whether a panic is software emulation's, not the guest's: an `Oops: int3`
 * in ordinary kernel code whose bytes at the faulting address are no longer
 * an int3. The kernel patches its own text (static keys, jump labels) by
 * writing an int3 first and the new instruction after, with an int3 handler
 * for CPUs that run into the site meanwhile; under TCG with two CPUs a CPU
 * can take the trap after the patch is complete, and the handler, finding no
 * patch in progress, oopses. Seen twice on 6.12: once while booting, once at
 * 54 s in nf_ct_get_id during the nftables file, whose code dump showed the
 * finished `66 90` (a two-byte nop) where the trap had been. An int3 in a BPF
 * program's image (its JIT pads with int3), or one still in place, is a real
 * fault and does not qualify.
 */
export function emulatorTextPokeOops(console: string): boolean {
  const clean = stripConsole(console);
  const oops = /Oops: int3\b/.exec(clean);
  if (!oops) return false;
  const after = clean.slice(oops.index);
  const rip = /RIP: 0010:(\S+)/.exec(after)?.[1];
  const code = /Code: [0-9a-f ]*<([0-9a-f]{2})>/.exec(after)?.[1];
  if (!rip || !code) return false;
  return !rip.startsWith('bpf_prog_') && !rip.startsWith('0x') && code !== 'cc';
}
