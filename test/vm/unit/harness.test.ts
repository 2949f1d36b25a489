// The pure parts of the kernel-in-VM harness (test/vm/lib): which package a
// kernel label means, what goes into the initramfs, the qemu and vng command
// lines, the guest's job script, and how a guest's end is read. The harness
// itself boots in `make test-vm`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kernelRelease, metapackageCandidates, packageMatchesLabel, parseDepends, parseVersion } from '../lib/debian.js';
import { initramfsEntries, initramfsModuleName, parseShowDepends } from '../lib/initramfs.js';
import { guestEnv, jobScript, shellQuote } from '../lib/job.js';
import { kernelCommandLine, qemuArgs, type BootSpec } from '../lib/qemu.js';
import { consoleTail, decideOutcome, emulatorTextPokeOops, exitCode, EXIT, parseStatusFile, readConsole } from '../lib/status.js';
import { compressionOf, payloadRange } from '../lib/vmlinux.js';
import { vngArgs, vngCommand } from '../lib/vng.js';
import { report, runGuest } from '../lib/runner.js';

// `apt-cache depends linux-image-amd64` on Debian 12, as captured.
const DEPENDS_61 = 'linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n';
const DEPENDS_612 = 'linux-image-6.12-amd64\n  Depends: linux-image-6.12.117+deb12-amd64\n';

describe('kernel package resolution', () => {
  it('takes the versioned package from the metapackage', () => {
    expect(parseDepends(DEPENDS_61)).toBe('linux-image-6.1.0-57-amd64');
    expect(parseDepends(DEPENDS_612)).toBe('linux-image-6.12.117+deb12-amd64');
  });

  it('finds nothing in an unknown metapackage or a virtual-only dependency', () => {
    expect(parseDepends('')).toBeNull();
    expect(parseDepends('W: No packages found\n')).toBeNull();
    expect(parseDepends('linux-image-x\n  Depends: <linux-initramfs-tool>\n  Depends: kmod\n')).toBeNull();
  });

  it('tries the versioned metapackage first and tells 6.1 from 6.12', () => {
    expect(metapackageCandidates('6.12')).toEqual(['linux-image-6.12-amd64', 'linux-image-amd64']);
    expect(packageMatchesLabel('linux-image-6.1.0-57-amd64', '6.1')).toBe(true);
    expect(packageMatchesLabel('linux-image-6.12.117+deb12-amd64', '6.1')).toBe(false);
    expect(packageMatchesLabel('linux-image-6.12.117+deb12-amd64', '6.12')).toBe(true);
    expect(packageMatchesLabel('linux-image-6.12.117+deb12-amd64-unsigned', '6.12')).toBe(false);
    expect(() => metapackageCandidates('latest')).toThrow(/MAJOR.MINOR/);
  });

  it('reads the candidate version and the kernel release', () => {
    expect(parseVersion('Package: linux-image-6.1.0-57-amd64\nSource: linux-signed-amd64 (6.1.192+3)\nVersion: 6.1.192-3\nSize: 1\n')).toBe('6.1.192-3');
    expect(parseVersion('Package: x\n')).toBeNull();
    expect(kernelRelease(['6.1.0-57-amd64'])).toBe('6.1.0-57-amd64');
    expect(() => kernelRelease([])).toThrow(/one directory/);
    expect(() => kernelRelease(['a', 'b'])).toThrow(/one directory/);
  });
});

describe('initramfs', () => {
  // modprobe -d ROOT -S 6.1.0-57-amd64 --show-depends -a virtio_pci 9pnet_virtio 9p overlay (abridged paths).
  const SHOW_61 = [
    'insmod /r/kernel/drivers/virtio/virtio_ring.ko ',
    'insmod /r/kernel/drivers/virtio/virtio.ko ',
    'insmod /r/kernel/drivers/virtio/virtio_pci.ko ',
    'insmod /r/kernel/drivers/virtio/virtio_ring.ko ',
    'insmod /r/kernel/drivers/virtio/virtio.ko ',
    'insmod /r/kernel/net/9p/9pnet.ko ',
    'insmod /r/kernel/net/9p/9pnet_virtio.ko ',
    'insmod /r/kernel/net/9p/9pnet.ko ',
    'insmod /r/kernel/fs/9p/9p.ko ',
    'insmod /r/kernel/fs/overlayfs/overlay.ko ',
    '',
  ].join('\n');

  it('loads each module once, dependencies first, and skips built-ins', () => {
    expect(parseShowDepends(SHOW_61).map((p) => p.split('/').pop())).toEqual(['virtio_ring.ko', 'virtio.ko', 'virtio_pci.ko', '9pnet.ko', '9pnet_virtio.ko', '9p.ko', 'overlay.ko']);
    expect(parseShowDepends('builtin virtio_pci\ninsmod /r/9pnet.ko.xz \n')).toEqual(['/r/9pnet.ko.xz']);
    expect(() => parseShowDepends('modprobe: FATAL: Module 9p not found\n')).toThrow(/unexpected/);
  });

  it('numbers modules in load order and names them decompressed', () => {
    expect(initramfsModuleName(3, '/r/kernel/fs/9p/9p.ko.xz')).toBe('03-9p.ko');
    expect(initramfsModuleName(12, '/r/overlay.ko')).toBe('12-overlay.ko');
  });

  it('holds busybox, /init, the modules and their load order', () => {
    const entries = initramfsEntries(['/r/9pnet.ko.xz', '/r/9p.ko.xz'], '/repo/test/vm/guest/init.sh');
    expect(entries.map((e) => e.path)).toEqual(['bin/busybox', 'init', 'modules/00-9pnet.ko', 'modules/01-9p.ko', 'modules/order']);
    expect(entries.find((e) => e.path === 'init')).toMatchObject({ from: '/repo/test/vm/guest/init.sh', mode: 0o755 });
    expect(entries.find((e) => e.path === 'modules/order')?.text).toBe('00-9pnet.ko\n01-9p.ko\n');
  });
});

describe('the qemu command line', () => {
  const spec: BootSpec = {
    vmlinux: '/c/vmlinux', initramfs: '/c/initramfs.cpio', moduleDir: '/c/root/lib/modules', resultsDir: '/tmp/r',
    stage2: '/repo/test/vm/guest/stage2.sh', memoryMiB: 3072, cpus: 2, accel: 'tcg',
  };
  const pairs = (args: string[]) => args.flatMap((a, i) => (a.startsWith('-') && args[i + 1] && !args[i + 1]!.startsWith('-') ? [`${a} ${args[i + 1]}`] : []));

  it('emulates (TCG) with no network card and no reboot, and boots the vmlinux with stage 2 on the command line', () => {
    const args = qemuArgs(spec);
    const p = pairs(args);
    expect(p).toEqual(expect.arrayContaining(['-accel tcg', '-cpu max', '-nic none', '-kernel /c/vmlinux', '-initrd /c/initramfs.cpio', '-m 3072M', '-smp 2', '-serial stdio']));
    expect(args).toContain('-no-reboot');
    expect(args).not.toContain('-enable-kvm');
    expect(args[args.indexOf('-append') + 1]).toBe(kernelCommandLine(spec));
    expect(kernelCommandLine(spec)).toMatch(/(^| )console=ttyS0( |$)/);
    expect(kernelCommandLine(spec)).toMatch(/(^| )panic=-1( |$)/);
    expect(kernelCommandLine(spec)).toMatch(/(^| )bpxvm\.stage2=\/repo\/test\/vm\/guest\/stage2\.sh( |$)/);
  });

  it("shares the host's root and the modules read-only and only the results writable", () => {
    const shares = qemuArgs(spec).filter((_, i, a) => a[i - 1] === '-virtfs');
    expect(shares).toEqual([
      'local,path=/,mount_tag=bpxroot,security_model=none,multidevs=remap,readonly=on',
      'local,path=/c/root/lib/modules,mount_tag=bpxmods,security_model=none,multidevs=remap,readonly=on',
      'local,path=/tmp/r,mount_tag=bpxresults,security_model=none,multidevs=remap',
    ]);
  });

  it('uses KVM only when asked, and firmware when given', () => {
    const args = qemuArgs({ ...spec, accel: 'kvm', bios: '/usr/share/qemu/qboot.rom' });
    expect(pairs(args)).toEqual(expect.arrayContaining(['-accel kvm', '-cpu host', '-bios /usr/share/qemu/qboot.rom']));
  });

  it('refuses paths qemu or the kernel command line would split', () => {
    expect(() => qemuArgs({ ...spec, resultsDir: '/tmp/a,b' })).toThrow(/comma/);
    expect(() => kernelCommandLine({ stage2: '/a b/stage2.sh' })).toThrow(/spaces/);
  });
});

describe('vng', () => {
  it('boots the shipped bzImage without KVM unless asked, sharing the results directory', () => {
    const args = vngArgs({ bzImage: '/c/root/boot/vmlinuz-6.1.0-57-amd64', resultsDir: '/tmp/r', runJob: '/repo/test/vm/guest/run-job.sh', memoryMiB: 3072, cpus: 2, accel: 'tcg' });
    expect(args.slice(0, 2)).toEqual(['--run', '/c/root/boot/vmlinuz-6.1.0-57-amd64']);
    expect(args).toContain('--disable-kvm');
    expect(args[args.indexOf('--rwdir') + 1]).toBe('/tmp/r');
    expect(args[args.indexOf('--exec') + 1]).toBe('sh /repo/test/vm/guest/run-job.sh /tmp/r');
    expect(vngArgs({ bzImage: '/k', resultsDir: '/r', runJob: '/j', memoryMiB: 1, cpus: 1, accel: 'kvm' })).not.toContain('--disable-kvm');
  });

  it("runs a source checkout's script under Debian's python3, an installed one as it is", () => {
    expect(vngCommand('/src/vng', '#!/usr/bin/env python3')).toEqual(['/usr/bin/python3', '/src/vng']);
    expect(vngCommand('/venv/bin/vng', '#!/venv/bin/python')).toEqual(['/venv/bin/vng']);
  });
});

describe('the guest job', () => {
  it('changes directory, exports the environment and runs the command, quoted', () => {
    const text = jobScript({ cwd: '/work/main', env: { BPFPROXY_VM: '6.1.0-57-amd64', X: "it's" }, argv: ['sh', '-c', 'echo $X; exit 3'] });
    expect(text.split('\n')).toEqual(['#!/bin/sh', 'cd /work/main || exit 127', 'export BPFPROXY_VM=6.1.0-57-amd64', `export X='it'\\''s'`, `sh -c 'echo $X; exit 3'`, '']);
    expect(() => jobScript({ cwd: '/', env: {}, argv: [] })).toThrow(/no command/);
    expect(() => jobScript({ cwd: '/', env: { 'A B': '1' }, argv: ['true'] })).toThrow(/bad environment/);
    expect(shellQuote('')).toBe("''");
  });

  it('passes PATH and HOME on and names the guest kernel', () => {
    const env = guestEnv('6.12.117+deb12-amd64', { PATH: '/opt/bin:/usr/bin', HOME: '/root' });
    expect(env).toMatchObject({ PATH: '/opt/bin:/usr/bin', HOME: '/root', BPFPROXY_VM: '6.12.117+deb12-amd64' });
  });
});

describe("a guest's end", () => {
  const booted = 'SeaBIOS\r\nBPFPROXY-VM-STARTED 6.1.0-57-amd64\r\n';

  it('takes the status file over the console', () => {
    const o = decideOutcome({ statusFile: '3\n', console: `${booted}BPFPROXY-VM-EXIT 3\r\n`, timedOut: null });
    expect(o).toEqual({ kind: 'exited', code: 3 });
    expect(exitCode(o)).toBe(3);
    expect(exitCode(decideOutcome({ statusFile: '0', console: '', timedOut: null }))).toBe(0);
  });

  it('reports a panic, a timeout and a silent stop with distinct statuses', () => {
    const panic = decideOutcome({ statusFile: null, console: `${booted}[   9.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n`, timedOut: null });
    expect(panic).toMatchObject({ kind: 'panic', line: expect.stringMatching(/^Kernel panic - not syncing: Attempted to kill init/) });
    expect(exitCode(panic)).toBe(EXIT.panic);
    expect(decideOutcome({ statusFile: null, console: 'SeaBIOS\n', timedOut: 'boot' })).toEqual({ kind: 'timeout', phase: 'boot' });
    expect(exitCode(decideOutcome({ statusFile: null, console: booted, timedOut: 'run' }))).toBe(EXIT.timeout);
    const silent = decideOutcome({ statusFile: null, console: booted, timedOut: null });
    expect(silent).toEqual({ kind: 'no-status', reason: 'the guest stopped before its job finished' });
    expect(exitCode(silent)).toBe(EXIT.noStatus);
    expect(decideOutcome({ statusFile: null, console: 'BPFPROXY-VM-FAIL mount the overlay\n', timedOut: null })).toEqual({ kind: 'no-status', reason: 'stage 1 failed: mount the overlay' });
    expect(new Set(Object.values(EXIT)).size).toBe(3);
  });

  it('does not take a half-written or garbled status file for a status', () => {
    expect(parseStatusFile('')).toBeNull();
    expect(parseStatusFile('12x')).toBeNull();
    expect(parseStatusFile(null)).toBeNull();
    expect(parseStatusFile(' 1\n')).toBe(1);
  });

  it('reads the markers through carriage returns and colour codes', () => {
    expect(readConsole(`${booted}\x1b[32mBPFPROXY-VM-EXIT 1\x1b[0m\r\n`)).toMatchObject({ started: '6.1.0-57-amd64', exit: 1, fail: null, panic: null });
  });

  it('keeps the last lines of the console for the report', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line ${i}\r`).join('\n') + '\n\n';
    const tail = consoleTail(text, 3).split('\n');
    expect(tail).toEqual(['line 97', 'line 98', 'line 99']);
  });
});

describe('bzImage', () => {
  /** A minimal bzImage header: setup_sects, HdrS, protocol 2.15, payload at offset 0x10 of length 8. */
  function image(payload: number[]): Uint8Array {
    const setupSects = 1;
    const buf = Buffer.alloc((setupSects + 1) * 512 + 0x10 + payload.length + 16);
    buf.writeUInt8(setupSects, 0x1f1);
    buf.write('HdrS', 0x202, 'latin1');
    buf.writeUInt16LE(0x020f, 0x206);
    buf.writeUInt32LE(0x10, 0x248);
    buf.writeUInt32LE(payload.length, 0x24c);
    Buffer.from(payload).copy(buf, (setupSects + 1) * 512 + 0x10);
    return buf;
  }

  it('locates the payload from the boot header and names its compression', () => {
    const xz = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2];
    const img = image(xz);
    const { start, end } = payloadRange(img);
    expect(start).toBe(2 * 512 + 0x10);
    expect([...img.subarray(start, end)]).toEqual(xz);
    expect(compressionOf(img.subarray(start, end))).toBe('xz');
    expect(compressionOf(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(() => compressionOf(Uint8Array.from([0, 0, 0, 0]))).toThrow(/unknown compression/);
  });

  it('refuses what is not a bzImage', () => {
    expect(() => payloadRange(new Uint8Array(4096))).toThrow(/not a bzImage/);
  });
});

describe('runGuest, with a shell standing in for qemu', () => {
  const job = { cwd: '/', env: {}, argv: ['true'] };
  const echo = () => undefined;
  /** A "guest" that runs script with $1 = the results directory, as stage 2 would. */
  const guest = (script: string) => (results: string) => ({ file: 'sh', args: ['-c', script, 'guest', results] });

  it("returns the status the guest wrote and how long it took to reach its root", async () => {
    const r = await runGuest(guest('echo BPFPROXY-VM-STARTED fake; test -s "$1/job.sh" || exit; echo 7 > "$1/status.tmp"; mv "$1/status.tmp" "$1/status"; echo BPFPROXY-VM-EXIT 7'), job, { bootS: 20, runS: 20 }, { echo });
    expect(r.outcome).toEqual({ kind: 'exited', code: 7 });
    expect(r.code).toBe(7);
    expect(r.bootSeconds).not.toBeNull();
  });

  it('stops a guest that never reaches its root at the boot limit, and one whose job hangs at the run limit', async () => {
    const boot = await runGuest(guest('sleep 30'), job, { bootS: 1, runS: 20 }, { echo });
    expect(boot.outcome).toEqual({ kind: 'timeout', phase: 'boot' });
    expect(boot.code).toBe(EXIT.timeout);
    expect(boot.seconds).toBeLessThan(20);
    const run = await runGuest(guest('echo BPFPROXY-VM-STARTED fake; sleep 30'), job, { bootS: 20, runS: 1 }, { echo });
    expect(run.outcome).toEqual({ kind: 'timeout', phase: 'run' });
    expect(run.seconds).toBeLessThan(20);
  });

  it('gives a runner whose console comes late (vng) one limit for boot and run together', async () => {
    // The marker comes after the boot limit but within boot + run: not a timeout.
    const r = await runGuest(guest('sleep 2; echo BPFPROXY-VM-STARTED fake; echo 0 > "$1/status"'), job, { bootS: 1, runS: 20, markerEndsBoot: false }, { echo });
    expect(r.outcome).toEqual({ kind: 'exited', code: 0 });
  });

  it('reports a guest that stopped without a status, with its console', async () => {
    const r = await runGuest(guest('echo BPFPROXY-VM-STARTED fake; echo "some last words"'), job, { bootS: 20, runS: 20 }, { echo });
    expect(r.outcome).toEqual({ kind: 'no-status', reason: 'the guest stopped before its job finished' });
    expect(report('fake', r, { bootS: 20, runS: 20 })).toMatch(/--- console tail ---\nBPFPROXY-VM-STARTED fake\nsome last words\n---$/);
  });
});

describe('a panic that is software emulation\'s, not the guest\'s (emulatorTextPokeOops)', () => {
  const real = readFileSync(new URL('./fixtures/tcg-int3-oops-6.12.txt', import.meta.url), 'utf8');
  it('is the int3 oops of the text-patching race, as 6.12 under TCG printed it (the trap already patched to a nop)', () => {
    expect(emulatorTextPokeOops(real)).toBe(true);
  });
  it('is not an int3 still in place, nor one in a BPF program\'s image, nor another oops', () => {
    expect(emulatorTextPokeOops(real.replace(/66 <90>/g, '66 <cc>'))).toBe(false);
    expect(emulatorTextPokeOops(real.replace(/RIP: 0010:nf_ct_get_id/g, 'RIP: 0010:bpf_prog_6deef7357e7b4530_bpx_xdp'))).toBe(false);
    expect(emulatorTextPokeOops(real.replace(/Oops: int3/g, 'Oops: general protection fault'))).toBe(false);
    expect(emulatorTextPokeOops('[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs')).toBe(false);
  });
});
