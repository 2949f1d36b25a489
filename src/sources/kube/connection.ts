// A connection to the API server: its URL, one keep-alive agent (the lists,
// the three watches and the Event requests reuse its sockets) and what each
// request carries to authenticate. Two kinds: ours (DirectConnection, for
// every credential a kubeconfig or the in-cluster config holds as data) and
// client-node's (plugin-connection.ts, for exec plugins and auth providers).
import http from 'node:http';
import https from 'node:https';
import type { KubeTarget } from './target.js';
import { TokenFile } from './token-file.js';

export interface ApiConnection {
  /** The server's base URL, without a trailing slash. */
  readonly server: string;
  /** Where the configuration came from and how requests authenticate, for one log line. */
  readonly description: string;
  /** Options for one request (agent, TLS, Authorization); the caller adds method, headers and signal. */
  requestOptions(): Promise<https.RequestOptions>;
  /** Closes idle keep-alive sockets; requests still open are the caller's to abort. */
  close(): void;
}

export class DirectConnection implements ApiConnection {
  readonly server: string;
  readonly description: string;
  private readonly agent: http.Agent;
  private readonly authorization: () => string | undefined;

  constructor(target: KubeTarget) {
    this.server = target.cluster.server;
    const { cluster, user } = target;
    const header = user.header;
    this.description = `${target.origin}: ${header.kind === 'none' ? 'no credentials' : `${header.kind} auth`}${user.clientCert ? ' with a client certificate' : ''}`;
    this.agent = this.server.startsWith('http:')
      ? new http.Agent({ keepAlive: true })
      : new https.Agent({
          keepAlive: true,
          rejectUnauthorized: !cluster.insecureSkipTlsVerify,
          ...(cluster.ca && { ca: cluster.ca }),
          ...(cluster.tlsServerName && { servername: cluster.tlsServerName }),
          ...(user.clientCert && { cert: user.clientCert.cert, key: user.clientCert.key }),
        });
    switch (header.kind) {
      case 'none':
        this.authorization = () => undefined;
        break;
      case 'token': {
        const value = `Bearer ${header.token}`;
        this.authorization = () => value;
        break;
      }
      case 'token-file': {
        const file = new TokenFile(header.path);
        this.authorization = () => `Bearer ${file.current()}`;
        break;
      }
      case 'basic': {
        const value = `Basic ${Buffer.from(`${header.username}:${header.password}`).toString('base64')}`;
        this.authorization = () => value;
        break;
      }
    }
  }

  async requestOptions(): Promise<https.RequestOptions> {
    const authorization = this.authorization();
    return { agent: this.agent, headers: authorization ? { authorization } : {} };
  }

  close(): void {
    this.agent.destroy();
  }
}
