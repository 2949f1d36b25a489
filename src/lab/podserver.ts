// The node-side handle on podserver.py: one process per node, in the node's
// cgroup, serving the node's pods and the node itself (as a host-network pod).
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../util/paths.js';
import { LabError } from './commands.js';
import { netnsPath } from './plan.js';
import { LineReader } from './lines.js';
import { LabProcess } from './process.js';
import { labMs } from './time-scale.js';
import type { LabNode } from './topology.js';

export const PYTHON = process.env.BPFPROXY_LAB_PYTHON ?? '/usr/bin/python3';
const LAB_SCRIPTS = join(PACKAGE_ROOT, 'src', 'lab');

/** argv running one of the lab's python scripts; -B: no __pycache__ in the source tree. */
export function pythonArgv(script: string, ...args: string[]): string[] {
  return [PYTHON, '-B', join(LAB_SCRIPTS, script), ...args];
}
const READY_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 5_000;

export class PodServer {
  private readonly lines: LineReader;
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = '';

  private constructor(readonly node: string, readonly process: LabProcess) {
    const { stdout, stderr } = process.child;
    if (!stdout || !stderr) throw new LabError(`pod server of node ${node}: no stdout/stderr pipe`);
    stderr.setEncoding('utf8');
    stderr.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-4096);
    });
    this.lines = new LineReader(stdout);
  }

  /** Starts the node's pod server and waits for it to have bound every socket. */
  static async start(node: LabNode, ports: readonly number[], track: (p: LabProcess) => void): Promise<PodServer> {
    const endpoints = [
      { name: node.name, netns: netnsPath(node.netns), addrs: [node.ipv4, ...(node.ipv6 ? [node.ipv6] : [])] },
      ...node.pods.map((pod) => ({ name: pod.name, netns: netnsPath(pod.netns), addrs: [pod.ipv4, ...(pod.ipv6 ? [pod.ipv6] : [])] })),
    ];
    const proc = new LabProcess(`pod server of node ${node.name}`, { netns: node.netns, cgroup: node.cgroup },
      pythonArgv('podserver.py', JSON.stringify({ ports, endpoints })));
    track(proc);
    const server = new PodServer(node.name, proc);
    const first = await server.lines.next(labMs(READY_TIMEOUT_MS));
    if (first !== 'ready') {
      await proc.stop(500);
      throw new LabError(`pod server of node ${node.name}: expected "ready", got ${first === null ? 'nothing' : JSON.stringify(first)}: ${server.stderr.trim()}`);
    }
    return server;
  }

  /** Opens (up) or closes (down) the listening sockets of one endpoint (a pod or the node). */
  setUp(endpoint: string, up: boolean): Promise<void> {
    const next = this.queue.then(async () => {
      if (!this.process.running) throw new LabError(`pod server of node ${this.node}: not running: ${this.stderr.trim()}`);
      this.process.child.stdin?.write(`${up ? 'up' : 'down'} ${endpoint}\n`);
      const reply = await this.lines.next(labMs(COMMAND_TIMEOUT_MS));
      if (reply !== 'ok') throw new LabError(`pod server of node ${this.node}: ${up ? 'up' : 'down'} ${endpoint}: ${reply ?? 'no answer'}`);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
