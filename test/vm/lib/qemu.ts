// The qemu command line of the project's own runner: the kernel booted through
// PVH (uncompressed vmlinux), stage 1 in the initramfs, three 9p shares (the
// host's root read-only, the guest kernel's modules read-only, the results
// directory writable), no network card: guest traffic stays in guest
// namespaces.
import { existsSync } from 'node:fs';

export type Accel = 'tcg' | 'kvm';

export interface BootSpec {
  vmlinux: string;
  initramfs: string;
  /** Host directory holding lib/modules/KVER of the guest kernel. */
  moduleDir: string;
  /** Host directory the guest writes its status into. */
  resultsDir: string;
  /** Stage 2, a path on the host's root as the guest sees it. */
  stage2: string;
  memoryMiB: number;
  cpus: number;
  accel: Accel;
  /** qboot firmware, when installed: a shorter firmware phase than SeaBIOS. */
  bios?: string;
}

export const QEMU = 'qemu-system-x86_64';
export const QBOOT = '/usr/share/qemu/qboot.rom';

export function defaultBios(): string | undefined {
  return existsSync(QBOOT) ? QBOOT : undefined;
}

export const SHARE_TAGS = { root: 'bpxroot', modules: 'bpxmods', results: 'bpxresults' } as const;

function virtfs(path: string, tag: string, readonly: boolean): string[] {
  if (/,/.test(path)) throw new Error(`vm: qemu -virtfs cannot take a path with a comma: ${path}`);
  // multidevs=remap: the host's / spans several filesystems, whose inode numbers collide.
  return ['-virtfs', `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`];
}

export function kernelCommandLine(spec: Pick<BootSpec, 'stage2'>): string {
  if (/\s/.test(spec.stage2)) throw new Error(`vm: the stage 2 path cannot contain spaces: ${spec.stage2}`);
  return [
    'console=ttyS0',
    // A panic stops the guest at once (with -no-reboot qemu exits) instead of hanging until the timeout.
    'panic=-1',
    'oops=panic',
    'rdinit=/init',
    'quiet',
    'loglevel=4',
    // Under emulation the mitigations cost time and protect nothing.
    'mitigations=off',
    'tsc=reliable',
    `bpxvm.stage2=${spec.stage2}`,
  ].join(' ');
}

export function qemuArgs(spec: BootSpec): string[] {
  return [
    '-nodefaults', '-no-user-config', '-no-reboot',
    '-machine', 'q35',
    '-accel', spec.accel,
    '-cpu', spec.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(spec.cpus),
    '-m', `${spec.memoryMiB}M`,
    ...(spec.bios ? ['-bios', spec.bios] : []),
    '-display', 'none',
    '-serial', 'stdio',
    '-nic', 'none',
    '-kernel', spec.vmlinux,
    '-initrd', spec.initramfs,
    '-append', kernelCommandLine(spec),
    ...virtfs('/', SHARE_TAGS.root, true),
    ...virtfs(spec.moduleDir, SHARE_TAGS.modules, true),
    ...virtfs(spec.resultsDir, SHARE_TAGS.results, false),
  ];
}
