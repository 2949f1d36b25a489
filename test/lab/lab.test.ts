// The lab's own tests: the cluster it builds carries traffic where it should,
// nowhere else, and leaves nothing behind (also when its owner fails or dies).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressPlan, assertContained, cleanupStaleLabs, createLab, findContainmentViolations, type Lab, type LabSpec } from '../../src/lab/lab.js';
import { cgroup2Mount, BPFFS_MOUNT } from '../../src/lab/host.js';
import { statePath } from '../../src/lab/state.js';
import { buildSteps, layoutLab } from '../../src/lab/topology.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { run } from '../../src/lab/commands.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('lab tests skipped: building network namespaces, cgroups and bpffs directories needs root');

const SPEC: LabSpec = {
  nodes: [
    { name: 'node-a', pods: [{ name: 'a1' }, { name: 'a2' }] },
    { name: 'node-b', pods: [{ name: 'b1' }, { name: 'b2' }] },
  ],
  external: true,
  ipv6: true,
};

const ipOf = (hostPort: string): string => hostPort.replace(/^\[?(.*?)\]?:\d+$/, '$1');

/** What is left of a lab on the machine, found by listing: namespaces, cgroups, bpffs directories, state file. */
async function leftovers(runId: string): Promise<string[]> {
  const found: string[] = [];
  const netns = await run(['ip', 'netns', 'list']);
  found.push(...netns.split('\n').filter((l) => l.startsWith(`bpx-${runId}-`)).map((l) => `netns ${l.split(' ')[0]}`));
  found.push(...readdirSync(cgroup2Mount()).filter((d) => d.includes(runId)).map((d) => `cgroup ${d}`));
  found.push(...readdirSync(BPFFS_MOUNT).filter((d) => d.includes(runId)).map((d) => `bpffs ${d}`));
  if (existsSync(statePath(runId))) found.push(`state ${statePath(runId)}`);
  return found;
}

describe('lab plan (no root needed)', () => {
  it('configures only lab namespaces, and only addresses and routes inside the address plan', () => {
    const layout = layoutLab(SPEC, 'abc123', '/sys/fs/cgroup', '/sys/fs/bpf');
    const steps = buildSteps(layout);
    const labNs = new Set(steps.namespaces);
    for (const batch of steps.stages.flat()) {
      expect(labNs.has(batch.netns)).toBe(true);
      for (const cmd of batch.commands) {
        expect(cmd).not.toMatch(/\bdefault\b/);
        for (const addr of cmd.match(/\b(?:\d+\.){3}\d+(?:\/\d+)?|\b[0-9a-f]*:[0-9a-f:]+(?:\/\d+)?/g) ?? []) {
          expect(addressPlan.isContainedPrefix(addr), `${batch.netns}: ip ${cmd}`).toBe(true);
        }
      }
    }
    expect(steps.namespaces.every((ns) => ns.startsWith('bpx-abc123-'))).toBe(true);
  });

  it('accepts plan prefixes and refuses the default route, wider prefixes and the machine network', () => {
    expect(addressPlan.isContainedPrefix('10.244.2.0/24')).toBe(true);
    expect(addressPlan.isContainedPrefix('fd00:244:1::10')).toBe(true);
    expect(addressPlan.isContainedPrefix('0.0.0.0/0')).toBe(false);
    expect(addressPlan.isContainedPrefix('10.0.0.0/8')).toBe(false);
    expect(addressPlan.isContainedPrefix('192.0.2.1')).toBe(false);
    expect(addressPlan.isContainedPrefix('::/0')).toBe(false);
  });

  it('rejects a spec that reuses a name, names the field', () => {
    const dup: LabSpec = { nodes: [{ name: 'n', pods: [{ name: 'n' }] }] };
    expect(() => layoutLab(dup, 'abc123', '/c', '/b')).toThrow(/nodes\[0\]\.pods\[0\]\.name "n" is used twice/);
  });
});

describe.skipIf(!isRoot)('lab', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await createLab(SPEC);
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('carries pod-to-pod TCP and UDP across nodes, and the server sees the real client address', async () => {
    const [a1, b1] = [lab.pod('a1'), lab.pod('b1')];
    for (const [from, to] of [[a1.ipv4, b1.ipv4], [a1.ipv6!, b1.ipv6!]] as const) {
      for (const proto of ['tcp', 'udp', 'udp-connected'] as const) {
        const [r] = await lab.client(a1, { proto, host: to, port: 80, count: 1, timeoutMs: 2_000 });
        expect(r, `${proto} ${from} -> ${to}`).toMatchObject({ ok: true, pod: 'b1' });
        if (!r?.ok) continue;
        expect(ipOf(r.client)).toBe(from);
        expect(ipOf(r.local)).toBe(to);
        expect(ipOf(r.peer)).toBe(to);
      }
    }
  });

  it('gives each attempt its own source port, from one client process', async () => {
    const results = await lab.client(lab.pod('a2'), { proto: 'tcp', host: lab.pod('b2').ipv4, port: 8080, count: 20, timeoutMs: 2_000 });
    expect(results.every((r) => r.ok && r.pod === 'b2')).toBe(true);
    expect(new Set(results.map((r) => (r.ok ? r.client : r.error))).size).toBe(20);
  });

  it('lets a pod reach another node, and the external client reach node addresses but not pods', async () => {
    const [nodeA, nodeB] = [lab.node('node-a'), lab.node('node-b')];
    const [toNode] = await lab.client(lab.pod('a1'), { proto: 'tcp', host: nodeB.ipv4, port: 80, count: 1, timeoutMs: 2_000 });
    expect(toNode).toMatchObject({ ok: true, pod: 'node-b', client: expect.stringMatching(`^${lab.pod('a1').ipv4}:`) });

    const [fromOutside] = await lab.client('external', { proto: 'udp', host: nodeA.ipv4, port: 53, count: 1, timeoutMs: 2_000 });
    expect(fromOutside).toMatchObject({ ok: true, pod: 'node-a', client: expect.stringMatching(/^172\.18\.0\.100:/) });
    const [fromOutside6] = await lab.client('external', { proto: 'tcp', host: nodeA.ipv6!, port: 80, count: 1, timeoutMs: 2_000 });
    expect(fromOutside6).toMatchObject({ ok: true, pod: 'node-a' });

    // Pods are not routable from outside the cluster: the external client has no route to them.
    const [toPod] = await lab.client('external', { proto: 'tcp', host: lab.pod('b1').ipv4, port: 80, count: 1, timeoutMs: 500 });
    expect(toPod).toMatchObject({ ok: false, error: 'ENETUNREACH' });
  });

  it('is contained: no way out to the machine network, and the check catches a default route', async () => {
    await assertContained(lab);
    const hostAddrs = JSON.parse(await run(['ip', '-j', '-4', 'addr', 'show', 'scope', 'global'])) as { addr_info: { local: string }[] }[];
    const hostAddr = hostAddrs.flatMap((l) => l.addr_info.map((a) => a.local))[0] ?? '192.0.2.1';
    for (const from of [lab.pod('a1'), lab.node('node-b'), 'external'] as const) {
      const [r] = await lab.client(from, { proto: 'tcp', host: hostAddr, port: 22, count: 1, timeoutMs: 500 });
      expect(r, `to ${hostAddr}`).toMatchObject({ ok: false, error: 'ENETUNREACH' });
    }

    const a1 = lab.pod('a1');
    const gw = lab.node('node-a').gatewayV4;
    expect((await lab.exec(a1.netns, ['ip', 'route', 'add', 'default', 'via', gw])).code).toBe(0);
    try {
      const violations = await findContainmentViolations(lab);
      expect(violations).toEqual([`netns ${a1.netns}: route default dev eth0 is a default route`]);
    } finally {
      await lab.exec(a1.netns, ['ip', 'route', 'del', 'default']);
    }
    expect(await findContainmentViolations(lab)).toEqual([]);
  });

  it("runs pod servers and clients of a node inside the node's cgroup", async () => {
    const nodeA = lab.node('node-a');
    const { stdout } = await lab.exec(lab.pod('a1').netns, ['cat', '/proc/self/cgroup']);
    expect(stdout).toContain(`0::${nodeA.cgroup.slice(cgroup2Mount().length)}\n`);
    const pids = readFileSync(join(nodeA.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    const cmdlines = pids.map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8'));
    expect(cmdlines.some((c) => c.includes('podserver.py') && c.includes('"a1"'))).toBe(true);
    expect(readdirSync(nodeA.bpffs)).toEqual([]);
  });

  it('refuses connections to a pod that is down, and answers again once it is up', async () => {
    const [a1, b1, b2] = [lab.pod('a1'), lab.pod('b1'), lab.pod('b2')];
    await lab.setPodUp(b1, false);
    try {
      const [tcp] = await lab.client(a1, { proto: 'tcp', host: b1.ipv4, port: 80, count: 1, timeoutMs: 2_000 });
      expect(tcp).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
      const [udp] = await lab.client(a1, { proto: 'udp-connected', host: b1.ipv6!, port: 53, count: 1, timeoutMs: 2_000 });
      expect(udp).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
      const [other] = await lab.client(a1, { proto: 'tcp', host: b2.ipv4, port: 80, count: 1, timeoutMs: 2_000 });
      expect(other).toMatchObject({ ok: true, pod: 'b2' });
    } finally {
      await lab.setPodUp(b1, true);
    }
    const [back] = await lab.client(a1, { proto: 'tcp', host: b1.ipv4, port: 80, count: 1, timeoutMs: 2_000 });
    expect(back).toMatchObject({ ok: true, pod: 'b1' });
  });

  it('holds a connection open and echoes lines on it, also while the pod stops listening', async () => {
    const b2 = lab.pod('b2');
    const conn = await lab.openConnection(lab.pod('a1'), b2.ipv4, 8080);
    try {
      expect(conn.greeting).toMatchObject({ pod: 'b2', peer: `${b2.ipv4}:8080` });
      expect(await conn.send('hello')).toBe('b2 hello');
      await lab.setPodUp(b2, false);
      expect(await conn.send('still there')).toBe('b2 still there');
    } finally {
      await lab.setPodUp(b2, true);
      await conn.close();
    }
    expect(conn.process.running).toBe(false);
  });

  it('bounds exec in time and refuses namespaces that are not the lab\'s', async () => {
    await expect(lab.exec(lab.wireNetns, ['sleep', '30'], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    await expect(lab.exec('bpx-000000-n1', ['true'])).rejects.toThrow(/not a namespace of this lab/);
    await expect(lab.exec(lab.wireNetns, ['true'], { cgroup: cgroup2Mount() })).rejects.toThrow(/not a cgroup of this lab/);
  });

  it('teardown removes namespaces, cgroups, pins and the state file, kills lab processes, and can be repeated', async () => {
    const nodeA = lab.node('node-a');
    const pin = join(nodeA.bpffs, 'lab_test_map');
    await run(['bpftool', 'map', 'create', pin, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'lab_test_map']);
    const sleeper = lab.spawn(nodeA.netns, ['sleep', '300'], { stdio: 'ignore' });
    expect(await leftovers(lab.runId)).toHaveLength(lab.namespaces.length + 3);

    await lab.teardown();
    expect(await leftovers(lab.runId)).toEqual([]);
    expect(sleeper.running).toBe(false);
    await lab.teardown();
    await expect(lab.client('external', { proto: 'tcp', host: nodeA.ipv4, port: 80, count: 1, timeoutMs: 500 })).rejects.toThrow(/torn down/);
  });
});

describe.skipIf(!isRoot)('lab owned by a process that fails', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-test-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a script that creates a lab, prints its runId, then does `then`. */
  function owner(then: string): { runId: Promise<string>; exit: Promise<number | null>; kill: () => void } {
    const script = join(dir, `owner-${Math.random().toString(16).slice(2)}.ts`);
    writeFileSync(script, [
      `import { createLab } from ${JSON.stringify(join(PACKAGE_ROOT, 'src/lab/lab.ts'))};`,
      `const lab = await createLab(${JSON.stringify({ nodes: [{ name: 'n1', pods: [{ name: 'p1' }] }, { name: 'n2', pods: [] }], external: true })});`,
      'console.log(lab.runId);',
      then,
    ].join('\n'));
    const child = spawn(join(PACKAGE_ROOT, 'node_modules/.bin/vite-node'), [script], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const runId = new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
      void exit.then(() => reject(new Error(`owner exited before creating a lab: ${stderr}`)));
    });
    return { runId, exit, kill: () => child.kill('SIGKILL') };
  }

  it('removes the lab when the owner throws', async () => {
    const o = owner("throw new Error('test body failed');");
    const runId = await o.runId;
    expect(await o.exit).not.toBe(0);
    expect(await leftovers(runId)).toEqual([]);
  });

  it('leaves a trail when the owner is killed, and cleanupStaleLabs removes it', async () => {
    const o = owner('setInterval(() => undefined, 1000);');
    const runId = await o.runId;
    o.kill();
    await o.exit;
    expect(await leftovers(runId)).toContain(`state ${statePath(runId)}`);
    const report = cleanupStaleLabs();
    expect(report.removed).toContain(runId);
    expect(await leftovers(runId)).toEqual([]);
  });
});
