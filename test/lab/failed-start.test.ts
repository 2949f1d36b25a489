// What a proxy that fails to start says about the datapath (issue 12, item
// 9), checked against what a client meets: "keeps serving" only where a
// connection to the service goes through, "nothing is pinned" only where
// nothing is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy, type LogLine } from '../../src/lab/proxy.js';
import { oneEndpointService, put } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('failed-start lab tests skipped: they attach BPF programs, which needs root');

const FATAL = 60;

describe.skipIf(!isRoot)('a failed start says what still serves', () => {
  let lab: Lab;
  let dir: string;

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'client' }] }] });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-failed-start-'));
    put(dir, 'good.yaml', oneEndpointService('good', '10.96.7.1', lab.pod('a1').ipv4));
  });

  afterAll(async () => {
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const reach = async () => (await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.7.1', port: 80, count: 1, timeoutMs: 500 }))[0]!.ok;

  /** Starts a proxy that must fail; the line after its fatal one. */
  async function failedStart(args: string[], ports: { healthzPort?: number; metricsPort?: number } = {}): Promise<{ fatal: LogLine; after: LogLine }> {
    const p = LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: [...args, '--no-fallback'], ...ports });
    expect((await p.proc.exited).code).not.toBe(0);
    const at = p.logs.findIndex((l) => l.level === FATAL);
    expect(at).toBeGreaterThanOrEqual(0);
    return { fatal: p.logs[at]!, after: p.logs[at + 1]! };
  }

  it('with nothing pinned: says no bpf datapath serves, and none does', async () => {
    const { fatal, after } = await failedStart(['--manifests', '/nonexistent/bpfproxy-manifests']);
    expect(fatal.msg).toContain('nothing was changed');
    expect(after.msg).toBe(`nothing is pinned in ${lab.node('node1').bpffs}: no bpf datapath serves this node`);
    expect(await reach()).toBe(false);
  });

  it('beside a running proxy, and after it stopped: says the pinned datapath keeps serving, and it does', async () => {
    const running = LabProxy.start(lab, lab.node('node1'), { manifests: dir });
    await running.waitSynced();
    try {
      const second = await failedStart([], { healthzPort: 10266, metricsPort: 10259 });
      expect(second.fatal.msg).toContain(`in use by another bpfproxy (pid ${running.proc.pid})`);
      expect(second.after.msg).toContain('keeps serving');
      expect(await reach()).toBe(true);
    } finally {
      expect(await running.stop()).toBe(0);
    }
    // An earlier healthy run's pins, and a start that fails on a bad setting: they stay, and serve.
    const node = lab.node('node1');
    const { fatal, after } = await failedStart(['--cgroup-root', join(node.cgroup, 'cgroup.procs')]);
    expect(fatal.msg).toContain('not a directory');
    expect(after.msg).toBe(`the bpf datapath already pinned in ${node.bpffs} (an earlier run's, or the running proxy's) keeps serving as it was`);
    expect(await reach()).toBe(true);
  });
});
