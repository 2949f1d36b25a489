// The image without a container engine: the final stage of the Dockerfile is
// assembled as a file tree from its own COPY lines, and the CLI is started
// from that tree alone. The build and bpf stages' /src is this built
// checkout; node_modules is what `npm ci`, `npm prune --omit=dev` and
// deploy/trim-node-modules.sh leave, made the same way from the lock. What
// the image would lack (a file no COPY brings, a dev dependency the code
// imports at run time, a native library) fails here.
//
// BPFPROXY_IMAGE_NODE=/path/to/node runs the tree with another node binary
// (the image's major) instead of the one running the tests.
import { execFile as execFileCb, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../../src/util/paths.js';

interface Copy { from: string; src: string; dest: string }

/** The final stage's WORKDIR and COPY lines. */
function finalStage(dockerfile: string): { workdir: string; copies: Copy[]; entrypoint: string[] } {
  const lines = dockerfile.split('\n').filter((l) => !l.startsWith('#'));
  const lastFrom = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  let workdir = '/';
  const copies: Copy[] = [];
  let entrypoint: string[] = [];
  for (const line of lines.slice(lastFrom + 1)) {
    let m: RegExpExecArray | null;
    if ((m = /^WORKDIR\s+(\S+)/.exec(line))) workdir = m[1]!;
    else if ((m = /^COPY\s+--from=(\S+)\s+(\S+)\s+(\S+)\s*$/.exec(line))) {
      const dest = m[3]!.startsWith('/') ? m[3]! : join(workdir, m[3]!);
      copies.push({ from: m[1]!, src: m[2]!, dest });
    } else if (/^COPY\s/.test(line)) throw new Error(`a COPY line this test cannot read: ${line}`);
    else if ((m = /^ENTRYPOINT\s+(\[.*\])/.exec(line))) entrypoint = JSON.parse(m[1]!) as string[];
  }
  return { workdir, copies, entrypoint };
}

const execFile = promisify(execFileCb);
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function duKiB(path: string): number {
  return Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\t')[0]);
}

const built = existsSync(join(PACKAGE_ROOT, 'dist', 'cli', 'main.js')) && existsSync(join(PACKAGE_ROOT, 'build', 'native', 'libbpfproxy.so'));
if (!built) console.log('image tree test skipped: build first (make build), it assembles the image from dist/ and build/');

describe.skipIf(!built)('the runtime image as a file tree', () => {
  let tmp: string;
  let root: string;
  let stage: ReturnType<typeof finalStage>;
  let node: string;
  let lockBefore: string;
  let lockAfter: string;

  beforeAll(async () => {
    stage = finalStage(readFileSync(join(PACKAGE_ROOT, 'Dockerfile'), 'utf8'));
    tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-image-'));
    root = join(tmp, 'root');

    // The build stage's node_modules: `npm ci` from the lock, without dev dependencies.
    const staging = join(tmp, 'src');
    mkdirSync(staging);
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(PACKAGE_ROOT, f), join(staging, f));
    lockBefore = sha(join(staging, 'package-lock.json'));
    // Asynchronous: a minute of blocking would starve the test worker's own messages.
    await execFile('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: staging, timeout: 240_000 });
    lockAfter = sha(join(staging, 'package-lock.json'));
    await execFile('sh', [join(PACKAGE_ROOT, 'deploy', 'trim-node-modules.sh'), join(staging, 'node_modules')]);

    for (const c of stage.copies) {
      const dest = join(root, c.dest);
      mkdirSync(dirname(dest), { recursive: true });
      if (c.from === 'build' || c.from === 'bpf') {
        // Both build stages work in /src, a copy of this checkout.
        if (!c.src.startsWith('/src/')) throw new Error(`build-stage COPY outside /src: ${c.src}`);
        const rel = c.src.slice('/src/'.length);
        cpSync(rel === 'node_modules' ? join(staging, rel) : join(PACKAGE_ROOT, rel), dest, { recursive: true, dereference: false });
      } else if (c.from === 'node' && c.src === '/usr/local/bin/node') {
        copyFileSync(process.env.BPFPROXY_IMAGE_NODE ?? process.execPath, dest);
      } else {
        throw new Error(`a COPY this test does not know how to stand in for: --from=${c.from} ${c.src}`);
      }
    }
    node = join(root, 'usr/local/bin/node');
  }, 300_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs a command inside the tree, from a directory outside the checkout. */
  function run(args: string[], env: Record<string, string> = {}) {
    const entry = join(root, stage.entrypoint[0]!);
    return spawnSync(node, [entry, ...args], {
      cwd: tmp,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: `${dirname(node)}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: tmp, ...env },
    });
  }

  it('npm ci installs from the committed lock without rewriting it', () => {
    expect(lockAfter).toBe(lockBefore);
  });

  it('`bpfproxy version` prints the version and the commit the image was built with', () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = run(['version'], { BPFPROXY_COMMIT: 'abcdef123456' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`bpfproxy ${pkg.version} (commit abcdef123456, node v`);
  });

  it('`bpfproxy run --help` lists its options', () => {
    const r = run(['run', '--help']);
    expect(r.status, r.stderr).toBe(0);
    for (const flag of ['--proxy-mode', '--kubeconfig', '--healthz-bind-address', '--bind-address-hard-fail']) expect(r.stdout).toContain(flag);
  });

  it('loads koffi, libbpf and the shim, and opens the BPF objects the tree carries', () => {
    const objects = readdirSync(join(root, stage.workdir, 'build', 'bpf')).filter((f) => f.endsWith('.bpf.o'));
    expect(objects).toEqual(expect.arrayContaining(['sock.bpf.o', 'tc.bpf.o', 'xdp.bpf.o']));
    const script = `
      const n = await import(process.env.NATIVE);
      for (const o of process.env.OBJECTS.split(',')) n.objectClose(n.objectOpen(o));
      console.log('opened', process.env.OBJECTS.split(',').length, n.strerror(2));`;
    const r = spawnSync(node, ['--input-type=module', '-e', script], {
      cwd: tmp,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: '/usr/bin:/bin',
        NATIVE: join(root, stage.workdir, 'dist/dataplane/bpf/native.js'),
        OBJECTS: objects.map((o) => join(root, stage.workdir, 'build/bpf', o)).join(','),
      },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`opened ${objects.length} No such file or directory`);
  });

  it('carries no package manager, no dev dependency, no sources and no tests, and reports its size', () => {
    const app = join(root, stage.workdir);
    const modules = readdirSync(join(app, 'node_modules'));
    for (const absent of ['npm', 'corepack', 'typescript', 'vitest', 'vite-node', 'kubernetes-models', 'fast-check', '@types']) expect(modules).not.toContain(absent);
    for (const present of ['koffi', '@kubernetes', 'pino', 'prom-client', 'yaml']) expect(modules).toContain(present);
    for (const absent of ['src', 'test', 'bench', 'native', 'build/test-bpf', 'build/vmlinux']) expect(existsSync(join(app, absent))).toBe(false);
    const sizes = { app: duKiB(app), node_modules: duKiB(join(app, 'node_modules')), dist: duKiB(join(app, 'dist')), build: duKiB(join(app, 'build')), node: duKiB(node) };
    console.log(`image tree (without the Debian base and its packages): ${JSON.stringify(Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, `${(v / 1024).toFixed(1)} MiB`])))}`);
    // The application part, dependencies included: an unused dev dependency (vitest, vega, ...) would push it past this.
    expect(sizes.app / 1024).toBeLessThan(80);
  });
});
