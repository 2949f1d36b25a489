// Runs short host commands (ip, bridge, nft) without blocking the proxy's
// event loop. An asynchronous execFile is not enough: libuv's spawn waits,
// on the calling thread, until the child has exec'd, and on a busy node the
// child waits for a CPU first. Measured here (2 cores at load 8-14, a
// namespace with 20-30 veths, the six commands a read took then): event-loop
// delay p99 400-750 ms with execFile on the main thread, about what
// execFileSync blocks (400-900 ms); 40-70 ms with the same spawns made in a
// worker thread (idle p99 5-9 ms). So the spawns happen in one worker
// thread, started on first use; the main thread only gets the output.
import { Worker } from 'node:worker_threads';

export interface ExecResult {
  stdout: string;
}

/** A command that failed: its exit code (or ENOENT, ...) and the first line of what it said. */
export class ExecError extends Error {
  override readonly name = 'ExecError';
  constructor(message: string, readonly code: string | number | null) {
    super(message);
  }
}

/** Runs argv; `input`, when given, is written to its stdin (`ip -batch -`). */
export type Exec = (argv: readonly string[], input?: string) => Promise<ExecResult>;

// Plain JavaScript, evaluated by the worker: it imports nothing of ours, so it
// runs the same from src/ under the tests and from dist/ in the image.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { execFile } = require('node:child_process');
parentPort.on('message', ({ id, argv, input, timeoutMs }) => {
  const child = execFile(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
    if (!err) return parentPort.postMessage({ id, stdout });
    const first = String(stderr || err.message).trim().split('\\n')[0];
    parentPort.postMessage({ id, error: err.killed ? 'timed out' : first, code: err.code ?? null });
  });
  // A child that exits (or never starts) before reading its input breaks the
  // pipe: its exit status and stderr say why, so the pipe's error is not thrown.
  child.stdin.on('error', () => {});
  child.stdin.end(input);
});`;

type Reply = { id: number; stdout: string } | { id: number; error: string; code: string | number | null };

/** One worker thread that spawns commands for the caller; close() ends it and fails what is pending. */
export class OffLoopExec {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly pending = new Map<number, { argv: readonly string[]; resolve: (r: ExecResult) => void; reject: (e: Error) => void }>();

  constructor(private readonly timeoutMs = 10_000) {}

  readonly run: Exec = (argv, input) => new Promise((resolve, reject) => {
    const id = ++this.seq;
    this.pending.set(id, { argv, resolve, reject });
    this.start().postMessage({ id, argv, input, timeoutMs: this.timeoutMs });
  });

  close(): void {
    const w = this.worker;
    this.worker = null;
    if (w) void w.terminate();
    this.failAll('the command runner was closed');
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER, { eval: true });
    // The proxy's exit must not wait for this thread; the caller closes it on dispose.
    w.unref();
    w.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if ('stdout' in r) p.resolve({ stdout: r.stdout });
      else p.reject(new ExecError(`${p.argv.join(' ')}: ${r.error}`, r.code));
    });
    w.on('error', (err) => this.failAll(`the command runner failed: ${err.message}`));
    w.on('exit', () => {
      if (this.worker === w) this.worker = null;
      this.failAll('the command runner exited');
    });
    this.worker = w;
    return w;
  }

  private failAll(why: string): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new ExecError(`${p.argv.join(' ')}: ${why}`, null));
    }
  }
}
