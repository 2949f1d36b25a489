// Tears live labs down when the process ends without doing it: normal exit,
// an uncaught error, SIGINT or SIGTERM. One set of handlers for all labs.
const live = new Map<string, () => void>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** `teardownSync` must not throw past itself and must not wait on promises. */
export function guardLab(runId: string, teardownSync: () => void): void {
  live.set(runId, teardownSync);
  if (live.size === 1) install();
}

export function unguardLab(runId: string): void {
  live.delete(runId);
  if (live.size === 0) uninstall();
}

function teardownAll(): void {
  for (const [runId, teardown] of [...live]) {
    live.delete(runId);
    try {
      teardown();
    } catch (err) {
      process.stderr.write(`bpfproxy lab ${runId}: ${(err as Error).message}\n`);
    }
  }
  uninstall();
}

function onSignal(signal: NodeJS.Signals): void {
  teardownAll();
  // Our handler replaced the default action; with no one else listening,
  // re-raise so the process still dies of the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  process.on('exit', teardownAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  process.off('exit', teardownAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}
