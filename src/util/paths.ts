// Where the built artifacts live, relative to the package root, whether the
// code runs from dist/ (built) or src/ (tests through vitest).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'bpfproxy') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('bpfproxy: cannot find the package root from ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const PACKAGE_ROOT = findRoot();
export const BPF_OBJECT_DIR = process.env.BPFPROXY_BPF_DIR ?? join(PACKAGE_ROOT, 'build', 'bpf');
export const NATIVE_LIBRARY = process.env.BPFPROXY_NATIVE_LIB ?? join(PACKAGE_ROOT, 'build', 'native', 'libbpfproxy.so');
