import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../../src/planner/types.js';
import { ServiceHealthServers } from '../../../src/runtime/healthcheck.js';
import { connectError, freePort, get, occupy } from './net-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function servers(proxyHealth?: { isHealthy(): boolean }): ServiceHealthServers {
  const s = new ServiceHealthServers({ addresses: ['127.0.0.1'], ...(proxyHealth ? { proxyHealth } : {}) });
  cleanups.push(() => s.dispose());
  return s;
}

function checks(...list: HealthCheck[]): Map<string, HealthCheck> {
  return new Map(list.map((hc) => [`${hc.namespace}/${hc.name}`, hc]));
}

describe('ServiceHealthServers', () => {
  it('answers 200 with kube-proxy\'s body and headers when the service has local endpoints', async () => {
    const port = await freePort();
    const s = servers();
    expect(await s.sync(checks({ namespace: 'shop', name: 'web', port, localEndpoints: 2 }), true)).toEqual([]);
    for (const path of ['/', '/healthz', '/anything?x=1']) {
      const r = await get(port, path);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['x-load-balancing-endpoint-weight']).toBe('2');
      expect(JSON.parse(r.body)).toEqual({ service: { namespace: 'shop', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });
    }
  });

  it('answers 503 without local endpoints or when the proxy is unhealthy', async () => {
    const port = await freePort();
    let proxyOk = true;
    const s = servers({ isHealthy: () => proxyOk });
    await s.sync(checks({ namespace: 'shop', name: 'web', port, localEndpoints: 0 }), true);
    let r = await get(port);
    expect(r.status).toBe(503);
    expect(r.headers['x-load-balancing-endpoint-weight']).toBe('0');

    await s.sync(checks({ namespace: 'shop', name: 'web', port, localEndpoints: 3 }), false);
    r = await get(port);
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ localEndpoints: 3, serviceProxyHealthy: false });

    await s.sync(checks({ namespace: 'shop', name: 'web', port, localEndpoints: 3 }), true);
    expect((await get(port)).status).toBe(200);
    // A proxy that stops syncing fails its checks without another sync.
    proxyOk = false;
    expect((await get(port)).status).toBe(503);
  });

  it('updates counts in place, keeping the listener and its connections', async () => {
    const port = await freePort();
    const s = servers();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    await s.sync(checks({ namespace: 'a', name: 'lb', port, localEndpoints: 1 }), true);
    expect((await get(port, '/', agent)).status).toBe(200);

    await s.sync(checks({ namespace: 'a', name: 'lb', port, localEndpoints: 0 }), true);
    const r = await get(port, '/', agent);
    expect(r.status).toBe(503);
    expect(r.reusedSocket).toBe(true);
  });

  it('closes the listeners of services that went away, and moves a port between services', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const s = servers();
    await s.sync(checks(
      { namespace: 'a', name: 'one', port: p1, localEndpoints: 1 },
      { namespace: 'a', name: 'two', port: p2, localEndpoints: 1 },
    ), true);
    expect([...s.ports]).toEqual([['a/one', p1], ['a/two', p2]]);

    expect(await s.sync(checks({ namespace: 'a', name: 'three', port: p1, localEndpoints: 4 }), true)).toEqual([]);
    expect(await connectError(p2)).toBe('ECONNREFUSED');
    expect(JSON.parse((await get(p1)).body).service).toEqual({ namespace: 'a', name: 'three' });
    expect([...s.ports]).toEqual([['a/three', p1]]);
  });

  it('reports a port it cannot open, naming service and port, and retries it on the next sync', async () => {
    const held = await occupy();
    const s = servers();
    const hc = checks({ namespace: 'shop', name: 'web', port: held.port, localEndpoints: 1 });
    const errors = await s.sync(hc, true);
    expect(errors).toEqual([{
      service: 'shop/web',
      port: held.port,
      address: `127.0.0.1:${held.port}`,
      message: `cannot listen on 127.0.0.1:${held.port} for health check of shop/web: EADDRINUSE`,
    }]);
    expect(s.ports.size).toBe(0);

    await held.close();
    expect(await s.sync(hc, true)).toEqual([]);
    expect((await get(held.port)).status).toBe(200);
  });

  it('closes everything on dispose and ignores later syncs', async () => {
    const port = await freePort();
    const s = new ServiceHealthServers({ addresses: ['127.0.0.1'] });
    await s.sync(checks({ namespace: 'a', name: 'lb', port, localEndpoints: 1 }), true);
    await s.dispose();
    expect(await connectError(port)).toBe('ECONNREFUSED');
    await s.sync(checks({ namespace: 'a', name: 'lb', port, localEndpoints: 1 }), true);
    expect(await connectError(port)).toBe('ECONNREFUSED');
  });
});
