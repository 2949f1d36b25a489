// The TypeScript side of udp-stream.py: long-lived UDP sockets in a pod, each
// sending one datagram per tick from a fixed local port, their answers and
// errors collected as they come (wall-clock stamped, for "after the change").
import { createInterface } from 'node:readline';
import type { Lab, LabPod } from './lab.js';
import { pythonArgv } from './podserver.js';
import type { LabProcess } from './process.js';

export interface StreamSocket {
  name: string;
  host: string;
  port: number;
  /** Fixed local port. */
  bind: number;
  /** connect() once (true), or sendto() each datagram (false). */
  connect: boolean;
}

/** One line of udp-stream.py: a tick's answer or error, or a reconnect. Times are wall-clock seconds. */
export interface StreamRecord {
  name: string;
  seq?: number;
  sent?: number;
  pod?: string;
  /** The client address the server saw, "IP:PORT". */
  client?: string;
  error?: string;
  reconnected?: number;
  after?: string;
}

export class UdpStream {
  readonly records: StreamRecord[] = [];
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  private constructor(readonly proc: LabProcess) {
    createInterface({ input: proc.child.stdout! }).on('line', (text) => {
      let rec: StreamRecord & { ready?: number };
      try {
        rec = JSON.parse(text) as StreamRecord & { ready?: number };
      } catch {
        return;
      }
      if (rec.ready === undefined) this.records.push(rec);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred()) return true;
        w.resolve();
        return false;
      });
    });
  }

  /** Starts the streamer in `pod` (its node's cgroup); stopped by stop() or the lab's teardown. */
  static start(lab: Lab, pod: LabPod, sockets: StreamSocket[], opts: { intervalMs?: number; maxMs?: number } = {}): UdpStream {
    const req = { sockets, intervalMs: opts.intervalMs ?? 50, maxMs: opts.maxMs ?? 60_000 };
    return new UdpStream(lab.spawn(pod.netns, pythonArgv('udp-stream.py', JSON.stringify(req))));
  }

  of(name: string): StreamRecord[] {
    return this.records.filter((r) => r.name === name);
  }

  /** Resolves once pred() holds over the records, or rejects after timeoutMs. */
  waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`udp stream: ${what} did not happen within ${timeoutMs} ms; last records:\n${this.records.slice(-10).map((r) => JSON.stringify(r)).join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Closes stdin (the streamer's signal to stop), then waits for it to end. */
  async stop(): Promise<void> {
    this.proc.child.stdin?.end();
    const ended = await Promise.race([this.proc.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3000).unref())]);
    if (!ended) await this.proc.stop();
  }
}
