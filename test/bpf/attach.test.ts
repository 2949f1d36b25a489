// The loader's device hooks in a lab node: XDP and TC fixture programs
// (test/bpf/objects/count.bpf.c) count real UDP packets between lab
// namespaces through pinned links and recorded clsact filters; the
// attachments outlive the loader process, a second load swaps programs in
// place without losing a packet, forced fallbacks work on this kernel, and
// cleanup leaves nothing. The loader runs as its own process inside the
// node's network namespace (device names are per namespace), pinning into the
// node's bpffs directory; nothing touches the root namespace's devices.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Attachment } from '../../src/dataplane/bpf/loader.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('loader attach tests skipped: they build network namespaces and attach BPF programs, which needs root');

const VITE_NODE = join(PACKAGE_ROOT, 'node_modules', 'vite-node', 'vite-node.mjs');
const LOADER_CLI = join(PACKAGE_ROOT, 'test', 'bpf', 'objects', 'loader-cli.ts');
const FIXTURES = join(PACKAGE_ROOT, 'build', 'test-bpf');
const HOOKS = ['xdp', 'tc-ingress', 'tc-egress'] as const;

const countObject = (file: string) => ({
  file,
  programs: { count_xdp: 'xdp', count_tc_in: 'tc-ingress', count_tc_out: 'tc-egress' },
  structs: ['bpx_fe_key'],
});

interface LoaderReply {
  attachments?: Attachment[];
  removed?: string[];
  error?: string;
  logs: { level: number; msg: string; [k: string]: unknown }[];
}

describe.skipIf(!isRoot)('loader: XDP and TC on a lab node device', () => {
  let lab: Lab;
  let node: LabNode;
  let pinDir: string;
  let seq = 0;

  /** Runs the loader (or cleanup) as a process in the node's namespace and cgroup. */
  async function loader(req: Record<string, unknown>): Promise<LoaderReply> {
    const body = { action: 'load', pinDir, objectDir: FIXTURES, ...req };
    const r = await lab.exec(node.netns, [process.execPath, VITE_NODE, LOADER_CLI, JSON.stringify(body)], { timeoutMs: 30_000 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (!last.startsWith('{')) throw new Error(`loader exited ${r.code}: ${r.stderr}`);
    return JSON.parse(last) as LoaderReply;
  }

  async function load(req: Record<string, unknown>): Promise<Attachment[]> {
    const r = await loader(req);
    if (r.error) throw new Error(r.error);
    return r.attachments!;
  }

  /** Packets counted per hook by generation 1 and 2 of the fixture, read from the pinned map. */
  function counts(): { v1: number[]; v2: number[] } {
    const fd = native.objGet(join(pinDir, 'bpx_test_count'));
    if (fd < 0) throw new Error(`no pinned bpx_test_count in ${pinDir}`);
    try {
      const read = (slot: number) => {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(slot);
        const value = Buffer.alloc(8);
        if (!native.lookup(fd, key, value)) throw new Error(`slot ${slot} missing`);
        return Number(value.readBigUInt64LE(0));
      };
      return { v1: [0, 1, 2].map(read), v2: [3, 4, 5].map(read) };
    } finally {
      native.closeFd(fd);
    }
  }

  /** UDP to the node's own server on port 53, from the external client on the wire: in through eth0, replies out through it. */
  async function udp(count: number): Promise<number> {
    const res = await lab.client('external', { proto: 'udp', host: node.ipv4, port: 53, count, timeoutMs: 1000 });
    return res.filter((r) => r.ok).length;
  }

  const sh = async (argv: string[]) => (await lab.exec(node.netns, argv)).stdout;
  const linkShow = () => sh(['ip', '-d', 'link', 'show', 'dev', 'eth0']);
  const filters = async () => `${await sh(['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])}${await sh(['tc', 'filter', 'show', 'dev', 'eth0', 'egress'])}`;
  const linkExists = async (id: number) => (await lab.exec(node.netns, ['bpftool', 'link', 'show', 'id', String(id)])).code === 0;
  const summary = (as: Attachment[]) => as.map((a) => `${a.hook} ${a.target} ${a.via}${a.replaced ? ' replaced' : ''}`);

  /** Cleanup through the CLI in the node, then: no XDP, no filter, no link, no pin. */
  async function cleanupAndCheck(links: number[]): Promise<string[]> {
    const r = await loader({ action: 'cleanup' });
    expect(r.error).toBeUndefined();
    expect(await linkShow()).not.toMatch(/prog\/xdp|xdpgeneric|xdpdrv/);
    expect(await filters()).toBe('');
    for (const id of links) expect(await linkExists(id), `link ${id}`).toBe(false);
    expect(existsSync(pinDir)).toBe(false);
    return r.removed!;
  }

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'n1', pods: [{ name: 'p1' }] }], external: true });
    node = lab.node('n1');
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  beforeEach(() => {
    pinDir = join(node.bpffs, `t${seq++}`);
  });

  afterEach(async () => {
    // Also after a failure; the lab's teardown removes the namespace (and with it any attachment) anyway.
    if (existsSync(pinDir)) await loader({ action: 'cleanup' });
  });

  it('native XDP and tcx count real packets through pinned links, outlive the loader, and a second load swaps programs without a gap', async () => {
    const first = await load({ objects: [countObject('count-v1.bpf.o')], devices: ['eth0'] });
    expect(summary(first)).toEqual(['xdp eth0 xdp-native', 'tc-ingress eth0 tcx', 'tc-egress eth0 tcx']);
    // The loader process has exited: only the pins keep the programs attached.
    expect(await udp(20)).toBe(20);
    expect(counts()).toEqual({ v1: [20, 20, 20], v2: [0, 0, 0] });
    expect(await linkShow()).toMatch(new RegExp(`prog/xdp id ${first[0]!.progId}\\b`));
    expect(await udp(10)).toBe(10);
    expect(counts().v1).toEqual([30, 30, 30]);

    // Replace every program while traffic flows: each packet is counted by the old or the new one.
    // Two staggered client loops keep datagrams in flight while the loader starts up and swaps.
    let swapping = true;
    const deadline = Date.now() + 20_000;
    const pump = async (delayMs: number) => {
      await new Promise((r) => setTimeout(r, delayMs));
      let sent = 0;
      let ok = 0;
      while (swapping && Date.now() < deadline) {
        ok += (await lab.client('external', { proto: 'udp', host: node.ipv4, port: 53, count: 2000, timeoutMs: 1000 })).filter((r) => r.ok).length;
        sent += 2000;
      }
      return { sent, ok };
    };
    const pumps = Promise.all([pump(0), pump(120)]);
    while (counts().v1[0]! < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const second = await load({ objects: [countObject('count-v2.bpf.o')], devices: ['eth0'] }).finally(() => { swapping = false; });
    const runs = await pumps;
    const sent = runs[0].sent + runs[1].sent;
    expect(runs[0].ok + runs[1].ok).toBe(sent);
    const after = counts();
    for (let h = 0; h < 3; h++) {
      expect(after.v1[h]! + after.v2[h]!, `${HOOKS[h]}: packets counted by either generation`).toBe(30 + sent);
      expect(after.v1[h], `${HOOKS[h]}: the old program ran during the run`).toBeGreaterThan(30);
      expect(after.v2[h], `${HOOKS[h]}: the new program ran during the run`).toBeGreaterThan(0);
    }
    expect(summary(second)).toEqual(['xdp eth0 xdp-native replaced', 'tc-ingress eth0 tcx replaced', 'tc-egress eth0 tcx replaced']);
    for (let i = 0; i < 3; i++) {
      expect(second[i]!.linkId, `${HOOKS[i]}: same link`).toBe(first[i]!.linkId);
      expect(second[i]!.progId, `${HOOKS[i]}: new program`).not.toBe(first[i]!.progId);
    }
    expect(await linkShow()).toMatch(new RegExp(`prog/xdp id ${second[0]!.progId}\\b`));

    const removed = await cleanupAndCheck(first.map((a) => a.linkId!));
    expect(removed.filter((p) => p.includes('/links/')).map((p) => p.split('/').pop()).sort()).toEqual(['tcx-egress-eth0', 'tcx-ingress-eth0', 'xdp-eth0']);
  });

  it('clsact filters and generic XDP when forced, replaced in place; tcx takes over from the filters; cleanup removes them', async () => {
    const forced = { tc: 'clsact', xdp: 'generic', devices: ['eth0'] };
    const first = await load({ objects: [countObject('count-v1.bpf.o')], ...forced });
    expect(summary(first)).toEqual(['xdp eth0 xdp-generic', 'tc-ingress eth0 clsact', 'tc-egress eth0 clsact']);
    expect(await linkShow()).toMatch(new RegExp(`prog/xdp id ${first[0]!.progId}\\b`));
    expect(await linkShow()).toMatch(/xdpgeneric/);
    expect(await sh(['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])).toMatch(new RegExp(`handle 0xb9f count_tc_in.* direct-action.* id ${first[1]!.progId}\\b`));
    expect(await sh(['tc', 'filter', 'show', 'dev', 'eth0', 'egress'])).toMatch(new RegExp(`handle 0xb9f count_tc_out.* direct-action.* id ${first[2]!.progId}\\b`));
    expect(await udp(20)).toBe(20);
    expect(counts()).toEqual({ v1: [20, 20, 20], v2: [0, 0, 0] });

    const second = await load({ objects: [countObject('count-v2.bpf.o')], ...forced });
    expect(summary(second)).toEqual(['xdp eth0 xdp-generic replaced', 'tc-ingress eth0 clsact replaced', 'tc-egress eth0 clsact replaced']);
    expect(second[0]!.linkId).toBe(first[0]!.linkId);
    expect(await sh(['tc', 'filter', 'show', 'dev', 'eth0', 'ingress'])).toMatch(new RegExp(`count_tc_in.* direct-action.* id ${second[1]!.progId}\\b`));
    expect(await udp(20)).toBe(20);
    expect(counts()).toEqual({ v1: [20, 20, 20], v2: [20, 20, 20] });

    // Unforced, tcx is found and replaces the filters; XDP keeps the generic link it has (no gap).
    const third = await load({ objects: [countObject('count-v1.bpf.o')], devices: ['eth0'] });
    expect(summary(third)).toEqual(['xdp eth0 xdp-generic replaced', 'tc-ingress eth0 tcx', 'tc-egress eth0 tcx']);
    expect(await filters()).toBe('');
    expect(await udp(10)).toBe(10);
    expect(counts(), 'each packet counted once: no filter left beside the tcx link').toEqual({ v1: [30, 30, 30], v2: [20, 20, 20] });

    // Forced clsact again: filters back, tcx links gone, then cleanup removes the filters it recorded.
    const fourth = await load({ objects: [countObject('count-v1.bpf.o')], ...forced });
    expect(summary(fourth).slice(1)).toEqual(['tc-ingress eth0 clsact', 'tc-egress eth0 clsact']);
    expect(await linkExists(third[1]!.linkId!)).toBe(false);
    expect(await udp(10)).toBe(10);
    expect(counts().v1).toEqual([40, 40, 40]);
    const removed = await cleanupAndCheck([first[0]!.linkId!]);
    expect(removed).toEqual(expect.arrayContaining([expect.stringMatching(/^clsact ingress filter on eth0/), expect.stringMatching(/^clsact egress filter on eth0/)]));
  });

  it('falls back to generic XDP where the driver has no native XDP (a bridge), and names step, device and program on failure', async () => {
    const spec = { objects: [countObject('count-v1.bpf.o')] };
    const r = await loader({ ...spec, devices: ['br0'] });
    expect(r.error).toBeUndefined();
    expect(summary(r.attachments!)).toEqual(['xdp br0 xdp-generic', 'tc-ingress br0 tcx', 'tc-egress br0 tcx']);
    const fallback = r.logs.find((l) => /no native XDP/.test(l.msg));
    expect(fallback).toMatchObject({ device: 'br0', reason: expect.stringMatching(/create native XDP link: Operation not supported/) });
    expect(await sh(['ip', '-d', 'link', 'show', 'dev', 'br0'])).toMatch(/xdpgeneric/);

    const native_ = await loader({ ...spec, devices: ['br0'], xdp: 'native', pinDir: `${pinDir}-native` });
    expect(native_.error).toMatch(/^attach xdp program count_xdp \(count-v1\.bpf\.o\) to br0 \(ifindex \d+\): create native XDP link: Operation not supported/);
    const missing = await loader({ ...spec, devices: ['nosuch0'], pinDir: `${pinDir}-missing` });
    expect(missing.error).toBe('attach xdp program count_xdp (count-v1.bpf.o) to nosuch0 (ifindex none): no such device in this network namespace');
    for (const dir of [`${pinDir}-native`, `${pinDir}-missing`]) await loader({ action: 'cleanup', pinDir: dir });

    await loader({ action: 'cleanup' });
    expect(await sh(['ip', '-d', 'link', 'show', 'dev', 'br0'])).not.toMatch(/xdpgeneric/);
  });

  it('the socket datapath (sock.bpf.o): cgroup links replaced in place by a second load, detached by cleanup', async () => {
    // objects and objectDir unset: the declared DATAPATH_OBJECTS from build/bpf.
    const sock = { objectDir: undefined, cgroupRoot: node.cgroup };
    const first = await load(sock);
    expect(first.length).toBeGreaterThanOrEqual(8);
    expect(new Set(first.map((a) => `${a.object} ${a.hook} ${a.via} ${a.target}`))).toEqual(new Set([`sock.bpf.o cgroup cgroup-link ${node.cgroup}`]));
    const second = await load(sock);
    expect(second.every((a) => a.replaced)).toBe(true);
    expect(second.map((a) => a.linkId)).toEqual(first.map((a) => a.linkId));
    for (let i = 0; i < first.length; i++) expect(second[i]!.progId).not.toBe(first[i]!.progId);
    const attached = async () => (await lab.exec(node.netns, ['bpftool', 'cgroup', 'show', node.cgroup])).stdout;
    expect(await attached()).toMatch(/connect4/);
    await cleanupAndCheck(first.map((a) => a.linkId!));
    expect(await attached()).not.toMatch(/connect4|sendmsg4|recvmsg4|getpeername4/);
  });

  it('refuses a pinned map of another layout, naming it, and leaves the running programs alone', async () => {
    const first = await load({ objects: [countObject('count-v1.bpf.o')], devices: ['eth0'] });
    const r = await loader({ objects: [countObject('count-wide.bpf.o')], devices: ['eth0'] });
    expect(r.error).toMatch(new RegExp(`pinned map ${join(pinDir, 'bpx_test_count')} has another layout \\(type 2 key 4 value 8, this build wants type 2 key 4 value 16\\)`));
    // Refused before anything was attached: the same links run the same programs.
    expect(first.map((a) => native.pinnedLinkInfo(a.pin))).toEqual(first.map((a) => expect.objectContaining({ id: a.linkId, progId: a.progId })));
    expect(await udp(5)).toBe(5);
    expect(counts().v1).toEqual([5, 5, 5]);
    await cleanupAndCheck(first.map((a) => a.linkId!));
  });
});
