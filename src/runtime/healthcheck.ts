// Per-service health check servers for healthCheckNodePort (Services of type
// LoadBalancer with externalTrafficPolicy: Local), as kube-proxy serves them:
// a cloud load balancer probes every node and sends traffic only to nodes that
// answer 200, which are the nodes with a local endpoint.
import { createServer, type Server } from 'node:http';
import type { HealthCheck } from '../planner/types.js';
import { formatBindAddress } from '../config/values.js';
import { closeServer, listen, ListenError, sendJSON } from './http.js';
import type { Logger } from '../util/log.js';

export interface HealthCheckError {
  /** "namespace/name" */
  service: string;
  port: number;
  /** Where the listen failed, "IP:port" or ":port". */
  address: string;
  message: string;
}

export interface ServiceHealthServersOptions {
  /** Node addresses to listen on (the NodePort addresses); empty or absent: every address. */
  addresses?: readonly string[];
  /**
   * Asked at every request, so that a proxy whose syncs stall turns its checks to 503
   * without waiting for a sync that will not come. Combined with sync()'s argument.
   */
  proxyHealth?: { isHealthy(): boolean };
  logger?: Logger;
}

interface Instance {
  namespace: string;
  name: string;
  port: number;
  /** Updated in place by every sync: no listener churn when only the count moves. */
  localEndpoints: number;
  servers: Server[];
}

export class ServiceHealthServers {
  private readonly addresses: readonly string[];
  private readonly proxyHealth: { isHealthy(): boolean } | undefined;
  private readonly logger: Logger | undefined;
  private readonly services = new Map<string, Instance>();
  private proxyHealthy = true;
  /** sync() calls run one after another even if a caller does not wait. */
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(opts: ServiceHealthServersOptions = {}) {
    this.addresses = opts.addresses && opts.addresses.length > 0 ? [...opts.addresses] : [''];
    this.proxyHealth = opts.proxyHealth;
    this.logger = opts.logger;
  }

  /**
   * Makes the listeners match `checks` (by "namespace/name"): opens the new ones,
   * closes those of services that went away or moved port, and updates the local
   * endpoint counts of the rest. Returns the ports that could not be opened; those
   * services are tried again on the next sync.
   */
  sync(checks: ReadonlyMap<string, HealthCheck>, proxyHealthy: boolean): Promise<HealthCheckError[]> {
    const next = this.tail.then(() => this.apply(checks, proxyHealthy));
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Ports being served, by "namespace/name". */
  get ports(): ReadonlyMap<string, number> {
    return new Map([...this.services].map(([key, inst]) => [key, inst.port]));
  }

  /** Closes every listener; later syncs do nothing. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.tail;
    const all = [...this.services.values()];
    this.services.clear();
    await Promise.all(all.map((inst) => this.closeInstance(inst)));
  }

  private async apply(checks: ReadonlyMap<string, HealthCheck>, proxyHealthy: boolean): Promise<HealthCheckError[]> {
    if (this.disposed) return [];
    this.proxyHealthy = proxyHealthy;
    // Close first: a port that moves from one service to another in the same sync must be free.
    const closing: Promise<void>[] = [];
    for (const [key, inst] of this.services) {
      const want = checks.get(key);
      if (want && want.port === inst.port) continue;
      this.services.delete(key);
      this.logger?.debug({ service: key, port: inst.port }, 'closing health check');
      closing.push(this.closeInstance(inst));
    }
    await Promise.all(closing);

    const opening: Promise<HealthCheckError[]>[] = [];
    for (const [key, hc] of checks) {
      const inst = this.services.get(key);
      if (inst) {
        inst.localEndpoints = hc.localEndpoints;
        continue;
      }
      opening.push(this.open(key, hc));
    }
    return (await Promise.all(opening)).flat();
  }

  private async open(key: string, hc: HealthCheck): Promise<HealthCheckError[]> {
    const inst: Instance = { namespace: hc.namespace, name: hc.name, port: hc.port, localEndpoints: hc.localEndpoints, servers: [] };
    if (!Number.isInteger(hc.port) || hc.port < 1 || hc.port > 65535) {
      return [{ service: key, port: hc.port, address: '', message: `invalid health check port ${hc.port} for ${key}` }];
    }
    const results = await Promise.allSettled(this.addresses.map(async (host) => {
      const server = this.createServer(inst);
      inst.servers.push(server);
      await listen(server, { host, port: hc.port }, `health check of ${key}`);
    }));
    const errors: HealthCheckError[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const address = formatBindAddress({ host: this.addresses[i]!, port: hc.port });
      const message = r.reason instanceof ListenError ? r.reason.message : `cannot listen on ${address} for health check of ${key}: ${String(r.reason)}`;
      errors.push({ service: key, port: hc.port, address, message });
    });
    if (errors.length > 0) {
      // All or nothing, as kube-proxy: a half-open service is retried whole on the next sync.
      await this.closeInstance(inst);
      for (const e of errors) this.logger?.warn({ service: key, port: hc.port, address: e.address }, e.message);
      return errors;
    }
    if (this.disposed) {
      await this.closeInstance(inst);
      return [];
    }
    this.services.set(key, inst);
    this.logger?.debug({ service: key, port: hc.port }, 'opened health check');
    return [];
  }

  private createServer(inst: Instance): Server {
    // kube-proxy answers any method and path.
    return createServer((_req, res) => {
      const healthy = this.proxyHealthy && (this.proxyHealth?.isHealthy() ?? true);
      const count = inst.localEndpoints;
      sendJSON(res, count > 0 && healthy ? 200 : 503, {
        service: { namespace: inst.namespace, name: inst.name },
        localEndpoints: count,
        serviceProxyHealthy: healthy,
      }, { 'X-Load-Balancing-Endpoint-Weight': String(count) });
    });
  }

  private async closeInstance(inst: Instance): Promise<void> {
    await Promise.all(inst.servers.map(closeServer));
    inst.servers = [];
  }
}
