// The test lab: a small cluster made of network namespaces (see README.md).
// createLab builds it, Lab runs things inside it, teardown removes all of it.
import { LAB_GUARD_ENV } from '../dataplane/bpf/devices.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { silentLogger, type Logger } from '../util/log.js';
import { buildNetwork } from './build.js';
import { clientArgv, LabConnection, parseResults, runBudgetMs, validateRequest, type ClientRequest, type ClientResult } from './client.js';
import { LabError } from './commands.js';
import { labMs } from './time-scale.js';
import { assertContainedSubject, containmentViolations } from './containment.js';
import { destroyLabSync } from './destroy.js';
import { guardLab, unguardLab } from './exit-guard.js';
import { cgroup2Mount, ensureBpffs, processStartTime, snapshotRoot, type RootSnapshot } from './host.js';
import { DEFAULT_POD_PORTS, RUN_ID_PATTERN } from './plan.js';
import { PodServer } from './podserver.js';
import { LabProcess, type Placement, type SpawnOptions } from './process.js';
import { recordExists, writeRecord, type LabRecord } from './state.js';
import { buildSteps, labCgroups, labNamespaces, layoutLab, outsideCgroup, type LabExternal, type LabLayout, type LabNode, type LabPod, type LabSpec } from './topology.js';

export type { LabSpec, LabNode, LabPod, LabExternal } from './topology.js';
export type { ClientRequest, ClientResult } from './client.js';
export type { ExitStatus, SpawnOptions } from './process.js';
export { LabConnection } from './client.js';
export { LabProcess } from './process.js';
export { LabError } from './commands.js';
export { cleanupStaleLabs, type CleanupReport } from './destroy.js';
export * as addressPlan from './plan.js';

export interface CreateLabOptions {
  log?: Logger;
  /** 6 lowercase hex digits; random when absent. */
  runId?: string;
  /** Ports every pod (and node) answers on, TCP and UDP. Default 80, 8080, 53. */
  podPorts?: number[];
}

export interface ExecOptions {
  /** A cgroup of this lab; default: the node cgroup owning the namespace (the outside cgroup for wire and external). */
  cgroup?: string;
  /** Default 10 s; the process is killed and exec rejects when it runs longer. */
  timeoutMs?: number;
  input?: string;
}

export interface ExecResult {
  /** Exit code, or 128 + signal number. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Where a client runs: a pod, a node, or the external client. */
export type ClientOrigin = LabPod | LabNode | 'external';

const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const MAX_EXEC_OUTPUT = 16 * 1024 * 1024;

export async function createLab(spec: LabSpec, opts: CreateLabOptions = {}): Promise<Lab> {
  return Lab.create(spec, opts);
}

/** Throws a LabError naming every way the lab reaches beyond its address plan or changed the root namespace. */
export async function assertContained(lab: Lab): Promise<void> {
  await assertContainedSubject(lab.containmentSubject());
}

/** The same check, as a list of violations (empty when contained). */
export async function findContainmentViolations(lab: Lab): Promise<string[]> {
  return containmentViolations(lab.containmentSubject());
}

export class Lab {
  readonly runId: string;
  readonly nodes: readonly LabNode[];
  readonly external: LabExternal | undefined;
  readonly wireNetns: string;
  /** The lab's cgroup (node cgroups are its children). */
  readonly cgroupRoot: string;
  /** The lab's bpffs directory (node directories are its children). */
  readonly bpffsRoot: string;
  readonly podPorts: readonly number[];
  private readonly layout: LabLayout;
  private readonly record: LabRecord;
  private readonly rootBefore: RootSnapshot;
  private readonly log: Logger;
  private readonly processes = new Set<LabProcess>();
  private readonly podServers = new Map<string, PodServer>();
  private teardownPromise: Promise<void> | null = null;

  private constructor(layout: LabLayout, record: LabRecord, rootBefore: RootSnapshot, log: Logger, podPorts: readonly number[]) {
    this.layout = layout;
    this.runId = layout.runId;
    this.nodes = layout.nodes;
    this.external = layout.external;
    this.wireNetns = layout.wireNetns;
    this.cgroupRoot = layout.cgroupRoot;
    this.bpffsRoot = layout.bpffsRoot;
    this.podPorts = podPorts;
    this.record = record;
    this.rootBefore = rootBefore;
    this.log = log;
  }

  /** @internal use createLab */
  static async create(spec: LabSpec, opts: CreateLabOptions): Promise<Lab> {
    const started = Date.now();
    const log = opts.log ?? silentLogger();
    if (process.getuid?.() !== 0) throw new LabError('lab: needs root (network namespaces, cgroups and bpffs)');
    // From now on a proxy this process starts in the root namespace must name its devices (devices.ts).
    process.env[LAB_GUARD_ENV] = '1';
    const podPorts = opts.podPorts ?? [...DEFAULT_POD_PORTS];
    for (const p of podPorts) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new LabError(`lab options: podPorts entry ${p} must be in 1..65535`);
    const runId = opts.runId ?? randomBytes(3).toString('hex');
    if (!RUN_ID_PATTERN.test(runId)) throw new LabError(`lab options: runId "${runId}" must be 6 lowercase hex digits`);
    if (recordExists(runId)) throw new LabError(`lab ${runId}: a lab with this runId exists already`);
    const layout = layoutLab(spec, runId, cgroup2Mount(), ensureBpffs());
    const rootBefore = await snapshotRoot();
    const record: LabRecord = {
      version: 1,
      runId,
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      createdAt: new Date().toISOString(),
      namespaces: labNamespaces(layout),
      cgroups: labCgroups(layout),
      cgroupRoot: layout.cgroupRoot,
      bpffsRoot: layout.bpffsRoot,
      bpffsDirs: [...layout.nodes.map((n) => n.bpffs), layout.bpffsRoot],
    };
    // Recorded and guarded before anything exists, so a crash at any point leaves a trail.
    writeRecord(record);
    const lab = new Lab(layout, record, rootBefore, log, podPorts);
    guardLab(runId, () => lab.teardownSync());
    try {
      await buildNetwork(buildSteps(layout));
      for (const dir of [...record.cgroups].reverse()) mkdirSync(dir);
      for (const dir of [...record.bpffsDirs].reverse()) mkdirSync(dir);
      log.debug({ runId, ms: Date.now() - started }, 'lab network, cgroups and bpffs directories built');
      await Promise.all(layout.nodes.map(async (node) => {
        lab.podServers.set(node.name, await PodServer.start(node, podPorts, (p) => lab.track(p)));
      }));
      log.debug({ runId, ms: Date.now() - started }, 'lab pod servers ready');
      await assertContained(lab);
    } catch (err) {
      await lab.teardown().catch((e: unknown) => log.error({ err: e, runId }, 'lab teardown after failed create'));
      throw err;
    }
    log.info({ runId, nodes: layout.nodes.length, ms: Date.now() - started }, 'lab created');
    return lab;
  }

  /** Every namespace of the lab. */
  get namespaces(): string[] {
    return labNamespaces(this.layout);
  }

  node(name: string): LabNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new LabError(`lab ${this.runId}: no node "${name}"`);
    return node;
  }

  pod(name: string): LabPod {
    const pod = this.nodes.flatMap((n) => n.pods).find((p) => p.name === name);
    if (!pod) throw new LabError(`lab ${this.runId}: no pod "${name}"`);
    return pod;
  }

  /** Runs argv in a lab namespace and cgroup to completion, bounded by timeoutMs. */
  async exec(netns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = labMs(opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
    const proc = this.spawn(netns, argv, opts.cgroup ? { cgroup: opts.cgroup } : {});
    const out = collect(proc.child.stdout);
    const err = collect(proc.child.stderr);
    proc.child.stdin?.end(opts.input ?? '');
    const status = await proc.waitExit(timeoutMs);
    if (!status) {
      proc.killSync();
      await proc.waitExit(STOP_GRACE_MS);
      throw new LabError(`lab ${this.runId}: exec in ${netns}: "${argv.join(' ')}" timed out after ${timeoutMs} ms`);
    }
    return { code: status.code, stdout: out.text(), stderr: err.text() };
  }

  /** Starts argv in a lab namespace and cgroup; the lab stops it at teardown at the latest. */
  spawn(netns: string, argv: readonly string[], opts: SpawnOptions & { cgroup?: string } = {}): LabProcess {
    if (argv.length === 0) throw new LabError(`lab ${this.runId}: spawn in ${netns}: empty argv`);
    const where = this.placement(netns, opts.cgroup);
    const proc = new LabProcess(argv.join(' '), where, argv, { env: opts.env, stdio: opts.stdio });
    this.track(proc);
    return proc;
  }

  /** Runs `req.count` attempts from a pod, a node or the external client; one result per attempt. */
  async client(from: ClientOrigin, req: ClientRequest): Promise<ClientResult[]> {
    validateRequest(req);
    const where = this.origin(from);
    const budget = runBudgetMs(req);
    const r = await this.exec(where.netns, clientArgv(req), { cgroup: where.cgroup, timeoutMs: budget });
    if (r.code !== 0) throw new LabError(`lab ${this.runId}: client in ${where.netns} exited ${r.code}: ${r.stderr.trim()}`);
    return parseResults(r.stdout, req.count);
  }

  /** Opens one TCP connection and holds it; `greeting` says who answered. Closed at teardown at the latest. */
  openConnection(from: ClientOrigin, host: string, port: number, opts: { timeoutMs?: number } = {}): Promise<LabConnection> {
    return LabConnection.open(this.origin(from), host, port, (p) => this.track(p), opts.timeoutMs);
  }

  /**
   * Opens (true) or closes (false) the listening sockets of a pod, or of a node's
   * host-network server. Closed, TCP is refused and UDP gets port unreachable;
   * established connections stay.
   */
  async setPodUp(target: LabPod | LabNode | string, up: boolean): Promise<void> {
    const endpoint = typeof target === 'string' ? target : target.name;
    const nodeName = this.nodes.some((n) => n.name === endpoint) ? endpoint : this.pod(endpoint).node;
    const server = this.podServers.get(nodeName);
    if (!server) throw new LabError(`lab ${this.runId}: node "${nodeName}" has no pod server (lab torn down?)`);
    await server.setUp(endpoint, up);
  }

  /** Stops every lab process and removes namespaces, cgroups, bpffs directories and the state file. Idempotent. */
  teardown(): Promise<void> {
    this.teardownPromise ??= this.doTeardown();
    return this.teardownPromise;
  }

  /** @internal what assertContained checks */
  containmentSubject(): { runId: string; namespaces: string[]; rootBefore: RootSnapshot } {
    return { runId: this.runId, namespaces: this.namespaces, rootBefore: this.rootBefore };
  }

  private async doTeardown(): Promise<void> {
    const started = Date.now();
    this.podServers.clear();
    await Promise.all([...this.processes].map((p) => p.stop(STOP_GRACE_MS)));
    try {
      destroyLabSync(this.record);
    } finally {
      unguardLab(this.runId);
    }
    this.log.info({ runId: this.runId, ms: Date.now() - started }, 'lab torn down');
  }

  private teardownSync(): void {
    for (const p of this.processes) p.killSync();
    destroyLabSync(this.record);
  }

  private track(proc: LabProcess): void {
    if (this.teardownPromise) {
      proc.killSync();
      throw new LabError(`lab ${this.runId}: torn down, cannot run ${proc.label}`);
    }
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
  }

  private origin(from: ClientOrigin): Placement {
    if (from === 'external') {
      if (!this.external) throw new LabError(`lab ${this.runId}: no external client (spec.external was not set)`);
      return { netns: this.external.netns, cgroup: this.external.cgroup };
    }
    return this.placement(from.netns);
  }

  /** A lab namespace and a lab cgroup (the namespace owner's by default); anything else is refused. */
  private placement(netns: string, cgroup?: string): Placement {
    if (this.teardownPromise) throw new LabError(`lab ${this.runId}: torn down`);
    if (!this.namespaces.includes(netns)) throw new LabError(`lab ${this.runId}: netns "${netns}" is not a namespace of this lab`);
    if (cgroup !== undefined) {
      const abs = resolve(cgroup);
      if (!abs.startsWith(`${this.cgroupRoot}/`) || !existsSync(`${abs}/cgroup.procs`)) {
        throw new LabError(`lab ${this.runId}: cgroup "${cgroup}" is not a cgroup of this lab (under ${this.cgroupRoot})`);
      }
      return { netns, cgroup: abs };
    }
    const owner = this.nodes.find((n) => n.netns === netns || n.pods.some((p) => p.netns === netns));
    return { netns, cgroup: owner ? owner.cgroup : outsideCgroup(this.layout) };
  }
}

function collect(stream: NodeJS.ReadableStream | null): { text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  stream?.on('data', (b: Buffer) => {
    if (size < MAX_EXEC_OUTPUT) chunks.push(b);
    size += b.length;
  });
  return { text: () => Buffer.concat(chunks).toString('utf8') };
}
