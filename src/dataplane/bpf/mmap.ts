// The values of a BPF_F_MMAPABLE array map as a Uint32Array over the
// kernel's own pages (mmap of the map's fd): writes are visible to the
// programs at once, with no syscall per entry, and reading needs no dump.
// Used for the Maglev tables (maglev-tables.ts).
import { createRequire } from 'node:module';

interface Koffi {
  load(path: string): { func(sig: string): (...args: unknown[]) => unknown };
  view(ptr: unknown, len: number): ArrayBuffer;
  address(ptr: unknown): bigint;
  errno(): number;
}
const koffi = createRequire(import.meta.url)('koffi') as Koffi;

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const PAGE = 4096;

let libc: { mmap: (...a: unknown[]) => unknown; munmap: (...a: unknown[]) => unknown } | null = null;
function fns() {
  if (!libc) {
    const l = koffi.load('libc.so.6');
    libc = { mmap: l.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'), munmap: l.func('int munmap(void *addr, size_t len)') };
  }
  return libc;
}

export interface MappedArray {
  /** One word per entry (4-byte values). */
  readonly words: Uint32Array;
  unmap(): void;
}

/**
 * Maps the values of the array map behind `fd`, read-write, as 32-bit words.
 * An array element takes round_up(value size, 8) bytes in this area (so a
 * map of 4-byte values would leave every other word unused): `valueSize`
 * must be a multiple of 8.
 */
export function mapArrayWords(fd: number, entries: number, valueSize: number, what: string): MappedArray {
  if (valueSize % 8 !== 0) throw new Error(`mmap of map ${what}: value size ${valueSize} is not a multiple of 8, so its elements are padded`);
  const words = (entries * valueSize) / 4;
  const len = Math.ceil((words * 4) / PAGE) * PAGE;
  const { mmap, munmap } = fns();
  const ptr = mmap(null, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (ptr === null || koffi.address(ptr) === MAP_FAILED) throw new Error(`mmap of map ${what} (${len} bytes): errno ${koffi.errno()} (the map must be created with BPF_F_MMAPABLE)`);
  let mapped = true;
  return {
    words: new Uint32Array(koffi.view(ptr, len), 0, words),
    unmap() {
      if (!mapped) return;
      mapped = false;
      munmap(ptr, len);
    },
  };
}
