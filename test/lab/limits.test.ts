// A map that is too small, as an operator meets it: the service that does not
// fit is named with the map and the setting to raise, keeps its previous state
// (here: not served), everything else works, and /healthz stays 200 so load
// balancers keep the node. When room is made, the retry admits it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { oneEndpointService, put } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('map-limit lab tests skipped: they attach BPF programs, which needs root');

describe.skipIf(!isRoot)('a frontend map too small for the cluster', () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy;

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'client' }] }] });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-limits-'));
    for (const [name, ip] of [['s1', '10.96.3.1'], ['s2', '10.96.3.2'], ['s3', '10.96.3.3']] as const) put(dir, `${name}.yaml`, oneEndpointService(name, ip, lab.pod('a1').ipv4));
    // Two frontends fit; NodePort addresses are none here, so each service has one.
    proxy = LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: ['--bpf-map-size', 'frontends=2'] });
    await proxy.waitSynced();
  });

  afterAll(async () => {
    await proxy?.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const reach = async (ip: string) => (await lab.client(lab.pod('client'), { proto: 'tcp', host: ip, port: 80, count: 1, timeoutMs: 500 }))[0]!;

  it('names the map, the service and the setting, serves the rest and stays healthy', async () => {
    const err = await proxy.waitFor((l) => l.code === 'MAP_FULL');
    expect(err.service).toBe('lab/s3:http/IPv4');
    expect(err.msg).toContain('bpx_fe_v1');
    expect(err.msg).toContain('bpf.mapSizes.frontends');
    expect((await reach('10.96.3.1')).ok).toBe(true);
    expect((await reach('10.96.3.2')).ok).toBe(true);
    expect((await reach('10.96.3.3')).ok).toBe(false);
    const healthz = await proxy.http('/healthz', 'healthz');
    expect(healthz.status).toBe(200);
    const metrics = await proxy.http('/metrics');
    expect(metrics.body).toMatch(/bpfproxy_sync_errors_total\{code="MAP_FULL"\} [1-9]/);
  });

  it('admits the service once room is made', async () => {
    rmSync(join(dir, 's1.yaml'));
    const deadline = Date.now() + 10_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = (await reach('10.96.3.3')).ok;
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok).toBe(true);
    expect((await reach('10.96.3.2')).ok).toBe(true);
  });
});
