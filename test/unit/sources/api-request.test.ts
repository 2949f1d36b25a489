import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiStatusError, apiRequest } from '../../../src/sources/api-request.js';
import { DirectConnection } from '../../../src/sources/kube/connection.js';

let server: http.Server | undefined;
let conn: DirectConnection | undefined;

afterEach(async () => {
  conn?.close();
  conn = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A server answering every request with `handler`, and a kubeconfig that points at it. */
async function serve(handler: http.RequestListener): Promise<DirectConnection> {
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  conn = new DirectConnection({
    origin: 'test',
    cluster: { server: `http://127.0.0.1:${port}`, insecureSkipTlsVerify: true },
    user: { header: { kind: 'token', token: 'secret-token' } },
  });
  return conn;
}

describe('apiRequest', () => {
  it('sends the credentials, asks for gzip, and returns a compressed list as its text', async () => {
    const list = JSON.stringify({ kind: 'ServiceList', metadata: { resourceVersion: '7' }, items: Array.from({ length: 2000 }, (_, i) => ({ metadata: { name: `s${i}` } })) });
    let seen: http.IncomingHttpHeaders = {};
    const kc = await serve((req, res) => {
      seen = req.headers;
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(list));
    });
    const text = await apiRequest(kc, { method: 'GET', path: '/api/v1/services?labelSelector=a' });
    expect(text).toBe(list);
    expect(seen.authorization).toBe('Bearer secret-token');
    expect(seen['accept-encoding']).toContain('gzip');
  });

  it("rejects a non-2xx answer with its status and the Status object's message", async () => {
    const kc = await serve((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 410, message: 'too old resource version' }));
    });
    const err = await apiRequest(kc, { method: 'GET', path: '/api/v1/services' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiStatusError);
    expect((err as ApiStatusError).statusCode).toBe(410);
    expect((err as Error).message).toContain('too old resource version');
  });

  it('refuses a body over maxBytes, compressed or not', async () => {
    const kc = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(gzipSync(Buffer.alloc(1 << 20, 'a')));
    });
    await expect(apiRequest(kc, { method: 'GET', path: '/x', maxBytes: 1024 })).rejects.toThrow(/response over 1024 bytes/);
  });
});
