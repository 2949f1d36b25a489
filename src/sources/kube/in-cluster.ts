// The in-cluster configuration, as client-go's rest.InClusterConfig builds it:
// the API server's Service from KUBERNETES_SERVICE_HOST/PORT, the pod's
// service account token (projected and rotated by the kubelet, so re-read:
// token-file.ts) and the cluster CA mounted beside it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeconfigError, type KubeTarget } from './target.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterEnv {
  KUBERNETES_SERVICE_HOST?: string | undefined;
  KUBERNETES_SERVICE_PORT?: string | undefined;
}

/** Whether this process runs in a pod with a service account (the environment and the token are there). */
export function runsInCluster(env: InClusterEnv = process.env, dir = SERVICE_ACCOUNT_DIR): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(join(dir, 'token')));
}

/** The in-cluster target; throws KubeconfigError when the CA is unreadable. */
export function loadInCluster(env: InClusterEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeTarget & { namespace?: string } {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  const caPath = join(dir, 'ca.crt');
  let ca: Buffer;
  try {
    ca = readFileSync(caPath);
  } catch (err) {
    throw new KubeconfigError(`in-cluster configuration: cannot read the cluster CA ${caPath}: ${(err as Error).message}`, { cause: err });
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    // optional: it only names where the proxy runs, in the log line
  }
  return {
    origin: `in-cluster configuration (service account in ${dir}${namespace ? `, namespace ${namespace}` : ''})`,
    cluster: { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca, insecureSkipTlsVerify: false },
    user: { header: { kind: 'token-file', path: join(dir, 'token') } },
    ...(namespace && { namespace }),
  };
}
