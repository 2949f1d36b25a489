// HTTP and port helpers for runtime tests. Everything stays on 127.0.0.1.
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:net';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The request went over a connection an earlier request opened. */
  reusedSocket: boolean;
}

export function get(port: number, path = '/', agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The error code of a request that fails to connect, or "connected". */
export async function connectError(port: number): Promise<string> {
  try {
    await get(port);
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Holds a port on 127.0.0.1 until closed. */
export async function occupy(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const s: Server = createServer();
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', resolve); });
  return {
    port: (s.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}
