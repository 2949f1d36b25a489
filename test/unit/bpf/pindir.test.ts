// One proxy per pin directory, and only a directory no one else can write to.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureOwnedDir, lockPathFor, lockPinDir, ownershipProblem } from '../../../src/dataplane/bpf/pindir.js';

const isRoot = process.getuid?.() === 0;
let base: string;
beforeEach(() => { base = mkdtempSync(join(tmpdir(), 'bpfproxy-pindir-')); });
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('the pin directory lock', () => {
  it('refuses a second holder naming the first one\'s pid, and is free again after release', () => {
    const locks = join(base, 'locks');
    const first = lockPinDir('/sys/fs/bpf/x', locks);
    expect(() => lockPinDir('/sys/fs/bpf/x', locks)).toThrow(`--bpf-fs /sys/fs/bpf/x is in use by another bpfproxy (pid ${process.pid})`);
    // Another directory has its own lock.
    const other = lockPinDir('/sys/fs/bpf/y', locks);
    first.release();
    expect(existsSync(lockPathFor('/sys/fs/bpf/x', locks))).toBe(false);
    lockPinDir('/sys/fs/bpf/x', locks).release();
    other.release();
  });

  it('is released by the kernel when its holder dies, however it dies', async () => {
    const locks = join(base, 'locks');
    const mod = join(process.cwd(), 'dist', 'dataplane', 'bpf', 'pindir.js');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(mod)}); m.lockPinDir('/p', ${JSON.stringify(locks)}); console.log('locked'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(() => lockPinDir('/p', locks)).toThrow(`(pid ${child.pid})`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    lockPinDir('/p', locks).release();
  });
});

describe('ownership of the directories the proxy trusts', () => {
  it('creates a missing directory with mode 0700', () => {
    const dir = join(base, 'a', 'b');
    ensureOwnedDir(dir, '--bpf-fs');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses one writable by others or by its group, saying what to do', () => {
    const dir = join(base, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    expect(ownershipProblem(dir, '--bpf-fs')).toMatch(/writable by its group \(mode 0777\).*chmod go-w/);
    chmodSync(dir, 0o755);
    expect(ownershipProblem(dir, '--bpf-fs')).toBeNull();
  });

  it.skipIf(!isRoot)('refuses one owned by another user', () => {
    const dir = join(base, 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    expect(ownershipProblem(dir, '--bpf-fs')).toMatch(/is owned by uid 65534, not by this process's user \(uid 0\)/);
  });
});
