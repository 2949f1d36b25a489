// The --config file is watched as kube-proxy watches it: a changed file ends the
// process so that a ConfigMap edit rolls out. Laid out as kubelet lays out a
// ConfigMap volume: config.conf -> ..data/config.conf, ..data -> ..<timestamp>.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchConfigFile, type ConfigWatch } from '../../../src/config/watch.js';

const dirs: string[] = [];
const watches: ConfigWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function configMapVolume(text: string): { dir: string; file: string; update(text: string, stamp: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-cm-'));
  dirs.push(dir);
  let current = '..2025_01_01_00_00_00.000000001';
  mkdirSync(join(dir, current));
  writeFileSync(join(dir, current, 'config.conf'), text);
  symlinkSync(current, join(dir, '..data'));
  symlinkSync('..data/config.conf', join(dir, 'config.conf'));
  return {
    dir,
    file: join(dir, 'config.conf'),
    // kubelet's atomic writer: a new timestamped directory, a new symlink renamed over ..data, the old directory removed.
    update(next: string, stamp: string) {
      mkdirSync(join(dir, stamp));
      writeFileSync(join(dir, stamp, 'config.conf'), next);
      symlinkSync(stamp, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, current), { recursive: true });
      current = stamp;
    },
  };
}

function watchFor(file: string, initial: string, pollMs = 60_000): Promise<string> & { watch: ConfigWatch } {
  let watch!: ConfigWatch;
  const p = new Promise<string>((resolve) => { watch = watchConfigFile(file, initial, resolve, { settleMs: 20, pollMs }); });
  watches.push(watch);
  return Object.assign(p, { watch });
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('watchConfigFile', () => {
  it('reports a ConfigMap update (the ..data symlink swap) and says which file changed', async () => {
    const v = configMapVolume('mode: ""\n');
    const changed = watchFor(v.file, 'mode: ""\n');
    v.update('mode: ipvs\n', '..2025_01_01_00_01_00.000000002');
    expect(await within(changed, 2000)).toBe(`${v.file} changed`);
  });

  it('reports a file written in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-cfg-'));
    dirs.push(dir);
    const file = join(dir, 'kube-proxy.yaml');
    writeFileSync(file, 'a: 1\n');
    const changed = watchFor(file, 'a: 1\n');
    writeFileSync(file, 'a: 2\n');
    expect(await within(changed, 2000)).toBe(`${file} changed`);
  });

  it('says so when the file is removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-cfg-'));
    dirs.push(dir);
    const file = join(dir, 'kube-proxy.yaml');
    writeFileSync(file, 'a: 1\n');
    const changed = watchFor(file, 'a: 1\n');
    rmSync(file);
    expect(await within(changed, 2000)).toMatch(/cannot be read any more \(ENOENT\)$/);
  });

  it('does nothing when an event leaves the contents as they were (a touch, the same ConfigMap again)', async () => {
    const v = configMapVolume('mode: ""\n');
    const changed = watchFor(v.file, 'mode: ""\n', 50);
    utimesSync(join(v.dir, '..data', 'config.conf'), new Date(), new Date());
    v.update('mode: ""\n', '..2025_01_01_00_02_00.000000003');
    expect(await within(changed, 400)).toBe('timeout');
  });

  it('a change the watch misses is found by the poll', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-cfg-'));
    dirs.push(dir);
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'x\n');
    // The watch sees the directory; give it a different initial text, as if the file changed before the watch began.
    expect(await within(watchFor(file, 'y\n', 50), 1000)).toBe(`${file} changed`);
  });
});
