// The command line as an operator meets it: the built bin/bpfproxy, its exit
// codes, and the one line that says why it cannot run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'bpfproxy');
const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stderr.split('\n').filter(Boolean) };
}

describe('bpfproxy command line', () => {
  it('prints its version', () => {
    const r = run('version');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^bpfproxy \d+\.\d+\.\d+ /);
  });

  it('rejects a bad flag value naming the flag, with exit code 2', () => {
    const r = run('--proxy-mode', 'userspace');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--proxy-mode');
    expect(r.err).toContain('userspace');
  });

  it('says in one line that a fallback mode is not built yet, and exits 1', () => {
    const r = run('--proxy-mode', 'nftables', '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/--proxy-mode nftables is not built yet/);
  });

  it('says why the bpf dataplane cannot run when --bpf-fs is not a bpf filesystem', () => {
    const r = run('--bpf-fs', join(tmp, 'pins'), '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/the bpf dataplane cannot run here: --bpf-fs .*pins is not on a bpf filesystem/);
  });
});
