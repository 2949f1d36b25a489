// The uncompressed kernel inside a bzImage. qemu boots an ELF vmlinux through
// its PVH entry point without running the bzImage's own decompressor, which
// under software emulation halves the time to the first command (about 5 s
// against 10 s here, docs/vm.md).
import { spawnSync } from 'node:child_process';

export type Compression = 'xz' | 'zstd' | 'gzip';

const MAGICS: ReadonlyArray<[Compression, readonly number[]]> = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['gzip', [0x1f, 0x8b]],
];

/**
 * Where the compressed kernel lies in a bzImage, from its boot protocol
 * header (Documentation/arch/x86/boot.rst): the protected-mode part starts
 * after (setup_sects + 1) sectors, and payload_offset/payload_length (protocol
 * 2.08+) locate the payload inside it.
 */
export function payloadRange(image: Uint8Array): { start: number; end: number } {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.byteLength < 0x250 || view.getUint32(0x202, true) !== 0x53726448 /* "HdrS" */) throw new Error('vm: not a bzImage (no HdrS header)');
  if (view.getUint16(0x206, true) < 0x208) throw new Error('vm: bzImage boot protocol older than 2.08 has no payload fields');
  const setupSects = view.getUint8(0x1f1) || 4;
  const start = (setupSects + 1) * 512 + view.getUint32(0x248, true);
  const end = start + view.getUint32(0x24c, true);
  if (end > image.byteLength) throw new Error('vm: bzImage payload runs past the end of the file');
  return { start, end };
}

export function compressionOf(payload: Uint8Array): Compression {
  for (const [name, magic] of MAGICS) if (magic.every((b, i) => payload[i] === b)) return name;
  throw new Error('vm: bzImage payload has an unknown compression');
}

const DECOMPRESS: Record<Compression, string[]> = {
  xz: ['xz', '--decompress', '--stdout', '--single-stream'],
  zstd: ['zstd', '--decompress', '--stdout', '--quiet'],
  gzip: ['gzip', '--decompress', '--stdout'],
};

/** Extracts the ELF vmlinux from a bzImage. */
export function extractVmlinux(image: Uint8Array): Buffer {
  const { start, end } = payloadRange(image);
  const payload = image.subarray(start, end);
  const compression = compressionOf(payload);
  // Kbuild appends the uncompressed size (4 bytes, little endian) after xz and
  // zstd streams (size_append in scripts/Makefile.lib); zstd refuses the
  // trailing bytes, and they tell whether the output is whole.
  const sized = compression !== 'gzip';
  const stream = sized ? payload.subarray(0, payload.length - 4) : payload;
  const [file, ...args] = DECOMPRESS[compression];
  const r = spawnSync(file!, args, { input: stream, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`vm: ${file} failed on the bzImage payload: ${r.error?.message ?? r.stderr.toString().trim()}`);
  const elf = r.stdout;
  if (sized) {
    const want = Buffer.from(payload.subarray(payload.length - 4)).readUInt32LE(0);
    if (elf.length !== want) throw new Error(`vm: the bzImage payload decompressed to ${elf.length} bytes, its trailer says ${want}`);
  }
  if (elf.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error('vm: the decompressed bzImage payload is not an ELF file');
  return elf;
}
