// The fallback for what we do not do ourselves: a kubeconfig user with an
// exec plugin (aws, gke-gcloud-auth-plugin, kubelogin) or an auth-provider,
// or a cluster behind a proxy-url. client-node runs the plugin and caches
// what it returns, or makes the proxy agent; it is imported only here, only
// for such a configuration (importing it costs about 64-73 MB of RSS:
// docs/findings.md). Requests use our keep-alive agent, except through a
// proxy, where client-node's proxy agent is the one that knows the way.
import http from 'node:http';
import https from 'node:https';
import type * as K8s from '@kubernetes/client-node';
import type { ApiConnection } from './connection.js';
import type { PluginUser } from './target.js';

export class PluginConnection implements ApiConnection {
  readonly description: string;
  private readonly agent: http.Agent;
  private readonly viaProxy: boolean;

  private constructor(private readonly kc: K8s.KubeConfig, readonly server: string, user: PluginUser) {
    this.viaProxy = user.plugin === 'proxy-url';
    this.description = `${user.origin}: ${this.viaProxy ? 'the proxy-url' : `${user.plugin} credentials`} through @kubernetes/client-node`;
    this.agent = server.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
  }

  static async load(path: string, user: PluginUser, master: string | undefined): Promise<PluginConnection> {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`cannot load kubeconfig ${path}: no cluster for current-context "${kc.getCurrentContext()}"`);
    return new PluginConnection(kc, (master ?? cluster.server).replace(/\/+$/, ''), user);
  }

  async requestOptions(): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { headers: {} };
    // Sets TLS options, the Authorization header (running the plugin when its
    // credential expired) and an agent of its own per call, which we replace
    // unless it is the proxy's.
    await this.kc.applyToHTTPSOptions(opts);
    return this.viaProxy ? opts : { ...opts, agent: this.agent };
  }

  close(): void {
    this.agent.destroy();
  }
}
