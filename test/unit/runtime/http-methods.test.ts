// The health and metrics servers only report: GET and HEAD are answered,
// every other method is refused with 405 and an Allow header (issue 12: a
// POST or DELETE to /healthz used to get 200, as if it had done something).
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpServers, ProxyHealth, healthTimeoutFor } from '../../../src/runtime/http.js';
import { Metrics } from '../../../src/runtime/metrics.js';
import { FakeClock } from '../../../src/util/clock.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

interface Answer { status: number; allow: string | undefined; body: string }

function send(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' || method === 'PUT' ? '{}' : undefined);
  });
}

async function start(sameAddress = false) {
  const health = new ProxyHealth({ healthTimeoutMs: healthTimeoutFor(30_000), clock: new FakeClock() });
  const metrics = new Metrics({ processMetrics: false });
  const servers = await HttpServers.start({
    healthz: { host: '127.0.0.1', port: 0 },
    metrics: sameAddress ? null : { host: '127.0.0.1', port: 0 },
    health, metricsRegistry: metrics, mode: 'bpf',
  });
  cleanups.push(() => servers.close());
  return { metrics, healthz: servers.address('healthz')!.port, metricsPort: servers.address('metrics')?.port };
}

describe('HTTP methods', () => {
  it('refuses every method but GET and HEAD with 405 and Allow: GET, HEAD, on every endpoint', async () => {
    const { healthz, metricsPort } = await start();
    const endpoints: [number, string][] = [[healthz, '/healthz'], [healthz, '/livez'], [metricsPort!, '/metrics'], [metricsPort!, '/healthz'], [metricsPort!, '/proxyMode']];
    for (const [port, path] of endpoints) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const r = await send(port, method, path);
        expect({ path, method, status: r.status, allow: r.allow }).toEqual({ path, method, status: 405, allow: 'GET, HEAD' });
      }
      expect((await send(port, 'GET', path)).status).toBe(200);
      const head = await send(port, 'HEAD', path);
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
    }
  });

  it('a refused method does not count as a health check, and an unknown path stays 404 whatever the method', async () => {
    const { healthz, metrics } = await start(true);
    await send(healthz, 'GET', '/healthz');
    await send(healthz, 'POST', '/healthz');
    await send(healthz, 'DELETE', '/healthz');
    expect(await metrics.text()).toMatch(/kubeproxy_proxy_healthz_total\{code="200"\} 1\n/);
    expect((await send(healthz, 'POST', '/nowhere')).status).toBe(404);
  });
});
