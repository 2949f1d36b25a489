// What bpfproxy makes of the guest kernel at start, read from its own log and
// from the kernel's attachments: every feature the bpf dataplane can lack is
// probed (not inferred from a version number), logged once, and served by
// another path. The expectation for each comes from the kernel's own symbols
// and BTF, so the same cases hold on 6.1 (clsact, no bpf_sock_destroy) and on
// 6.12 (tcx, bpf_sock_destroy), and a kernel that changed either way shows.
//
// One lab node with one pod, and one extra device without native XDP (a
// dummy: its driver has no ndo_bpf) beside eth0 (a veth: native XDP since
// 4.19), so the generic-XDP path runs too. Guest only, like kernel.vm.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../../src/lab/lab.js';
import { LabProxy } from '../../../src/lab/proxy.js';
import { put, service, slice, type PortSpec } from '../../helpers/lab-manifests.js';

const guest = process.env.BPFPROXY_VM;
if (!guest) console.log('VM probe tests skipped: they run inside a guest booted by make test-vm (BPFPROXY_VM unset)');

const run = (argv: string[]) => new Promise<string>((resolve, reject) => {
  execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
});

const kallsyms = () => new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(' ')[2]));
const btfHasName = (name: string) => readFileSync('/sys/kernel/btf/vmlinux').includes(Buffer.from(`\0${name}\0`));

/** A device whose driver has no native XDP, so the attacher must fall back to generic. */
const NO_NATIVE_XDP = 'bpxdummy0';
const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }];
/** The socket hooks sock.bpf.c attaches to the node's cgroup, as bpftool 7.1 names their attach types. */
const CGROUP_HOOKS = ['inet4_connect', 'inet6_connect', 'udp4_sendmsg', 'udp6_sendmsg', 'udp4_recvmsg', 'udp6_recvmsg', 'inet4_getpeername', 'inet6_getpeername'].map((h) => `cgroup_${h}`);

describe.skipIf(!guest)(`bpfproxy's feature probes on the guest kernel (${guest ?? 'no guest'})`, () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy;
  const syms = guest ? kallsyms() : new Set<string>();
  const has = {
    tcx: syms.has('tcx_prog_attach'),
    sockDestroy: syms.has('bpf_sock_destroy'),
    fibLookupSrc: guest ? btfHasName('BPF_FIB_LOOKUP_SRC') : false,
  };
  /** The proxy's log lines whose message matches. */
  const lines = (re: RegExp) => proxy.logs.filter((l) => re.test(l.msg));

  beforeAll(async () => {
    console.log(`kernel ${release()}: tcx=${has.tcx} bpf_sock_destroy=${has.sockDestroy} BPF_FIB_LOOKUP_SRC=${has.fibLookupSrc}`);
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }] });
    const node = lab.nodes[0]!;
    const add = await lab.exec(node.netns, ['sh', '-ec', `ip link add ${NO_NATIVE_XDP} type dummy; ip link set ${NO_NATIVE_XDP} up`]);
    if (add.code !== 0) throw new Error(`dummy device: ${add.stderr}`);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-vm-probes-'));
    put(dir, 'web.yaml', `${service('web', '10.96.2.10', WEB, ['type: NodePort'])}---\n${slice('web', WEB, [{ ip: lab.pod('a1').ipv4, node: 'node1' }])}`);
    proxy = LabProxy.start(lab, node, { manifests: dir, args: ['--devices', `eth0,${NO_NATIVE_XDP}`] });
    await proxy.waitSynced(0, 45_000);
  });

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the bpf dataplane, with the socket programs on every cgroup hook of the node', async () => {
    expect(lines(/^dataplane: /).map((l) => l.msg)).toEqual(['dataplane: bpf']);
    const cgroup = await run(['bpftool', 'cgroup', 'show', lab.nodes[0]!.cgroup]);
    for (const hook of CGROUP_HOOKS) expect(cgroup).toMatch(new RegExp(`^\\s*\\d+\\s+${hook}\\s`, 'm'));
  });

  it('BPF_FIB_LOOKUP_SRC: probed by calling it, one line, and the XDP/TC path attached only when the kernel has it', async () => {
    const ok = lines(/^kernel probe: this kernel has what the XDP\/TC datapath needs$/);
    const lacks = lines(/lacks what the XDP\/TC datapath needs/);
    expect(ok.length + lacks.length).toBe(1);
    expect(ok.length).toBe(has.fibLookupSrc ? 1 : 0);
    const eth0 = await lab.exec(lab.nodes[0]!.netns, ['ip', '-d', 'link', 'show', 'dev', 'eth0']);
    if (has.fibLookupSrc) expect(eth0.stdout).toMatch(/prog\/xdp id \d+/);
    else expect(eth0.stdout).not.toMatch(/prog\/xdp/);
  });

  it('XDP: native on the veth, generic on a device whose driver has none, which is logged once', async () => {
    if (!has.fibLookupSrc) return; // Nothing attached at all: the case above checked that.
    const ns = lab.nodes[0]!.netns;
    expect((await lab.exec(ns, ['ip', '-d', 'link', 'show', 'dev', 'eth0'])).stdout).toMatch(/prog\/xdp id \d+/);
    // iproute2 6.1 marks the mode in the link's flags line ("xdpgeneric") and names the program prog/xdp either way.
    const dummy = (await lab.exec(ns, ['ip', '-d', 'link', 'show', 'dev', NO_NATIVE_XDP])).stdout;
    expect(dummy.split('\n')[0]).toMatch(/\bxdpgeneric\b/);
    expect(dummy).toMatch(/prog\/xdp(generic)? id \d+/);
    const generic = lines(/^the driver has no native XDP: attaching in generic mode$/);
    expect(generic.map((l) => l.device)).toEqual([NO_NATIVE_XDP]);
  });

  it('TC: tcx links where the kernel has tcx, clsact filters where it does not, and the fallback logged once', async () => {
    if (!has.fibLookupSrc) return;
    const ns = lab.nodes[0]!.netns;
    const fallback = lines(/^tcx is not available: TC programs attach as clsact filters$/);
    expect(fallback.length).toBe(has.tcx ? 0 : 1);
    for (const dev of ['eth0', NO_NATIVE_XDP]) {
      for (const way of ['ingress', 'egress']) {
        const filters = (await lab.exec(ns, ['tc', 'filter', 'show', 'dev', dev, way])).stdout;
        // A clsact filter shows here; a tcx link does not (it is no filter).
        if (has.tcx) expect(filters).not.toMatch(/\bbpf\b/);
        else expect(filters).toMatch(/\bbpf\b.*direct-action/);
      }
    }
  });

  it('bpf_sock_destroy: connected UDP sockets moved off removed backends by the iterator where the kernel has it, by sock_diag where not (Debian builds INET_DIAG_DESTROY in both kernels), in one line', () => {
    const moved = lines(/^connected UDP sockets are moved off removed backends/);
    const kept = lines(/^connected UDP sockets will keep a removed backend until they reconnect/);
    expect(moved.length).toBe(1);
    expect(kept.length).toBe(0);
    expect(moved[0]!.msg).toMatch(has.sockDestroy ? /socket iterator with bpf_sock_destroy/ : /sock_diag \(SOCK_DESTROY\); socket iterator: /);
  });

  it('serves a ClusterIP to the node\'s pod with all of that in place', async () => {
    const rs = await lab.client(lab.pod('a1'), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 3, timeoutMs: 3000 });
    expect(rs.every((r) => r.ok && r.pod === 'a1')).toBe(true);
  });
});
