import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/util/clock.js';
import { HttpServers, ListenError, ProxyHealth, healthTimeoutFor } from '../../../src/runtime/http.js';
import { Metrics } from '../../../src/runtime/metrics.js';
import { connectError, freePort, get, occupy } from './net-helpers.js';

const LOOPBACK_ANY_PORT = { host: '127.0.0.1', port: 0 };
const TIMEOUT = healthTimeoutFor(30_000);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function start(opts: Partial<Parameters<typeof HttpServers.start>[0]> = {}) {
  const clock = new FakeClock();
  const health = new ProxyHealth({ healthTimeoutMs: TIMEOUT, clock });
  const metrics = new Metrics({ processMetrics: false });
  const servers = await HttpServers.start({
    healthz: LOOPBACK_ANY_PORT, metrics: LOOPBACK_ANY_PORT, health, metricsRegistry: metrics, mode: 'bpf', ...opts,
  });
  cleanups.push(() => servers.close());
  return { clock, health, metrics, servers, healthzPort: servers.address('healthz')?.port ?? 0, metricsPort: servers.address('metrics')?.port ?? 0 };
}

describe('ProxyHealth', () => {
  it('is healthy until a queued change waits a full health timeout (2 x syncPeriod)', async () => {
    const clock = new FakeClock();
    const h = new ProxyHealth({ healthTimeoutMs: TIMEOUT, clock });
    expect(h.isHealthy()).toBe(true);
    h.queued();
    await clock.advance(TIMEOUT - 1);
    h.queued();
    expect(h.isHealthy()).toBe(true);
    await clock.advance(1);
    expect(h.isHealthy()).toBe(false);
    h.updated();
    expect(h.status()).toEqual({ healthy: true, lastUpdated: clock.now(), currentTime: clock.now(), nodeEligible: true });
  });

  it('turns a sync that keeps failing with nothing queued into ill health', async () => {
    const clock = new FakeClock();
    const h = new ProxyHealth({ healthTimeoutMs: TIMEOUT, clock });
    h.updated();
    h.syncFailed();
    await clock.advance(TIMEOUT / 2);
    h.syncFailed();
    await clock.advance(TIMEOUT / 2);
    expect(h.isHealthy()).toBe(false);
  });
});

describe('HttpServers', () => {
  it('answers /healthz and /livez like kube-proxy', async () => {
    const { clock, health, healthzPort } = await start();
    let r = await get(healthzPort, '/healthz');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const now = new Date(clock.now()).toISOString();
    expect(JSON.parse(r.body)).toEqual({ lastUpdated: now, currentTime: now, nodeEligible: true });

    health.updated();
    const updatedAt = new Date(clock.now()).toISOString();
    health.queued();
    await clock.advance(TIMEOUT);
    r = await get(healthzPort, '/healthz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ lastUpdated: updatedAt, currentTime: new Date(clock.now()).toISOString(), nodeEligible: true });
    expect((await get(healthzPort, '/livez')).status).toBe(503);

    health.updated();
    expect((await get(healthzPort, '/healthz')).status).toBe(200);
    expect(JSON.parse((await get(healthzPort, '/livez')).body)).not.toHaveProperty('nodeEligible');
  });

  it('fails /healthz but not /livez while the node is being deleted', async () => {
    const { health, healthzPort } = await start();
    health.setNodeDeleting(true);
    const r = await get(healthzPort, '/healthz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).nodeEligible).toBe(false);
    expect((await get(healthzPort, '/livez')).status).toBe(200);
    health.setNodeDeleting(false);
    expect((await get(healthzPort, '/healthz')).status).toBe(200);
  });

  it('serves /metrics, a /healthz ping and /proxyMode on the metrics address, and counts probes', async () => {
    const { health, healthzPort, metricsPort } = await start({ mode: 'nftables' });
    expect(metricsPort).not.toBe(healthzPort);
    await get(healthzPort, '/healthz');
    health.setNodeDeleting(true);
    await get(healthzPort, '/healthz');
    await get(healthzPort, '/livez');

    const m = await get(metricsPort, '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('kubeproxy_proxy_healthz_total{code="200"} 1');
    expect(m.body).toContain('kubeproxy_proxy_healthz_total{code="503"} 1');
    expect(m.body).toContain('kubeproxy_proxy_livez_total{code="200"} 1');

    expect(await get(metricsPort, '/healthz')).toMatchObject({ status: 200, body: 'ok' });
    expect(await get(metricsPort, '/proxyMode')).toMatchObject({ status: 200, body: 'nftables' });
    expect((await get(metricsPort, '/livez')).status).toBe(404);
    expect((await get(healthzPort, '/metrics')).status).toBe(404);
    expect((await get(healthzPort, '/constructor')).status).toBe(404);
  });

  it('serves everything from one server when both addresses are the same', async () => {
    const port = await freePort();
    const addr = { host: '127.0.0.1', port };
    const { servers, health } = await start({ healthz: addr, metrics: addr });
    expect(servers.running.map((s) => s.roles)).toEqual([['healthz', 'metrics']]);
    health.setNodeDeleting(true);
    expect((await get(port, '/healthz')).status).toBe(503);
    expect((await get(port, '/metrics')).body).toContain('kubeproxy_proxy_healthz_total');
  });

  it('starts nothing for disabled addresses', async () => {
    const { servers } = await start({ healthz: null, metrics: null });
    expect(servers.running).toEqual([]);
  });

  it('says which address and which server when a port is taken, and leaves nothing open', async () => {
    const held = await occupy();
    cleanups.push(held.close);
    await expect(start({ healthz: { host: '127.0.0.1', port: held.port } })).rejects.toThrow(
      new ListenError(`127.0.0.1:${held.port}`, 'healthz', 'EADDRINUSE'),
    );

    const healthzPort = await freePort();
    const err = await start({ healthz: { host: '127.0.0.1', port: healthzPort }, metrics: { host: '127.0.0.1', port: held.port } })
      .then(() => null, (e: unknown) => e);
    expect((err as Error).message).toBe(`cannot listen on 127.0.0.1:${held.port} for metrics: EADDRINUSE`);
    expect(await connectError(healthzPort)).toBe('ECONNREFUSED');
  });

  it('closes its servers', async () => {
    const { servers, healthzPort, metricsPort } = await start();
    await servers.close();
    expect(await connectError(healthzPort)).toBe('ECONNREFUSED');
    expect(await connectError(metricsPort)).toBe('ECONNREFUSED');
  });
});
