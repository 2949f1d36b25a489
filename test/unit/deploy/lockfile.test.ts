// The committed lock must install with `npm ci` everywhere the image and the
// developers build (linux x64 and arm64) without being rewritten. A lock
// rewritten by `npm install` on another platform with node_modules present
// can lose other platforms' optional packages (npm/cli#4828), and `npm ci`
// then refuses it ("Missing: @rollup/rollup-linux-x64-gnu from lock file").
// This checks the lock as npm ci reads it: every optional dependency of every
// locked package has its own entry, whatever its platform.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../../src/util/paths.js';

interface LockEntry { version?: string; optionalDependencies?: Record<string, string>; os?: string[]; cpu?: string[] }
const lock = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, LockEntry> };

/** Where npm resolves `name` from the package at `path`: its own node_modules, then each parent's. */
function resolve(path: string, name: string): LockEntry | undefined {
  for (let dir = path; ; ) {
    const found = lock.packages[`${dir ? `${dir}/` : ''}node_modules/${name}`];
    if (found) return found;
    if (!dir) return undefined;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i < 0 ? '' : dir.slice(0, i);
  }
}

describe('package-lock.json', () => {
  it('is a lockfileVersion 3 lock', () => {
    expect(lock.lockfileVersion).toBe(3);
  });

  it('records every platform variant of every optional dependency', () => {
    const missing: string[] = [];
    let platformSpecific = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        const dep = resolve(path, name);
        if (!dep) missing.push(`${name} (optional dependency of ${path || 'the root'})`);
        else if (dep.os || dep.cpu) platformSpecific++;
      }
    }
    expect(missing).toEqual([]);
    expect(platformSpecific).toBeGreaterThan(0); // koffi, esbuild and rollup ship per-platform packages
  });

  it('has the linux x64 and arm64 builds of the native packages the image and the tests load', () => {
    for (const name of ['@koromix/koffi-linux-x64', '@koromix/koffi-linux-arm64', '@rollup/rollup-linux-x64-gnu', '@rollup/rollup-linux-arm64-gnu']) {
      expect(lock.packages[`node_modules/${name}`], name).toBeDefined();
    }
  });
});
