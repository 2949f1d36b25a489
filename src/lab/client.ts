// The TypeScript side of client.py: requests are validated here, results are
// narrowed from JSON here.
import { isIP } from 'node:net';
import { LabError } from './commands.js';
import { LineReader } from './lines.js';
import { pythonArgv } from './podserver.js';
import { LabProcess, type Placement } from './process.js';

export const MAX_ATTEMPTS = 10_000;
export const MAX_ATTEMPT_TIMEOUT_MS = 60_000;

export interface ClientRequest {
  /** tcp: connect, read the greeting line. udp: sendto/recvfrom. udp-connected: connect/send/recv. */
  proto: 'tcp' | 'udp' | 'udp-connected';
  /** An IP literal: the client never resolves names. */
  host: string;
  port: number;
  /** Attempts, each on a new socket (so a new source port); 1..10000. */
  count: number;
  /** Bound on each attempt. */
  timeoutMs: number;
  /** UDP datagram content (default "ping"). */
  payload?: string;
  /** Attempt i starts no earlier than i * intervalMs after the first: a steady rate (load under a restart). Default 0: back to back. */
  intervalMs?: number;
}

export const MAX_INTERVAL_MS = 10_000;

export type ClientResult =
  | {
    ok: true;
    /** The pod (or node) that answered, by its own account. */
    pod: string;
    /** The client's address as the server saw it, "IP:PORT" ("[IP]:PORT" for IPv6). */
    client: string;
    /** The address the server answered on. */
    local: string;
    /** What getpeername()/recvfrom() reported for the server side: the address the client thinks it talks to. */
    peer: string;
    ms: number;
  }
  | {
    ok: false;
    /** errno name: ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, EPERM, ... */
    error: string;
    ms: number;
  };

export function validateRequest(req: ClientRequest): void {
  if (!['tcp', 'udp', 'udp-connected'].includes(req.proto)) throw new LabError(`client request: proto "${String(req.proto)}" must be tcp, udp or udp-connected`);
  checkTarget(req.host, req.port);
  if (!Number.isInteger(req.count) || req.count < 1 || req.count > MAX_ATTEMPTS) {
    throw new LabError(`client request: count ${req.count} must be an integer in 1..${MAX_ATTEMPTS}`);
  }
  checkTimeout(req.timeoutMs);
  const every = req.intervalMs ?? 0;
  if (!Number.isFinite(every) || every < 0 || every > MAX_INTERVAL_MS) {
    throw new LabError(`client request: intervalMs ${every} must be in [0, ${MAX_INTERVAL_MS}]`);
  }
}

function checkTarget(host: string, port: number): void {
  if (isIP(host) === 0) throw new LabError(`client request: host "${host}" must be an IP address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new LabError(`client request: port ${port} must be in 1..65535`);
}

function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_ATTEMPT_TIMEOUT_MS) {
    throw new LabError(`client request: timeoutMs ${timeoutMs} must be in (0, ${MAX_ATTEMPT_TIMEOUT_MS}]`);
  }
}

export function clientArgv(req: ClientRequest | (Omit<ClientRequest, 'proto' | 'count'> & { proto: 'hold'; count: 1 })): string[] {
  return pythonArgv('client.py', JSON.stringify(req));
}

/** Time the whole run may take: every attempt timing out, plus interpreter start. */
export function runBudgetMs(req: ClientRequest): number {
  return req.count * (req.timeoutMs + (req.intervalMs ?? 0)) + 5_000;
}

export function parseResults(stdout: string, expected: number): ClientResult[] {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    throw new LabError(`client: output is not JSON: ${stdout.slice(0, 200)}`);
  }
  if (!Array.isArray(v) || v.length !== expected) throw new LabError(`client: expected ${expected} results, got ${Array.isArray(v) ? v.length : typeof v}`);
  return v.map((r, i) => parseResult(r, `result ${i}`));
}

export function parseResult(v: unknown, where: string): ClientResult {
  const o = v as Record<string, unknown> | null;
  const str = (k: string): string => {
    const x = o?.[k];
    if (typeof x !== 'string') throw new LabError(`client: ${where}.${k} must be a string`);
    return x;
  };
  const ms = typeof o?.ms === 'number' ? o.ms : 0;
  if (o?.ok === true) return { ok: true, pod: str('pod'), client: str('client'), local: str('local'), peer: str('peer'), ms };
  if (o?.ok === false) return { ok: false, error: str('error'), ms };
  throw new LabError(`client: ${where}.ok must be a boolean`);
}

const HOLD_TIMEOUT_MS = 5_000;

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw new LabError(`client: not JSON: ${line.slice(0, 200)}`);
  }
}

/** One TCP connection held open by client.py, for tests that span a proxy restart. */
export class LabConnection {
  private readonly lines: LineReader;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly process: LabProcess,
    readonly greeting: ClientResult & { ok: true },
    lines: LineReader,
    private readonly timeoutMs: number,
  ) {
    this.lines = lines;
  }

  static async open(where: Placement, host: string, port: number, track: (p: LabProcess) => void, timeoutMs = HOLD_TIMEOUT_MS): Promise<LabConnection> {
    checkTarget(host, port);
    checkTimeout(timeoutMs);
    const proc = new LabProcess(`connection to ${host}:${port}`, where, clientArgv({ proto: 'hold', host, port, count: 1, timeoutMs }));
    track(proc);
    const { stdout, stderr } = proc.child;
    if (!stdout) throw new LabError(`connection to ${host}:${port}: client.py has no stdout pipe`);
    stderr?.resume();
    const lines = new LineReader(stdout);
    const first = await lines.next(timeoutMs + 5_000);
    const greeting = first === null ? null : parseResult(parseJsonLine(first), 'greeting');
    if (!greeting?.ok) {
      await proc.stop(500);
      throw new LabError(`connection to ${host}:${port} from ${where.netns}: ${greeting ? greeting.error : 'no answer from client.py'}`);
    }
    return new LabConnection(proc, greeting, lines, timeoutMs);
  }

  /** Sends one line and resolves with the server's reply line ("<pod> <line>"); rejects with the errno name when the connection broke. */
  send(line: string): Promise<string> {
    if (line.includes('\n')) return Promise.reject(new LabError('connection: send takes one line without "\\n"'));
    const next = this.queue.then(async () => {
      const what = `${this.process.label}: send`;
      if (!this.process.running) throw new LabError(`${what}: closed`);
      this.process.child.stdin?.write(`${line}\n`);
      // client.py bounds the socket wait by timeoutMs; the margin covers the pipe.
      const out = await this.lines.next(this.timeoutMs + 5_000);
      if (out === null) throw new LabError(`${what}: client.py ended or did not answer`);
      const reply = parseJsonLine(out) as { reply?: unknown; error?: unknown } | null;
      if (typeof reply?.reply === 'string') return reply.reply;
      // The errno name (ECONNRESET, ETIMEDOUT, ...) ends the message.
      throw new LabError(`${what}: ${typeof reply?.error === 'string' ? reply.error : 'bad answer from client.py'}`);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Closes the connection (EOF to client.py, which closes the socket and exits). */
  async close(): Promise<void> {
    this.process.child.stdin?.end();
    if (!(await this.process.waitExit(1_000))) await this.process.stop(1_000);
  }
}
