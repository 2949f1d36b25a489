// The BPF objects of the datapath, declared in one place: each object's file,
// where each of its programs attaches, and which structs and enums of
// bpf/lib/maps.h (and reasons.h) it uses, so the loader checks each object
// against the TypeScript codecs for what that object uses, and nothing else.
import { AFF_KEY, AFF_VAL, BACKEND, CONSTANT_ENUMS, COUNTER, CT_KEY, CT_VAL, NAT_KEY, NAT_VAL, FE_KEY, FE_VAL, FLOW_KEY, FLOW_VAL, LOCAL_EP, LOCAL_EP_KEY, MAGLEV_ROW, MEMBER_KEY, RANGE_KEY, SET_KEY, SET_VAL, SK_RNAT_KEY, SK_RNAT_VAL, type StructLayout } from './layout.js';

/**
 * Where a program attaches.
 * - `cgroup`: the --cgroup-root, with the attach type of the program's section.
 * - `xdp`: every device of the datapath (native XDP, generic where the driver has none).
 * - `tc-ingress` / `tc-egress`: every device of the datapath (tcx, clsact where the kernel has no tcx).
 * - `none`: loaded, not attached (a tail-call target, a program for tests).
 */
export type Hook = 'cgroup' | 'xdp' | 'tc-ingress' | 'tc-egress' | 'none';

export interface ObjectSpec {
  /** File name in the object directory (build/bpf). */
  file: string;
  /** Program name -> hook; `*` covers every program not named. A program the declaration does not cover is an error. */
  programs: Readonly<Record<string, Hook>>;
  /** Structs the object uses: each must be in its BTF and match its codec. Any other codec's struct found in its BTF must match too. */
  structs: readonly StructLayout<string>[];
  /** Enums the object uses (by BTF name), checked the same way against CONSTANT_ENUMS. */
  enums: readonly string[];
}

/** The socket programs: connect/sendmsg/recvmsg/getpeername on the cgroup. */
export const SOCK_OBJECT: ObjectSpec = {
  file: 'sock.bpf.o',
  programs: { '*': 'cgroup' },
  structs: [FE_KEY, FE_VAL, SET_KEY, SET_VAL, BACKEND, MEMBER_KEY, SK_RNAT_KEY, SK_RNAT_VAL, FLOW_KEY, FLOW_VAL, AFF_KEY, AFF_VAL, COUNTER],
  // The zero-size anchors of struct bpx_counter put every enum into its BTF.
  enums: Object.keys(CONSTANT_ENUMS),
};

/** The packet programs of node devices: NodePort, ExternalIP and LoadBalancer traffic from outside (bpf/xdp.bpf.c). */
export const XDP_OBJECT: ObjectSpec = {
  file: 'xdp.bpf.o',
  programs: { bpx_xdp: 'xdp', bpx_xdp_pass: 'none', bpx_xdp_sctp: 'none' /* tail-called by bpx_xdp */ },
  structs: [FE_KEY, FE_VAL, SET_KEY, SET_VAL, BACKEND, MEMBER_KEY, AFF_KEY, AFF_VAL, CT_KEY, CT_VAL, NAT_KEY, NAT_VAL, MAGLEV_ROW, RANGE_KEY, LOCAL_EP_KEY, LOCAL_EP, COUNTER],
  enums: Object.keys(CONSTANT_ENUMS),
};

/** Their TC half: reverse NAT of local backends' replies (egress), the neighbour fallback (ingress) (bpf/tc.bpf.c). */
export const TC_OBJECT: ObjectSpec = {
  file: 'tc.bpf.o',
  programs: { bpx_tc_ingress: 'tc-ingress', bpx_tc_egress: 'tc-egress' },
  structs: [CT_KEY, CT_VAL, COUNTER],
  enums: Object.keys(CONSTANT_ENUMS),
};

/**
 * Every object the proxy loads, in load order (the first object to name a
 * pinned map creates it; the others reuse it). The packet objects attach to
 * the --devices only: with no devices they are loaded (their maps pinned)
 * and attached nowhere.
 */
export const DATAPATH_OBJECTS: readonly ObjectSpec[] = [SOCK_OBJECT, XDP_OBJECT, TC_OBJECT];

/**
 * A backend a sync removed from a service (struct bpx_sk_dead_key of
 * bpf/sockdestroy.bpf.c, defined beside the one program that reads it).
 */
export const SK_DEAD_KEY: StructLayout<'addr' | 'port' | 'proto' | 'family' | 'svc_id'> = {
  name: 'bpx_sk_dead_key',
  size: 24,
  fields: { addr: { offset: 0, size: 16 }, port: { offset: 16, size: 2 }, proto: { offset: 18, size: 1 }, family: { offset: 19, size: 1 }, svc_id: { offset: 20, size: 4 } },
};

/**
 * The UDP socket iterator that destroys connected sockets whose backend a
 * sync removed (bpf/sockdestroy.bpf.c). Optional: it needs kernel BTF and
 * bpf_sock_destroy (6.5+), so sock-destroy.ts loads it on its own, after the
 * datapath, and the proxy serves without it when it cannot load.
 */
export const SOCK_DESTROY_OBJECT: ObjectSpec = {
  file: 'sockdestroy.bpf.o',
  programs: { bpx_sock_destroy_udp: 'none' },
  structs: [SK_RNAT_KEY, SK_RNAT_VAL, SK_DEAD_KEY],
  enums: [],
};

/** The kernel-feature probes of the packet path (bpf/probe.bpf.c), test-run once at start by probe-xdp.ts; no maps. */
export const PROBE_OBJECT: ObjectSpec = {
  file: 'probe.bpf.o',
  programs: { bpx_probe_fib_src: 'none', bpx_probe_selftest: 'none' },
  structs: [],
  enums: [],
};

/** Every object a build makes: the datapath's and the optional ones (for the checks that read BTF). */
export const ALL_OBJECTS: readonly ObjectSpec[] = [...DATAPATH_OBJECTS, SOCK_DESTROY_OBJECT, PROBE_OBJECT];

/** The hook of `program` under `spec`, or undefined when the declaration does not cover it. */
export function hookOf(spec: ObjectSpec, program: string): Hook | undefined {
  return Object.hasOwn(spec.programs, program) ? spec.programs[program] : spec.programs['*'];
}
