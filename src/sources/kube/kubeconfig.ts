// A kubeconfig file resolved to its current context's cluster and user, the
// way client-go reads one (clientcmd): relative file paths are relative to
// the kubeconfig's directory, `-data` fields (base64) win over their file
// fields, `token` wins over `tokenFile`, a token and a username/password
// together are an error. Exec plugins and auth providers are not run here, and
// a cluster behind a proxy-url is not reached here: they are returned as a
// PluginUser and the caller lets client-node do it.
// Every reason a file is refused names the field, so an operator can fix it.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { yaml } from '../../util/yaml.js';
import { KubeconfigError, type ClusterTarget, type HeaderAuth, type KubeTarget, type PluginUser, type UserAuth } from './target.js';

type Fields = Record<string, unknown>;

/** Reads and resolves a kubeconfig file; throws KubeconfigError with the reason. */
export function loadKubeconfigFile(path: string): KubeTarget | PluginUser {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KubeconfigError(`cannot load kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
  }
  return resolveKubeconfig(text, path);
}

/** Resolves kubeconfig text; `path` names it in errors and anchors relative file paths. */
export function resolveKubeconfig(text: string, path: string): KubeTarget | PluginUser {
  const fail = (why: string): never => {
    throw new KubeconfigError(`cannot load kubeconfig ${path}: ${why}`);
  };
  let doc = parseJson(text);
  if (doc === undefined) {
    try {
      doc = yaml().parse(text);
    } catch (err) {
      fail(`not YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (!isFields(doc)) return fail('not a mapping (an empty file, or not a kubeconfig)');
  const contextName = doc['current-context'];
  if (typeof contextName !== 'string' || contextName === '') return fail('no current-context');
  const context = named(doc.contexts, contextName, 'context');
  if (!context) return fail(`current-context "${contextName}" is not among its contexts`);
  const clusterName = context.cluster;
  if (typeof clusterName !== 'string' || clusterName === '') return fail(`context "${contextName}" names no cluster`);
  const cluster = named(doc.clusters, clusterName, 'cluster');
  if (!cluster) return fail(`context "${contextName}" names cluster "${clusterName}", which is not defined`);
  const userName = context.user;
  // A context without a user is valid: no credentials.
  const user = typeof userName === 'string' && userName !== '' ? named(doc.users, userName, 'user') : {};
  if (!user) return fail(`context "${contextName}" names user "${String(userName)}", which is not defined`);
  const origin = `kubeconfig ${path} (context ${contextName}, user ${typeof userName === 'string' && userName ? userName : 'none'})`;
  const files = new FileReader(dirname(path), fail);

  const plugin = user.exec !== undefined ? 'exec' : user['auth-provider'] !== undefined ? 'auth-provider' : undefined;
  if (plugin) return { origin, plugin };
  // An HTTP or SOCKS proxy in front of the API server: client-node's proxy agents carry the requests.
  if (nonEmpty(cluster['proxy-url'])) return { origin, plugin: 'proxy-url' };
  return { origin, cluster: clusterTarget(cluster, clusterName, files, fail), user: userAuth(user, String(userName), files, fail) };
}

/**
 * A kubeconfig written as JSON (JSON is YAML, and what tools that generate
 * kubeconfigs often write), parsed without loading the yaml package (its
 * ~9 MB resident, util/yaml.ts); undefined when the text is not JSON, for
 * the YAML parser to read or to explain. One difference: a key repeated in
 * a JSON object keeps its last value here, where the YAML parser refuses it.
 */
function parseJson(text: string): unknown {
  if (!/^\s*\{/.test(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function clusterTarget(c: Fields, name: string, files: FileReader, fail: (why: string) => never): ClusterTarget {
  const where = `cluster "${name}"`;
  const server = c.server;
  if (typeof server !== 'string' || server === '') return fail(`${where} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return fail(`${where}: server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(`${where}: server "${server}" is neither https nor http`);
  const insecure = c['insecure-skip-tls-verify'] === true;
  const ca = files.pemOf(c, 'certificate-authority', `${where}`);
  if (ca && insecure) return fail(`${where}: certificate-authority and insecure-skip-tls-verify together (client-go refuses this too)`);
  const tlsServerName = c['tls-server-name'];
  return {
    server: server.replace(/\/+$/, ''),
    insecureSkipTlsVerify: insecure,
    ...(ca && { ca }),
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' && { tlsServerName }),
  };
}

function userAuth(u: Fields, name: string, files: FileReader, fail: (why: string) => never): UserAuth {
  const where = `user "${name}"`;
  const cert = files.pemOf(u, 'client-certificate', where);
  const key = files.pemOf(u, 'client-key', where);
  if (cert && !key) return fail(`${where}: client-certificate without client-key`);
  if (key && !cert) return fail(`${where}: client-key without client-certificate`);
  const token = nonEmpty(u.token);
  // kubectl writes token-file; kubeadm's kube-proxy kubeconfig says tokenFile.
  const tokenFile = nonEmpty(u.tokenFile) ?? nonEmpty(u['token-file']);
  const username = nonEmpty(u.username);
  const password = typeof u.password === 'string' ? u.password : undefined;
  if ((token || tokenFile) && (username || password !== undefined)) return fail(`${where}: a token and a username/password together`);
  if (password !== undefined && !username) return fail(`${where}: a password without a username`);
  let header: HeaderAuth = { kind: 'none' };
  if (token) header = { kind: 'token', token };
  else if (tokenFile) header = { kind: 'token-file', path: files.resolve(tokenFile) };
  else if (username) header = { kind: 'basic', username, password: password ?? '' };
  return { header, ...(cert && key && { clientCert: { cert, key } }) };
}

/** Files a kubeconfig refers to, relative to its own directory. */
class FileReader {
  constructor(private readonly dir: string, private readonly fail: (why: string) => never) {}

  resolve(file: string): string {
    return isAbsolute(file) ? file : join(this.dir, file);
  }

  /** `FIELD-data` (base64 PEM) or the file `FIELD` names; undefined when neither is set. */
  pemOf(fields: Fields, field: string, where: string): Buffer | undefined {
    const data = nonEmpty(fields[`${field}-data`]);
    const file = nonEmpty(fields[field]);
    let pem: Buffer;
    if (data) {
      pem = Buffer.from(data, 'base64');
      if (!isPem(pem)) this.fail(`${where}: ${field}-data is not base64 of a PEM block`);
    } else if (file) {
      try {
        pem = readFileSync(this.resolve(file));
      } catch (err) {
        return this.fail(`${where}: ${field} ${file}: ${(err as Error).message}`);
      }
      if (!isPem(pem)) this.fail(`${where}: ${field} ${file} is not a PEM file`);
    } else {
      return undefined;
    }
    return pem;
  }
}

/** The `[{name, FIELD: {...}}]` entry of that name, its inner mapping; undefined if absent. */
function named(list: unknown, name: string, field: string): Fields | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry: unknown = list.find((e: unknown) => isFields(e) && e.name === name);
  if (!isFields(entry)) return undefined;
  const inner = entry[field];
  return isFields(inner) ? inner : {};
}

function isPem(b: Buffer): boolean {
  return b.includes('-----BEGIN ');
}

function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
