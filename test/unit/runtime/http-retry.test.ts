// A health or metrics port held by someone else (kube-proxy during a handover)
// does not stop the proxy: as kube-proxy, it logs the failure and binds again every
// few seconds until the port is free; with --bind-address-hard-fail start fails.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpServers, ProxyHealth } from '../../../src/runtime/http.js';
import { Metrics } from '../../../src/runtime/metrics.js';
import { createLogger } from '../../../src/util/log.js';
import { connectError, get, occupy } from './net-helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

function capture() {
  const lines: { level: number; msg: string; err?: { message: string; stack?: string } }[] = [];
  const out = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return { lines, log: createLogger('info', 'json', out as unknown as Parameters<typeof createLogger>[2]) };
}

async function start(port: number, retryListenMs: number | undefined, log: ReturnType<typeof createLogger>) {
  const servers = await HttpServers.start({
    healthz: { host: '127.0.0.1', port }, metrics: null, mode: 'bpf', logger: log, retryListenMs,
    health: new ProxyHealth({ healthTimeoutMs: 60_000 }), metricsRegistry: new Metrics({ processMetrics: false }),
  });
  cleanups.push(() => servers.close());
  return servers;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

describe('HttpServers with a port in use', () => {
  it('logs the failure with its reason, retries, and serves once the port is free', async () => {
    const held = await occupy();
    const { lines, log } = capture();
    const servers = await start(held.port, 50, log);
    expect(servers.address('healthz')).toBeUndefined();
    const failure = lines.find((l) => l.level === 50)!;
    expect(failure.msg).toBe(`cannot listen on 127.0.0.1:${held.port} for healthz: EADDRINUSE: retrying every 0.05 s (--bind-address-hard-fail exits instead)`);
    expect(failure.err?.stack).toMatch(/ListenError/);

    await new Promise((r) => setTimeout(r, 120));
    expect(servers.address('healthz')).toBeUndefined();
    await held.close();
    expect(await until(() => servers.address('healthz') !== undefined, 2000)).toBe(true);
    expect((await get(held.port, '/livez')).status).toBe(200);
    // One error line at the start, not one per retry.
    expect(lines.filter((l) => l.level >= 40)).toHaveLength(1);
  });

  it('stops retrying when closed', async () => {
    const held = await occupy();
    cleanups.push(held.close);
    const { log } = capture();
    const servers = await start(held.port, 20, log);
    await servers.close();
    await held.close();
    await new Promise((r) => setTimeout(r, 80));
    expect(servers.address('healthz')).toBeUndefined();
    expect(await connectError(held.port)).toBe('ECONNREFUSED');
  });

  it('with hard fail (no retry), start fails naming the address', async () => {
    const held = await occupy();
    cleanups.push(held.close);
    const { log } = capture();
    await expect(start(held.port, undefined, log)).rejects.toThrow(`cannot listen on 127.0.0.1:${held.port} for healthz: EADDRINUSE`);
  });
});
