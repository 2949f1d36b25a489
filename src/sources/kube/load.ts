// Which configuration the proxy uses, in kube-proxy's order: --kubeconfig
// (with --master overriding its server), else the in-cluster configuration
// (again with --master over it), else --master alone (no credentials, as
// kube-proxy's --master without a kubeconfig). kube-proxy itself never reads
// $KUBECONFIG; we read it only where we would otherwise refuse to start (no
// flag and not in a pod), for standalone runs. One log line says which path
// was chosen and how requests authenticate.
import type { Logger } from '../../util/log.js';
import { DirectConnection, type ApiConnection } from './connection.js';
import { loadInCluster, runsInCluster, SERVICE_ACCOUNT_DIR } from './in-cluster.js';
import { loadKubeconfigFile } from './kubeconfig.js';
import { PluginConnection } from './plugin-connection.js';
import { KubeconfigError, type KubeTarget } from './target.js';

export interface ConnectOptions {
  kubeconfig?: string | undefined;
  master?: string | undefined;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** The service account directory (tests). */
  serviceAccountDir?: string;
}

export async function connect(opts: ConnectOptions): Promise<ApiConnection> {
  const env = opts.env ?? process.env;
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const master = opts.master?.replace(/\/+$/, '') || undefined;
  const kubeconfig = opts.kubeconfig || (runsInCluster(env, dir) || master ? undefined : firstKubeconfigOf(env.KUBECONFIG));
  let conn: ApiConnection;
  if (kubeconfig) {
    const resolved = loadKubeconfigFile(kubeconfig);
    conn = 'plugin' in resolved ? await PluginConnection.load(kubeconfig, resolved, master) : direct(resolved, master);
  } else if (runsInCluster(env, dir)) {
    conn = direct(loadInCluster(env, dir), master);
  } else if (master) {
    conn = direct({ origin: `--master ${master}`, cluster: { server: master, insecureSkipTlsVerify: master.startsWith('http:') }, user: { header: { kind: 'none' } } }, undefined);
  } else {
    throw new KubeconfigError(
      'no kubeconfig given and not running in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset ' +
        `or no service account token at ${dir}/token); pass --kubeconfig or --master`,
    );
  }
  opts.log.info({ server: conn.server }, `Kubernetes API: ${conn.description}`);
  return conn;
}

function direct(target: KubeTarget, master: string | undefined): DirectConnection {
  const t = master ? { ...target, origin: `${target.origin}, server from --master`, cluster: { ...target.cluster, server: master } } : target;
  // Fails now on what would otherwise fail on every request, retried forever.
  if (t.cluster.server.startsWith('http:') && !t.cluster.insecureSkipTlsVerify) {
    throw new KubeconfigError(`${t.origin}: the server uses plain http (${t.cluster.server}) without insecure-skip-tls-verify`);
  }
  return new DirectConnection(t);
}

/** $KUBECONFIG is a list of files (client-go merges them); we take the first one named. */
function firstKubeconfigOf(value: string | undefined): string | undefined {
  return value?.split(':').find((p) => p !== '');
}
