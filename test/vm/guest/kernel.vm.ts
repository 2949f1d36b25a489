// What the guest kernel offers, checked from inside the guest (make test-vm):
// the modules the ipvs dataplane and the rule modes need load from the module
// share, and bpfproxy's feature probes agree with what the kernel has. Each
// kernel's answers are printed once, for docs/vm.md.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { probeSockDestroy } from '../../../src/dataplane/bpf/probe.js';

const guest = process.env.BPFPROXY_VM;
if (!guest) console.log('VM kernel tests skipped: they run inside a guest booted by make test-vm (BPFPROXY_VM unset)');

/**
 * Runs argv to completion and returns its stdout. Asynchronous on purpose:
 * under emulation a command takes seconds, and a worker blocked that long
 * misses vitest's RPC deadline ("Timeout calling onTaskUpdate", measured).
 */
const run = (argv: string[]) => new Promise<string>((resolve, reject) => {
  execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
});

/** Runs a shell snippet in a network namespace of its own, which disappears with it: nothing reaches the guest's root namespace. */
const inThrowawayNetns = (script: string) => run(['unshare', '--net', 'sh', '-ec', script]);

/** Whether a name (a type, an enum value) is in the kernel's BTF string table: the UAPI enums it was built with are. */
const btfHasName = (name: string) => readFileSync('/sys/kernel/btf/vmlinux').includes(Buffer.from(`\0${name}\0`));

const kallsyms = () => new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(' ')[2]));

describe.skipIf(!guest)(`the guest kernel (${guest ?? 'no guest'})`, () => {
  it('is the one the harness booted', () => {
    expect(release()).toBe(guest);
  });

  it('loads ip_vs and the rr, lc and sh schedulers from the module share, and ipvsadm programs a virtual server', async () => {
    await run(['modprobe', '-a', 'ip_vs', 'ip_vs_rr', 'ip_vs_lc', 'ip_vs_sh']);
    const loaded = readFileSync('/proc/modules', 'utf8');
    for (const m of ['ip_vs', 'ip_vs_rr', 'ip_vs_lc', 'ip_vs_sh']) expect(loaded).toMatch(new RegExp(`^${m} `, 'm'));
    // A real server must be routable where the virtual server is: IPVS checks inet_addr_type() and
    // refuses an unreachable one with EINVAL, which ipvsadm prints as "Invalid operation" (measured on 6.1).
    const out = await inThrowawayNetns('ip link add bpxd0 type dummy; ip addr add 10.244.1.1/24 dev bpxd0; ip link set bpxd0 up; '
      + 'ipvsadm -A -t 10.96.0.1:80 -s lc; ipvsadm -a -t 10.96.0.1:80 -r 10.244.1.10:80 -m; ipvsadm -Ln');
    expect(out).toMatch(/TCP\s+10\.96\.0\.1:80 lc/);
    expect(out).toMatch(/-> 10\.244\.1\.10:80\s+Masq/);
  });

  it('auto-loads modules for the lab and the rule modes (dummy, nftables, iptables nat)', async () => {
    const out = await inThrowawayNetns('ip link add bpxd0 type dummy; ip -o link show bpxd0; nft add table ip bpxvm; nft list tables; iptables -t nat -S POSTROUTING');
    expect(out).toMatch(/bpxd0: <BROADCAST,NOARP>/);
    expect(out).toMatch(/^table ip bpxvm$/m);
    expect(out).toMatch(/^-P POSTROUTING ACCEPT$/m);
  });

  it("bpfproxy's bpf_sock_destroy probe agrees with the kernel's symbols", () => {
    const has = kallsyms().has('bpf_sock_destroy');
    const why = probeSockDestroy();
    console.log(`kernel ${guest}: bpf_sock_destroy ${has ? 'present' : 'absent'}; probe: ${why ?? 'usable'}`);
    expect(why === null).toBe(has);
  });

  it('reports which datapath features the kernel has, and its symbols agree with its BTF', () => {
    const syms = kallsyms();
    const features = {
      tcx: syms.has('tcx_prog_attach'),
      BPF_TCX_INGRESS: btfHasName('BPF_TCX_INGRESS'),
      BPF_FIB_LOOKUP_SRC: btfHasName('BPF_FIB_LOOKUP_SRC'),
      bpf_sock_destroy: syms.has('bpf_sock_destroy'),
      bpf_fib_lookup: syms.has('bpf_skb_fib_lookup') || syms.has('bpf_xdp_fib_lookup'),
    };
    console.log(`kernel ${guest}: ${Object.entries(features).map(([k, v]) => `${k}=${v ? 'yes' : 'no'}`).join(' ')}`);
    expect(features.BPF_TCX_INGRESS).toBe(features.tcx);
    // Every kernel the harness boots is newer than bpfproxy's minimum (5.18) and has the fib helper.
    expect(features.bpf_fib_lookup).toBe(true);
  });
});
