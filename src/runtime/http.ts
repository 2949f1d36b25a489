// The proxy's HTTP endpoints, as kube-proxy serves them:
//   healthz address (default 0.0.0.0:10256): /healthz, /livez
//   metrics address (default 127.0.0.1:10249): /metrics, /healthz (a plain "ok"), /proxyMode
// One server per bind address; when both addresses are the same, one server serves all.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyMode } from '../util/modes.js';
import { formatBindAddress, type BindAddress } from '../config/values.js';
import { realClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { Metrics } from './metrics.js';

/** Go's zero time, which kube-proxy prints for "never". */
const NEVER = '0001-01-01T00:00:00.000Z';

export interface HealthStatus {
  /** No change has waited longer than the health timeout. */
  healthy: boolean;
  /** Epoch ms of the last successful sync, null before the first. */
  lastUpdated: number | null;
  currentTime: number;
  /** False while the node is being deleted (or tainted for deletion). */
  nodeEligible: boolean;
}

/** kube-proxy: healthTimeout = 2 * syncPeriod. */
export function healthTimeoutFor(syncPeriodMs: number): number {
  return 2 * syncPeriodMs;
}

/**
 * kube-proxy's ProxierHealthServer state: healthy unless a change has been waiting
 * for a successful sync longer than healthTimeout. Healthy while starting up.
 */
export class ProxyHealth {
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private lastUpdated: number | null = null;
  private oldestPending: number | null = null;
  private nodeDeleting = false;

  constructor(opts: { healthTimeoutMs: number; clock?: Clock }) {
    this.timeoutMs = opts.healthTimeoutMs;
    this.clock = opts.clock ?? realClock;
  }

  /** A change arrived that the datapath does not have yet. */
  queued(): void {
    this.oldestPending ??= this.clock.now();
  }

  /** A sync succeeded: the datapath has every change queued before it started. */
  updated(): void {
    this.oldestPending = null;
    this.lastUpdated = this.clock.now();
  }

  /**
   * A sync failed. kube-proxy only counts queued changes, so a periodic sync that
   * keeps failing with nothing queued would look healthy forever; counting the
   * failure as pending work makes a persistent failure fail /healthz after the timeout.
   */
  syncFailed(): void {
    this.queued();
  }

  /** kube-proxy: a node with a deletionTimestamp or the ToBeDeletedByClusterAutoscaler taint. */
  setNodeDeleting(deleting: boolean): void {
    this.nodeDeleting = deleting;
  }

  /** The proxy's own health, ignoring the node (what /livez and service health checks use). */
  isHealthy(): boolean {
    return this.status().healthy;
  }

  status(): HealthStatus {
    const now = this.clock.now();
    const healthy = this.oldestPending === null || now - this.oldestPending < this.timeoutMs;
    return { healthy, lastUpdated: this.lastUpdated, currentTime: now, nodeEligible: !this.nodeDeleting };
  }
}

export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(readonly address: string, readonly purpose: string, readonly code: string, options?: { cause?: unknown }) {
    super(`cannot listen on ${address} for ${purpose}: ${code}`, options);
  }
}

/** Starts listening; resolves with the bound address, rejects with a ListenError naming address and purpose. */
export function listen(server: Server, addr: BindAddress, purpose: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(new ListenError(formatBindAddress(addr), purpose, err.code ?? err.message, { cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if (addr.host === '') server.listen(addr.port);
    else server.listen(addr.port, addr.host);
  });
}

/** Closes a server and the connections it holds (keep-alive clients would hold close() open). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', ...headers });
  res.end(JSON.stringify(body));
}

function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'X-Content-Type-Options': 'nosniff' });
  res.end(text);
}

/**
 * Every endpoint here only reports. kube-proxy's own healthz handlers answer
 * any method (they never look at it); here any other method gets 405, so that
 * a POST or DELETE is never mistaken for something that acted.
 */
const READ_ONLY_METHODS = ['GET', 'HEAD'];

function isReadOnly(method: string | undefined): boolean {
  return method !== undefined && READ_ONLY_METHODS.includes(method);
}

function refuseMethod(res: ServerResponse): void {
  res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', Allow: READ_ONLY_METHODS.join(', ') });
  res.end('405 method not allowed\n');
}

function iso(ms: number | null): string {
  return ms === null ? NEVER : new Date(ms).toISOString();
}

/**
 * /healthz (nodeEligible counts) and /livez (it does not). As in kube-proxy, a
 * healthy answer reports lastUpdated as the current time: older releases did.
 */
function healthHandler(health: ProxyHealth, metrics: Metrics, withNode: boolean): Handler {
  return (_req, res) => {
    const s = health.status();
    const healthy = s.healthy && (!withNode || s.nodeEligible);
    const status = healthy ? 200 : 503;
    if (withNode) metrics.countHealthz(status);
    else metrics.countLivez(status);
    const lastUpdated = iso(healthy ? s.currentTime : s.lastUpdated);
    const body = withNode
      ? { lastUpdated, currentTime: iso(s.currentTime), nodeEligible: s.nodeEligible }
      : { lastUpdated, currentTime: iso(s.currentTime) };
    sendJSON(res, status, body);
  };
}

export interface HttpServersOptions {
  /** null: no healthz server. */
  healthz: BindAddress | null;
  /** null: no metrics server. */
  metrics: BindAddress | null;
  health: ProxyHealth;
  metricsRegistry: Metrics;
  mode: ProxyMode;
  logger?: Logger;
  /**
   * A port that cannot be bound is retried this often, as kube-proxy does every
   * 5 s unless --bind-address-hard-fail; absent: start() rejects with a ListenError.
   */
  retryListenMs?: number;
}

export type ServerRole = 'healthz' | 'metrics';

export interface RunningServer {
  /** What it serves: both roles when the two bind addresses are the same. */
  roles: ServerRole[];
  /** The address actually bound (port 0 resolved). */
  address: AddressInfo;
}

/** The healthz and metrics servers, started together and closed together. */
export class HttpServers {
  /** Servers still waiting for their port (retryListenMs). */
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;

  private constructor(private readonly servers: { server: Server; info: RunningServer }[]) {}

  /** Listens again every `everyMs` until it works or close(); the server joins `servers` once bound. */
  private retryListen(server: Server, addr: BindAddress, roles: ServerRole[], everyMs: number, logger?: Logger): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (this.closed) return;
      listen(server, addr, roles.join(' and ')).then((address) => {
        if (this.closed) { void closeServer(server); return; }
        this.servers.push({ server, info: { roles, address } });
        logger?.info({ address: formatBindAddress({ host: address.address, port: address.port }), serves: roles }, 'serving HTTP');
      }, () => this.retryListen(server, addr, roles, everyMs, logger));
    }, everyMs);
    this.retries.add(timer);
  }

  static async start(opts: HttpServersOptions): Promise<HttpServers> {
    const { health, metricsRegistry: metrics, logger } = opts;
    const healthzRoutes: [string, Handler][] = [
      ['/healthz', healthHandler(health, metrics, true)],
      ['/livez', healthHandler(health, metrics, false)],
    ];
    const metricsRoutes: [string, Handler][] = [
      ['/metrics', async (_req, res) => {
        try {
          sendText(res, 200, await metrics.text(), metrics.contentType);
        } catch (err) {
          logger?.error({ err }, 'cannot render metrics');
          sendText(res, 500, 'cannot render metrics\n');
        }
      }],
      // kube-proxy's metrics server answers /healthz with a plain liveness ping.
      ['/healthz', (_req, res) => sendText(res, 200, 'ok')],
      ['/proxyMode', (_req, res) => sendText(res, 200, opts.mode)],
    ];

    const plan: { addr: BindAddress; roles: ServerRole[]; routes: Map<string, Handler> }[] = [];
    if (opts.healthz) plan.push({ addr: opts.healthz, roles: ['healthz'], routes: new Map(healthzRoutes) });
    if (opts.metrics) {
      const same = opts.healthz !== null && opts.healthz.port !== 0
        && formatBindAddress(opts.healthz) === formatBindAddress(opts.metrics);
      // One server for both; the proxy-health /healthz wins over the ping.
      if (same) plan[0] = { addr: opts.healthz!, roles: ['healthz', 'metrics'], routes: new Map([...metricsRoutes, ...healthzRoutes]) };
      else plan.push({ addr: opts.metrics, roles: ['metrics'], routes: new Map(metricsRoutes) });
    }

    const started: { server: Server; info: RunningServer }[] = [];
    const waiting: { server: Server; addr: BindAddress; roles: ServerRole[] }[] = [];
    try {
      for (const { addr, roles, routes } of plan) {
        const server = createServer((req, res) => {
          const path = (req.url ?? '/').split('?')[0]!;
          const handler = routes.get(path);
          if (!handler) { sendText(res, 404, '404 page not found\n'); return; }
          if (!isReadOnly(req.method)) { refuseMethod(res); return; }
          Promise.resolve(handler(req, res)).catch((err: unknown) => {
            logger?.error({ err, path }, 'HTTP handler failed');
            if (!res.headersSent) sendText(res, 500, 'internal error\n');
            else res.destroy();
          });
        });
        let address: AddressInfo;
        try {
          address = await listen(server, addr, roles.join(' and '));
        } catch (err) {
          if (opts.retryListenMs === undefined) throw err;
          logger?.error({ err }, `${(err as Error).message}: retrying every ${opts.retryListenMs / 1000} s (--bind-address-hard-fail exits instead)`);
          waiting.push({ server, addr, roles });
          continue;
        }
        started.push({ server, info: { roles, address } });
        logger?.info({ address: formatBindAddress({ host: address.address, port: address.port }), serves: roles }, 'serving HTTP');
      }
    } catch (err) {
      await Promise.all(started.map((s) => closeServer(s.server)));
      throw err;
    }
    const servers = new HttpServers(started);
    for (const w of waiting) servers.retryListen(w.server, w.addr, w.roles, opts.retryListenMs!, logger);
    return servers;
  }

  get running(): readonly RunningServer[] {
    return this.servers.map((s) => s.info);
  }

  /** The bound address of the server with this role, undefined when it is disabled. */
  address(role: ServerRole): AddressInfo | undefined {
    return this.servers.find((s) => s.info.roles.includes(role))?.info.address;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.all(this.servers.map((s) => closeServer(s.server)));
  }
}
