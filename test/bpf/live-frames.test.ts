// The NodePort packet bench's generator (bench/live-frames.ts,
// bpf/bench/trafficgen.bpf.c): BPF_PROG_TEST_RUN in live-frames mode,
// redirected from the wire namespace into a lab node's eth0, counted by a tc
// program on a pod's eth0. What the bench's figures rest on:
// - frames arrive after the first batch too (the kernel recycles pages with
//   what the forwarding path wrote into them; the generator rewrites its
//   headers per frame);
// - a veth takes redirected frames only with an XDP program or GRO on;
// - close() leaves no attachment behind.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveFrames } from '../../bench/live-frames.js';
import { createLab, type Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('live-frames generator tests skipped: they build network namespaces and attach BPF programs, which needs root');

/** Several batches of 64: pages come back from the pool recycled. */
const FRAMES = 5000;
const BATCH = 64;

describe.skipIf(!isRoot)('live-frames generator: frames without an skb into a lab node', () => {
  let lab: Lab;
  let node: LabNode;
  let pod: LabPod;
  let gen: LiveFrames;
  let packet: Buffer;

  const send = async (frames: number): Promise<number> => {
    gen.countFor(pod.ipv4, 9000);
    const before = gen.counted();
    gen.send(node.wirePort, packet, frames, BATCH);
    await new Promise((r) => setTimeout(r, 200));
    return gen.counted() - before;
  };

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'n1', pods: [{ name: 'p1' }] }], external: true });
    node = lab.node('n1');
    pod = lab.pod('p1');
    gen = LiveFrames.open(lab);
    gen.attachCounter(pod, true);
    // Addressed to the pod: the node routes it, nothing translates it.
    packet = await gen.packetTo(node, pod.ipv4, 9000);
  }, 60_000);

  afterAll(async () => {
    await gen?.close();
    await lab?.teardown();
  });

  it('a veth with neither XDP nor GRO takes no redirected frame; with GRO on it takes them all, routed on to the pod', async () => {
    await gen.setGro(node.netns, 'eth0', false);
    expect(await send(1000)).toBe(0);
    await gen.setGro(node.netns, 'eth0', true);
    await send(100); // the node resolves the pod's neighbour entry
    // Before the generator rewrote its headers per frame, only the first batch arrived.
    expect(await send(FRAMES)).toBeGreaterThanOrEqual(0.9 * FRAMES);
  }, 60_000);

  it('an XDP program on the veth takes them too, with GRO off', async () => {
    await gen.setGro(node.netns, 'eth0', false);
    gen.setXdp(node.netns, 'eth0', 'bench_pass');
    try {
      expect(await send(FRAMES)).toBeGreaterThanOrEqual(0.9 * FRAMES);
    } finally {
      gen.setXdp(node.netns, 'eth0', null);
    }
    expect(await send(1000)).toBe(0);
  }, 60_000);

  it('close() removes the sink pair, the links and the pins, and only its own', async () => {
    const extra = LiveFrames.open(lab);
    const dev = await extra.openSink();
    const wireLinks = async () => (await lab.exec(lab.wireNetns, ['ip', 'link', 'show'])).stdout;
    const sinkRx = (await lab.exec(lab.wireNetns, ['ip', 'link', 'show', 'dev', 'bxgen1'])).stdout;
    expect(await wireLinks()).toContain(dev);
    expect(sinkRx).toContain('prog/xdp'); // the sink's far end counts in XDP
    await extra.close();
    expect(await wireLinks()).not.toContain(dev);
    expect(existsSync(extra.pin)).toBe(false);
    // The first generator still counts what reaches the pod.
    await gen.setGro(node.netns, 'eth0', true);
    expect(await send(1000)).toBeGreaterThanOrEqual(900);
  }, 60_000);
});
