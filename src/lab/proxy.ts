// Runs the real bpfproxy command inside a lab node: in the node's network
// namespace and cgroup, its maps pinned in the node's bpffs directory, its
// socket programs attached to the node's cgroup only. Its JSON log lines are
// collected so a test can wait for "synced" or for a rejection.
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { Lab, LabNode } from './lab.js';
import type { LabProcess } from './process.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { labMs } from './time-scale.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface LabProxyOptions {
  /** A manifest directory to read; without it, `args` names the source (e.g. --kubeconfig). */
  manifests?: string;
  /** Extra flags. Without --devices among them the proxy runs with `--devices ''` (no packet programs) unless defaultDevices is set. */
  args?: string[];
  /** Let the proxy choose its devices (the default --devices, inside the node's namespace). */
  defaultDevices?: boolean;
  /** Node ports for healthz and metrics, on 127.0.0.1 inside the node. */
  healthzPort?: number;
  metricsPort?: number;
  /** Extra environment (BPFPROXY_NFT, BPFPROXY_IPTABLES_DIR, ...), over the test's own. */
  env?: Record<string, string>;
}

export class LabProxy {
  readonly logs: LogLine[] = [];
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(readonly lab: Lab, readonly node: LabNode, readonly proc: LabProcess, readonly opts: LabProxyOptions) {
    const rl = createInterface({ input: proc.child.stderr! });
    rl.on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 50, msg: text };
      }
      this.logs.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(line)) return true;
        w.resolve(line);
        return false;
      });
    });
  }

  /** The argv that runs bpfproxy in this node. */
  static argv(node: LabNode, opts: LabProxyOptions): string[] {
    return [
      process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'run',
      ...(opts.manifests !== undefined ? ['--manifests', opts.manifests] : []),
      '--hostname-override', node.name,
      '--bpf-fs', node.bpffs,
      '--cgroup-root', node.cgroup,
      '--healthz-bind-address', `127.0.0.1:${opts.healthzPort ?? 10256}`,
      '--metrics-bind-address', `127.0.0.1:${opts.metricsPort ?? 10249}`,
      '--v', '2',
      // Tests not about the packet datapath keep what they measure: no XDP/TC
      // unless asked for (the node's namespace holds only lab devices either way).
      ...(opts.defaultDevices || (opts.args ?? []).some((a) => a === '--devices' || a.startsWith('--devices=')) ? [] : ['--devices', '']),
      ...(opts.args ?? []),
    ];
  }

  static start(lab: Lab, node: LabNode, opts: LabProxyOptions): LabProxy {
    const proc = lab.spawn(node.netns, LabProxy.argv(node, opts), { cgroup: node.cgroup, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
    proc.child.stdout?.resume();
    return new LabProxy(lab, node, proc, opts);
  }

  /** Resolves with the first log line (already seen or coming) that matches, or rejects after timeoutMs. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 15_000, since = 0): Promise<LogLine> {
    const seen = this.logs.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`bpfproxy on ${this.node.name}: no matching log line within ${labMs(timeoutMs)} ms; last lines:\n` +
          this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')));
      }, labMs(timeoutMs));
      const done = (l: LogLine) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ pred, resolve: done });
      void this.proc.exited.then((st) => {
        if (this.waiters.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          reject(new Error(`bpfproxy on ${this.node.name} exited (${st.code}) before the expected log line; last lines:\n` +
            this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')));
        }
      });
    });
  }

  /** Waits for a sync that happened after log position `since` (default: any). */
  waitSynced(since = 0, timeoutMs = 15_000): Promise<LogLine> {
    return this.waitFor((l) => l.msg === 'synced', timeoutMs, since);
  }

  /** GET a path of the proxy's HTTP servers, from inside the node. */
  async http(path: string, role: 'healthz' | 'metrics' = 'metrics'): Promise<{ status: number; body: string }> {
    const port = role === 'healthz' ? this.opts.healthzPort ?? 10256 : this.opts.metricsPort ?? 10249;
    const r = await this.lab.exec(this.node.netns, ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`], { timeoutMs: 5000 });
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
  }

  /** SIGTERM, and wait for the exit. */
  async stop(): Promise<number> {
    this.proc.child.kill('SIGTERM');
    const st = await this.proc.exited;
    return st.code;
  }
}
