// Input limits before the parse (prescan), after it (object limits), and the
// manifest source's handling of hostile entries: files over the limits are
// refused naming the file, the limit and the flag, the event loop stays free
// while they are looked at, and entries that are not files are skipped with
// one line each and never opened.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseManifest } from '../../../src/sources/manifest-parse.js';
import { ManifestSource } from '../../../src/sources/manifests.js';
import { objectLimitProblem } from '../../../src/sources/limits.js';
import { prescanYaml } from '../../../src/sources/prescan.js';
import { DEFAULT_INPUT_LIMITS } from '../../../src/util/input-limits.js';
import { clip } from '../../../src/util/clip.js';
import { Metrics } from '../../../src/runtime/metrics.js';
import { EventLog } from './event-log.js';

const L = DEFAULT_INPUT_LIMITS;

function service(name: string, ip: string, extra = ''): string {
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: default\n${extra}spec:\n  clusterIP: ${ip}\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n`;
}

const manyKeys = (n: number) => service('wide', '10.96.0.9', `  labels:\n${Array.from({ length: n }, (_, i) => `    k${i}: v${i}`).join('\n')}\n`);
const manyKeysFlow = (n: number) => JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'w', labels: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v'])) } });
const deep = (n: number) => `${'a: '.repeat(0)}${Array.from({ length: n }, (_, i) => `${' '.repeat(i * 2)}k${i}:`).join('\n')} x\n`;
const deepFlow = (n: number) => `kind: Service\nx: ${'['.repeat(n)}${']'.repeat(n)}\n`;
const hugeString = (n: number) => service('long', '10.96.0.9', `  annotations:\n    note: "${'x'.repeat(n)}"\n`);
const hugePlain = (n: number) => service('long', '10.96.0.9', `  annotations:\n    note: ${'x'.repeat(n)}\n`);
const hugeBlock = (n: number) => service('long', '10.96.0.9', `  annotations:\n    note: |\n${'      xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n'.repeat(Math.ceil(n / 72))}`);
const documents = (n: number) => Array.from({ length: n }, () => '---\nkind: Node\n').join('');

describe('prescanYaml', () => {
  it.each([
    ['a mapping of 54,000 keys', manyKeys(54_000), '--object-max-keys'],
    ['a JSON object of 54,000 keys', manyKeysFlow(54_000), '--object-max-keys'],
    ['block mappings nested 100 deep', deep(100), '--object-max-depth'],
    ['flow sequences nested 100,000 deep', deepFlow(100_000), '--object-max-depth'],
    ['a quoted string of 1 MB', hugeString(1 << 20), '--object-max-string-length'],
    ['a plain string of 1 MB', hugePlain(1 << 20), '--object-max-string-length'],
    ['a block scalar of 1 MB', hugeBlock(1 << 20), '--object-max-string-length'],
    ['20,000 documents', documents(20_000), '--manifest-max-documents'],
  ])('refuses %s, naming the limit and the flag, in milliseconds', (_what, text, flag) => {
    const started = performance.now();
    const problem = prescanYaml(text, L);
    const ms = performance.now() - started;
    expect(problem).toContain(flag);
    expect(problem).toMatch(/^line \d+: exceeds the limit of \d+ /);
    expect(ms).toBeLessThan(200);
  });

  it('lets real manifests through: lists, JSON, block scalars, quoted keys, comments, sequences of mappings', () => {
    const slice = `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s-1, labels: {"kubernetes.io/service-name": s}}\naddressType: IPv4\nports: [{name: http, port: 80, protocol: TCP}]\nendpoints:\n${Array.from({ length: 1000 }, (_, i) => `- addresses: ["10.244.${i >> 8}.${i & 255}"]  # pod ${i}\n  conditions: {ready: true}\n  nodeName: n1\n`).join('')}`;
    const annotated = service('a', '10.96.0.1', `  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}\n    'quoted: key': "a: b, c"\n`);
    const wideButFine = manyKeys(L.objectMaxKeys - 10);
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 5000 }, (_, i) => ({ kind: 'Service', metadata: { name: `s${i}` } })) });
    for (const text of [slice, annotated, wideButFine, json, documents(100)]) expect(prescanYaml(text, L)).toBeNull();
    // And what passes the scan parses to what it says.
    const parsed = parseManifest('f.yaml', slice + '---\n' + annotated, []);
    expect(parsed.ok && parsed.definitions.map((d) => d.key)).toEqual(['default/s-1', 'default/a']);
  });
});

describe('object limits (both sources)', () => {
  it('refuses an EndpointSlice of more than 1000 endpoints, as kube-apiserver does', () => {
    const slice = { kind: 'EndpointSlice', metadata: { name: 'x' }, endpoints: Array.from({ length: 1001 }, () => ({ addresses: ['10.0.0.1'] })) };
    expect(objectLimitProblem(slice, L)).toContain('--object-max-endpoints');
    expect(objectLimitProblem({ ...slice, endpoints: slice.endpoints.slice(1) }, L)).toBeNull();
  });

  it('finds what the scan cannot see: keys, depth and strings of a parsed object', () => {
    const small = { ...L, objectMaxKeys: 3, objectMaxDepth: 3, objectMaxStringLength: 5 };
    expect(objectLimitProblem({ a: 1, b: 2, c: 3, d: 4 }, small)).toContain('--object-max-keys');
    expect(objectLimitProblem({ a: { b: { c: { d: 1 } } } }, small)).toContain('--object-max-depth');
    expect(objectLimitProblem({ a: 'longer' }, small)).toContain('--object-max-string-length');
    expect(objectLimitProblem({ a: ['ok'] }, small)).toBeNull();
  });
});

describe('untrusted text in logs and metrics', () => {
  it('clips outside text with a marker saying how much was cut', () => {
    const name = 'n'.repeat(100_000);
    expect(clip(name)).toHaveLength(256 + '…[99744 more characters]'.length);
    expect(clip(name)).toMatch(/…\[99744 more characters\]$/);
    expect(clip('short')).toBe('short');
  });

  it('bounds rejected_objects_total{kind} to the known kinds and "other"', async () => {
    const m = new Metrics({ processMetrics: false });
    for (let i = 0; i < 16; i++) m.countRejected(`Kind${i}\u0000`);
    m.countRejected('Service');
    m.countRejected('EndpointSlice');
    const lines = (await m.text()).split('\n').filter((l) => l.startsWith('bpfproxy_rejected_objects_total{'));
    expect(lines.sort()).toEqual(['bpfproxy_rejected_objects_total{kind="EndpointSlice"} 1', 'bpfproxy_rejected_objects_total{kind="Service"} 1', 'bpfproxy_rejected_objects_total{kind="other"} 16']);
  });
});

describe('ManifestSource with hostile entries', () => {
  let dir: string;
  let source: ManifestSource | undefined;
  const warnings: { file?: string; reason?: string; msg: string }[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line)); } });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bpfproxy-hostile-'));
    warnings.length = 0;
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('skips a directory, a dangling link, a FIFO and a link to /dev/zero with one line each, never opening them', async () => {
    await writeFile(join(dir, 'good.yaml'), service('good', '10.96.0.1'));
    await mkdir(join(dir, 'dir.yaml'));
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling.yaml'));
    execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
    await symlink('/dev/zero', join(dir, 'zero.yaml'));
    const events = new EventLog();
    source = new ManifestSource({ dir, log, rescanIntervalMs: 60_000 });
    await source.start(events.listener);
    await source.rescan();
    await source.rescan();
    const skipped = warnings.filter((w) => w.msg === 'skipping an entry with a manifest name');
    const byFile = new Map(skipped.map((w) => [w.file, w.reason]));
    expect(skipped).toHaveLength(4); // Once each, not once per scan.
    expect(byFile.get(join(dir, 'dir.yaml'))).toMatch(/^a directory/);
    expect(byFile.get(join(dir, 'dangling.yaml'))).toMatch(/symbolic link to nothing/);
    expect(byFile.get(join(dir, 'fifo.yaml'))).toMatch(/^a FIFO: never opened/);
    expect(byFile.get(join(dir, 'zero.yaml'))).toMatch(/^a symbolic link to a device: never opened/);
    expect(events.events.filter((e) => e.type === 'upsert').map((e) => e.type === 'upsert' && e.key)).toEqual(['default/good']);
  });

  it('refuses each hostile shape naming the file, the limit and the flag, keeps the event loop free, and still applies a good change', async () => {
    await writeFile(join(dir, 'good.yaml'), service('good', '10.96.0.1'));
    const events = new EventLog();
    source = new ManifestSource({ dir, log, rescanIntervalMs: 60_000 });
    await source.start(events.listener);
    const hostile: [string, string, string][] = [
      ['big.yaml', '', '--manifest-max-bytes'],
      ['wide.yaml', manyKeys(54_000), '--object-max-keys'],
      ['deep.yaml', deepFlow(100_000), '--object-max-depth'],
      ['long.yaml', hugeString(4 << 20), '--object-max-string-length'],
    ];
    // 50 MB, written as one sparse-free buffer.
    await writeFile(join(dir, 'big.yaml'), Buffer.alloc(50 << 20, 0x61));
    for (const [name, text] of hostile.slice(1)) await writeFile(join(dir, name), text);
    await writeFile(join(dir, 'other.yaml'), service('other', '10.96.0.2'));
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const started = performance.now();
    await source.rescan();
    const ms = performance.now() - started;
    lag.disable();
    const invalid = events.events.flatMap((e) => (e.type === 'invalid' ? [e] : []));
    for (const [name, , flag] of hostile) {
      const e = invalid.findLast((i) => i.origin === join(dir, name));
      expect(e?.reason, name).toContain(flag);
      expect(e?.reason, name).toMatch(/exceeds the limit of \d+/);
    }
    expect(events.events.some((e) => e.type === 'upsert' && e.key === 'default/other')).toBe(true);
    expect(ms).toBeLessThan(1000);
    expect(lag.max / 1e6).toBeLessThan(200);
  });
});
