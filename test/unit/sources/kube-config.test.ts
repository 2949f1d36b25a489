// The kubeconfig loader and the choice of configuration (src/sources/kube/):
// each way a user authenticates ends up in the requests the server sees, and
// each broken file is refused with the reason an operator needs to fix it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as loadYamlText, stringify } from 'yaml';
import { apiRequest } from '../../../src/sources/api-request.js';
import { DirectConnection, type ApiConnection } from '../../../src/sources/kube/connection.js';
import { loadInCluster, runsInCluster } from '../../../src/sources/kube/in-cluster.js';
import { loadKubeconfigFile } from '../../../src/sources/kube/kubeconfig.js';
import { connect } from '../../../src/sources/kube/load.js';
import type { KubeTarget } from '../../../src/sources/kube/target.js';
import { TokenFile } from '../../../src/sources/kube/token-file.js';
import { silentLogger } from '../../../src/util/log.js';

let dir: string;
const open: Array<{ close(): void }> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfproxy-kubeconfig-'));
});

afterEach(() => {
  for (const o of open.splice(0)) o.close();
  rmSync(dir, { recursive: true, force: true });
});

const PEM = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A kubeconfig with one context; `user` and `cluster` are the inner mappings. */
function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, name = 'kubeconfig'): string {
  const path = join(dir, name);
  writeFileSync(path, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'x', context: { cluster: 'c', ...(user && { user: 'u' }) } }],
    'current-context': 'x',
  }));
  return path;
}

const target = (path: string): KubeTarget => {
  const t = loadKubeconfigFile(path);
  if ('plugin' in t) throw new Error(`expected direct credentials, got the ${t.plugin} plugin`);
  return t;
};

/** A plain-http server recording the Authorization header of each request. */
async function recordingServer(): Promise<{ url: string; auth: Array<string | undefined> }> {
  const auth: Array<string | undefined> = [];
  const server = http.createServer((req, res) => {
    auth.push(req.headers.authorization);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.push({ close: () => server.close() });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, auth };
}

function connection(t: KubeTarget): ApiConnection {
  const c = new DirectConnection(t);
  open.unshift(c);
  return c;
}

describe('kubeconfig: what each kind of user sends', () => {
  it('a token as a bearer token', async () => {
    const srv = await recordingServer();
    const t = target(kubeconfig({ server: srv.url, 'insecure-skip-tls-verify': true }, { token: 'abc' }));
    expect(t.user.header).toEqual({ kind: 'token', token: 'abc' });
    await apiRequest(connection(t), { method: 'GET', path: '/api' });
    expect(srv.auth).toEqual(['Bearer abc']);
  });

  it('a token file (tokenFile or token-file, relative to the kubeconfig), re-read as it rotates', async () => {
    writeFileSync(join(dir, 'token'), 'first\n');
    const srv = await recordingServer();
    for (const field of ['tokenFile', 'token-file']) {
      const t = target(kubeconfig({ server: srv.url, 'insecure-skip-tls-verify': true }, { [field]: 'token' }));
      expect(t.user.header).toEqual({ kind: 'token-file', path: join(dir, 'token') });
    }
    let now = 0;
    const file = new TokenFile(join(dir, 'token'), () => now);
    expect(file.current()).toBe('first');
    writeFileSync(join(dir, 'token'), 'second');
    now = 30_000;
    expect(file.current()).toBe('first'); // cached for a minute, as client-go does
    now = 61_000;
    expect(file.current()).toBe('second');
    rmSync(join(dir, 'token'));
    now = 200_000;
    expect(file.current()).toBe('second'); // mid-rotation: the last good token
    expect(() => new TokenFile(join(dir, 'token')).current()).toThrow(/cannot read token file/);
  });

  it('a token wins over a token file, as in client-go', () => {
    const t = target(kubeconfig({ server: 'https://k' }, { token: 'abc', tokenFile: '/nonexistent' }));
    expect(t.user.header).toEqual({ kind: 'token', token: 'abc' });
  });

  it('username and password as basic auth', async () => {
    const srv = await recordingServer();
    const t = target(kubeconfig({ server: srv.url, 'insecure-skip-tls-verify': true }, { username: 'admin', password: 'pw:1' }));
    await apiRequest(connection(t), { method: 'GET', path: '/api' });
    expect(srv.auth).toEqual([`Basic ${b64('admin:pw:1')}`]);
  });

  it('no user, or an empty one: no Authorization header', async () => {
    const srv = await recordingServer();
    for (const user of [undefined, {}]) {
      const t = target(kubeconfig({ server: srv.url, 'insecure-skip-tls-verify': true }, user));
      expect(t.user).toEqual({ header: { kind: 'none' } });
      await apiRequest(connection(t), { method: 'GET', path: '/api' });
    }
    expect(srv.auth).toEqual([undefined, undefined]);
  });

  it('client certificate and key, as data or as files; the CA and tls-server-name of the cluster', () => {
    writeFileSync(join(dir, 'ca.crt'), PEM('CERTIFICATE'));
    writeFileSync(join(dir, 'client.key'), PEM('PRIVATE KEY'));
    const t = target(kubeconfig(
      { server: 'https://10.0.0.1:6443/', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes' },
      { 'client-certificate-data': b64(PEM('CERTIFICATE')), 'client-key': join(dir, 'client.key') },
    ));
    expect(t.cluster).toEqual({ server: 'https://10.0.0.1:6443', ca: Buffer.from(PEM('CERTIFICATE')), insecureSkipTlsVerify: false, tlsServerName: 'kubernetes' });
    expect(t.user.clientCert?.cert.toString()).toBe(PEM('CERTIFICATE'));
    expect(t.user.clientCert?.key.toString()).toBe(PEM('PRIVATE KEY'));
    // -data wins over the file, as in client-go.
    const t2 = target(kubeconfig({ server: 'https://k', 'certificate-authority-data': b64(PEM('CERTIFICATE')), 'certificate-authority': '/nonexistent' }, {}));
    expect(t2.cluster.ca?.toString()).toBe(PEM('CERTIFICATE'));
  });

  it('exec plugins, auth providers and clusters behind a proxy-url are left to client-node', () => {
    const exec = loadKubeconfigFile(kubeconfig({ server: 'https://k' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } }));
    expect(exec).toMatchObject({ plugin: 'exec' });
    const provider = loadKubeconfigFile(kubeconfig({ server: 'https://k' }, { 'auth-provider': { name: 'oidc', config: {} } }));
    expect(provider).toMatchObject({ plugin: 'auth-provider' });
    const proxied = loadKubeconfigFile(kubeconfig({ server: 'https://k', 'proxy-url': 'socks5://proxy:1080' }, { token: 't' }));
    expect(proxied).toMatchObject({ plugin: 'proxy-url' });
  });
});

describe('kubeconfig: JSON, read without the YAML parser', () => {
  it('resolves as the same file written as YAML; broken JSON is explained by the YAML parser', () => {
    const yamlPath = kubeconfig({ server: 'https://k:6443/', 'certificate-authority-data': b64(PEM('CERTIFICATE')) }, { token: 't' });
    const doc: unknown = JSON.parse(JSON.stringify(loadYamlText(readFileSync(yamlPath, 'utf8'))));
    const jsonPath = join(dir, 'kubeconfig.json');
    writeFileSync(jsonPath, JSON.stringify(doc, null, 2));
    const fromJson = target(jsonPath);
    expect(fromJson.cluster).toEqual(target(yamlPath).cluster);
    expect(fromJson.cluster.server).toBe('https://k:6443');
    expect(fromJson.user).toEqual(target(yamlPath).user);
    writeFileSync(jsonPath, '{"current-context": "x",');
    expect(() => loadKubeconfigFile(jsonPath)).toThrow(/not YAML/);
  });
});

describe('kubeconfig: files refused, with their reason', () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ['a missing file', () => join(dir, 'missing'), /cannot load kubeconfig .*missing: ENOENT/],
    ['an empty file', () => write(''), /not a mapping/],
    ['not YAML', () => write('clusters: [\n'), /not YAML/],
    ['no current-context', () => write(stringify({ clusters: [], contexts: [] })), /no current-context/],
    ['a current-context that is not defined', () => write(stringify({ 'current-context': 'nope', contexts: [] })), /current-context "nope" is not among its contexts/],
    ['a context naming a missing cluster', () => write(stringify({ 'current-context': 'x', contexts: [{ name: 'x', context: { cluster: 'gone' } }] })), /names cluster "gone", which is not defined/],
    ['a context naming a missing user', () => write(stringify({ 'current-context': 'x', clusters: [{ name: 'c', cluster: { server: 'https://k' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'who' } }] })), /names user "who", which is not defined/],
    ['a cluster without a server', () => kubeconfig({}, {}), /cluster "c" has no server/],
    ['a server that is not a URL', () => kubeconfig({ server: 'k8s:6443:x' }, {}), /is neither https nor http|is not a URL/],
    ['a missing CA file', () => kubeconfig({ server: 'https://k', 'certificate-authority': 'nope.crt' }, {}), /certificate-authority nope.crt: ENOENT/],
    ['CA data that is not PEM', () => kubeconfig({ server: 'https://k', 'certificate-authority-data': b64('hello') }, {}), /certificate-authority-data is not base64 of a PEM block/],
    ['a CA with insecure-skip-tls-verify', () => kubeconfig({ server: 'https://k', 'certificate-authority-data': b64(PEM('CERTIFICATE')), 'insecure-skip-tls-verify': true }, {}), /certificate-authority and insecure-skip-tls-verify together/],
    ['a client certificate without its key', () => kubeconfig({ server: 'https://k' }, { 'client-certificate-data': b64(PEM('CERTIFICATE')) }), /client-certificate without client-key/],
    ['a client key without its certificate', () => kubeconfig({ server: 'https://k' }, { 'client-key-data': b64(PEM('PRIVATE KEY')) }), /client-key without client-certificate/],
    ['a token and a username together', () => kubeconfig({ server: 'https://k' }, { token: 't', username: 'u', password: 'p' }), /a token and a username\/password together/],
    ['a password without a username', () => kubeconfig({ server: 'https://k' }, { password: 'p' }), /a password without a username/],
  ];
  function write(text: string): string {
    const path = join(dir, 'bad');
    writeFileSync(path, text);
    return path;
  }
  it.each(cases)('%s', (_what, make, reason) => {
    expect(() => loadKubeconfigFile(make())).toThrow(reason);
  });
});

describe('in-cluster configuration', () => {
  it('uses the service host and port (IPv6 bracketed), the mounted CA and the rotating token', () => {
    writeFileSync(join(dir, 'token'), 't');
    writeFileSync(join(dir, 'ca.crt'), PEM('CERTIFICATE'));
    writeFileSync(join(dir, 'namespace'), 'kube-system\n');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    expect(runsInCluster(env, dir)).toBe(true);
    expect(runsInCluster({ ...env, KUBERNETES_SERVICE_HOST: '' }, dir)).toBe(false);
    const t = loadInCluster(env, dir);
    expect(t.cluster).toEqual({ server: 'https://[fd00::1]:443', ca: Buffer.from(PEM('CERTIFICATE')), insecureSkipTlsVerify: false });
    expect(t.user.header).toEqual({ kind: 'token-file', path: join(dir, 'token') });
    expect(t.namespace).toBe('kube-system');
  });

  it('refuses to start without the CA', () => {
    writeFileSync(join(dir, 'token'), 't');
    expect(() => loadInCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir)).toThrow(/cannot read the cluster CA/);
  });
});

describe('choosing the configuration, as kube-proxy does', () => {
  const lines: string[] = [];
  const log = { ...silentLogger(), info: (_o: unknown, msg: string) => void lines.push(msg) } as unknown as ReturnType<typeof silentLogger>;
  const noCluster = { env: {}, serviceAccountDir: '/nonexistent', log };

  beforeEach(() => {
    lines.length = 0;
  });

  it('--kubeconfig, with --master overriding its server; one log line says which path', async () => {
    const path = kubeconfig({ server: 'http://127.0.0.1:1', 'insecure-skip-tls-verify': true }, { token: 't' });
    const conn = await connect({ ...noCluster, kubeconfig: path, master: 'http://127.0.0.1:2/' });
    open.unshift(conn);
    expect(conn.server).toBe('http://127.0.0.1:2');
    expect(lines).toEqual([`Kubernetes API: kubeconfig ${path} (context x, user u), server from --master: token auth`]);
  });

  it('--master alone: that server, no credentials', async () => {
    const conn = await connect({ ...noCluster, master: 'http://127.0.0.1:3' });
    open.unshift(conn);
    expect(conn.server).toBe('http://127.0.0.1:3');
    expect(lines[0]).toMatch(/--master http:\/\/127.0.0.1:3: no credentials/);
  });

  it('$KUBECONFIG only where nothing else is given (kube-proxy itself never reads it)', async () => {
    const path = kubeconfig({ server: 'http://127.0.0.1:4', 'insecure-skip-tls-verify': true }, { token: 't' });
    const conn = await connect({ ...noCluster, env: { KUBECONFIG: `${path}:/other` } });
    open.unshift(conn);
    expect(conn.server).toBe('http://127.0.0.1:4');
    const withMaster = await connect({ ...noCluster, env: { KUBECONFIG: path }, master: 'http://127.0.0.1:5' });
    open.unshift(withMaster);
    expect(withMaster.server).toBe('http://127.0.0.1:5');
  });

  it('refuses plain http without insecure-skip-tls-verify, and no configuration at all', async () => {
    const path = kubeconfig({ server: 'http://127.0.0.1:1' }, {});
    await expect(connect({ ...noCluster, kubeconfig: path })).rejects.toThrow(/plain http .* without insecure-skip-tls-verify/);
    await expect(connect(noCluster)).rejects.toThrow(/not running in a cluster/);
  });

  it('an exec user goes through client-node, which runs the plugin', async () => {
    const srv = await recordingServer();
    // The plugin: a shell one-liner printing an ExecCredential.
    const cred = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'from-exec' } });
    const path = kubeconfig({ server: srv.url, 'insecure-skip-tls-verify': true }, {
      exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'sh', args: ['-c', `echo '${cred}'`], interactiveMode: 'Never' },
    });
    const conn = await connect({ ...noCluster, kubeconfig: path });
    open.unshift(conn);
    expect(lines[0]).toMatch(/exec credentials through @kubernetes\/client-node/);
    await apiRequest(conn, { method: 'GET', path: '/api' });
    expect(srv.auth).toEqual(['Bearer from-exec']);
  });
});

describe('TLS: the CA, tls-server-name and a client certificate, against a real TLS server', () => {
  it('verifies the server by the CA under the given name and presents the client certificate', async () => {
    const pki = makePki(dir);
    const subjects: string[] = [];
    const server = https.createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      subjects.push(String((req.socket as TLSSocket).getPeerCertificate().subject.CN));
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    open.push({ close: () => server.close() });
    const server_ = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const path = kubeconfig(
      { server: server_, 'certificate-authority': 'ca.crt', 'tls-server-name': 'apiserver.test' },
      { 'client-certificate': 'client.crt', 'client-key': 'client.key' },
    );
    await apiRequest(connection(target(path)), { method: 'GET', path: '/api' });
    expect(subjects).toEqual(['system:node:test']);
    // Without tls-server-name the certificate (for apiserver.test) does not match 127.0.0.1.
    const wrongName = kubeconfig({ server: server_, 'certificate-authority': 'ca.crt' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' }, 'k2');
    await expect(apiRequest(connection(target(wrongName)), { method: 'GET', path: '/api' })).rejects.toThrow(/IP: 127.0.0.1 is not in the cert's list|altnames/);
  });
});

/** A CA, a server certificate for apiserver.test and a client certificate, made by openssl. */
function makePki(d: string): { caCert: Buffer; serverKey: Buffer; serverCert: Buffer } {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca');
  for (const [name, subj, ext] of [['server', '/CN=apiserver', 'subjectAltName=DNS:apiserver.test'], ['client', '/CN=system:node:test', 'extendedKeyUsage=clientAuth']] as const) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj);
    writeFileSync(join(d, `${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  }
  const read = (f: string) => readFileSync(join(d, f));
  return { caCert: read('ca.crt'), serverKey: read('server.key'), serverCert: read('server.crt') };
}
