// Where the API server is and how to authenticate to it: what a kubeconfig
// file or the in-cluster environment resolves to, before any connection.

/** The cluster half: the server and how its certificate is checked. */
export interface ClusterTarget {
  /** Base URL, e.g. https://10.96.0.1:443 (no trailing slash). */
  server: string;
  /** PEM bundle the server's certificate must chain to; none: the system's CAs. */
  ca?: Buffer;
  insecureSkipTlsVerify: boolean;
  /** The name checked against the server's certificate, when it differs from the URL's host. */
  tlsServerName?: string;
}

/** The Authorization header of every request. */
export type HeaderAuth =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  /** A token file re-read as it rotates (a projected service account token, kubeadm's tokenFile). */
  | { kind: 'token-file'; path: string }
  | { kind: 'basic'; username: string; password: string };

/** The user half. */
export interface UserAuth {
  header: HeaderAuth;
  /** A TLS client certificate and its key (PEM), alongside any header. */
  clientCert?: { cert: Buffer; key: Buffer };
}

export interface KubeTarget {
  /** Where it came from, for the log line and error messages: "kubeconfig /etc/x (context c, user u)". */
  origin: string;
  cluster: ClusterTarget;
  user: UserAuth;
}

/** A configuration we leave to client-node: credentials from a plugin we do not run, or a proxy we do not speak. */
export interface PluginUser {
  origin: string;
  /** `exec`, `auth-provider` (gcp, oidc, azure...) or `proxy-url`. */
  plugin: 'exec' | 'auth-provider' | 'proxy-url';
}

export class KubeconfigError extends Error {}
