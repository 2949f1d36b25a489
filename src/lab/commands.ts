// Running the host tools the lab is built with (ip, nsenter, sh), bounded in
// time, with errors that name the command and carry its stderr.
import { execFile, execFileSync } from 'node:child_process';
import { labMs } from './time-scale.js';

export class LabError extends Error {
  override readonly name = 'LabError';
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 16 * 1024 * 1024;

/** Runs argv to completion and returns its stdout; rejects naming argv when it fails or times out. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const [file, ...args] = argv;
  if (!file) throw new LabError('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, {
      timeout: labMs(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      killSignal: 'SIGKILL',
      maxBuffer: MAX_OUTPUT,
      encoding: 'utf8',
    }, (err, stdout, stderr) => {
      if (err) reject(new LabError(`${describe(argv)} failed: ${err.killed ? 'timed out' : stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    // A tool that exits without reading its input makes the write fail with EPIPE; its exit status tells.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** The same, blocking: for exit handlers, which cannot wait for promises. */
export function runSync(argv: readonly string[], opts: RunOptions = {}): string {
  const [file, ...args] = argv;
  if (!file) throw new LabError('runSync: empty argv');
  try {
    return execFileSync(file, args, {
      input: opts.input ?? '',
      timeout: labMs(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      killSignal: 'SIGKILL',
      maxBuffer: MAX_OUTPUT,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const text = typeof stderr === 'string' && stderr.trim() ? stderr.trim() : String(err);
    throw new LabError(`${describe(argv)} failed: ${text}`, { cause: err });
  }
}

/**
 * Runs `ip -n NETNS -batch -` with one command per line. Every lab `ip` command
 * names its namespace: nothing is ever configured in the root namespace.
 */
export async function ipBatch(netns: string, commands: readonly string[]): Promise<void> {
  try {
    await run(['ip', '-n', netns, '-batch', '-'], { input: commands.join('\n') + '\n' });
  } catch (err) {
    // ip says "Command failed -:LINE"; name the command itself.
    const line = /Command failed -:(\d+)/.exec(String(err))?.[1];
    const failed = line ? commands[Number(line) - 1] : undefined;
    throw new LabError(`lab: in netns ${netns}${failed ? `, "ip ${failed}"` : ''}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * `ip -n NETNS -json -batch -`: one parsed JSON document per command (ip prints
 * one line per command), in one process instead of one per command.
 */
export async function ipJsonBatch(netns: string, commands: readonly string[]): Promise<unknown[]> {
  const out = await run(['ip', '-n', netns, '-json', '-batch', '-'], { input: commands.join('\n') + '\n' });
  const lines = out.split('\n').filter((l) => l.trim());
  if (lines.length !== commands.length) throw new LabError(`ip -n ${netns} -json -batch: ${commands.length} commands gave ${lines.length} answers`);
  return lines.map((l) => JSON.parse(l) as unknown);
}

/** Runs `fn` over items with at most `limit` in flight, so big labs do not fork hundreds of tools at once. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} lab steps failed: ${errors.map((e) => (e as Error).message).join('; ')}`);
}

function describe(argv: readonly string[]): string {
  const text = argv.join(' ');
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** Blocks the thread for `ms` (exit handlers cannot use timers). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
