// The sock_diag way of moving connected UDP sockets off removed backends,
// without a kernel: the requests native/sockdiag.c sends (read back field by
// field, and the destination filter run through a model of the kernel's
// inet_diag bytecode audit and interpreter), and the pick, which must be
// the socket iterator's (bpf/sockdestroy.bpf.c).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAMILY_V4, FAMILY_V6, SK_RNAT_KEY } from '../../../src/dataplane/bpf/layout.js';
import { encodeDestroyRequest, encodeDumpRequest } from '../../../src/dataplane/bpf/sock-diag-native.js';
import { parseSocketLines, peerOf, rnatKey, selectSockets, targetLines, type Peer } from '../../../src/dataplane/bpf/sock-diag-select.js';
import type { RemovedBackend } from '../../../src/dataplane/bpf/udp-removed.js';
import { NATIVE_LIBRARY } from '../../../src/util/paths.js';
import { plannedBackend } from '../../helpers/planned.js';

// UAPI numbers (linux/sock_diag.h, linux/inet_diag.h, linux/netlink.h).
const SOCK_DIAG_BY_FAMILY = 20;
const SOCK_DESTROY = 21;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const INET_DIAG_REQ_BYTECODE = 1;
const BC_JMP = 1;
const BC_D_COND = 8;
const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_UDP = 17;
const NLMSG_HDRLEN = 16;
const REQ_V2_LEN = 56;

const removed = (svcId: number, address: string, port = 53): RemovedBackend => ({
  svcId, svcKey: `default/s${svcId}:dns/${address.includes(':') ? 'IPv6' : 'IPv4'}`, backend: plannedBackend(svcId * 100, address, port), family: address.includes(':') ? 'IPv6' : 'IPv4',
});
const hex = (ip: string) => (ip.includes(':') ? ip : ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(''));
const MAPPED_PREFIX = '00000000000000000000ffff';
const mapped = (v4: string) => `${MAPPED_PREFIX}${hex(v4)}`;

/**
 * The kernel's inet_diag_bc_audit (the request is refused with EINVAL when
 * it fails) and inet_diag_bc_run for a destination condition, as in
 * net/ipv4/inet_diag.c: a socket is listed when the run ends exactly at the
 * bytecode's end.
 */
function bytecodeOf(req: Buffer): Buffer | null {
  const at = NLMSG_HDRLEN + REQ_V2_LEN;
  if (req.readUInt32LE(0) <= at) return null;
  expect(req.readUInt16LE(at + 2)).toBe(INET_DIAG_REQ_BYTECODE);
  return req.subarray(at + 4, at + req.readUInt16LE(at));
}
function audit(bc: Buffer): void {
  const yesChain = new Set<number>();
  for (let p = 0; p < bc.length; p += bc[p + 1]!) yesChain.add(p);
  const onYesChain = (target: number) => yesChain.has(target);
  let p = 0;
  while (p < bc.length) {
    const [code, yes, no] = [bc[p]!, bc[p + 1]!, bc.readUInt16LE(p + 2)];
    const len = bc.length - p;
    const min = code === BC_D_COND ? 4 + 8 + (bc[p + 4] === AF_INET ? 4 : 16) : 4;
    expect([BC_JMP, BC_D_COND]).toContain(code);
    expect(no >= min && no <= len + 4 && no % 4 === 0, `op at ${p}: no=${no}`).toBe(true);
    if (no < len) expect(onYesChain(p + no), `op at ${p}: its "no" lands off the yes chain`).toBe(true);
    expect(yes >= min && yes <= len + 4 && yes % 4 === 0, `op at ${p}: yes=${yes}`).toBe(true);
    p += yes;
  }
  expect(p).toBe(bc.length);
}
function accepts(bc: Buffer, family: number, dst: string, dport: number): boolean {
  const addr = Buffer.from(dst, 'hex');
  let p = 0;
  while (p < bc.length) {
    const [code, yes, no] = [bc[p]!, bc[p + 1]!, bc.readUInt16LE(p + 2)];
    let ok = false; // a jump always takes "no"
    if (code === BC_D_COND) {
      const cf = bc[p + 4]!;
      const cport = bc.readInt32LE(p + 8);
      const caddr = bc.subarray(p + 12, p + 12 + (cf === AF_INET ? 4 : 16));
      const portOk = cport === -1 || cport === dport;
      // An IPv4 condition matches an IPv4-mapped peer of an IPv6 socket.
      const ours = cf === family ? addr : family === AF_INET6 && cf === AF_INET && addr.subarray(0, 12).toString('hex') === MAPPED_PREFIX ? addr.subarray(12) : null;
      ok = portOk && ours !== null && ours.equals(caddr);
    }
    p += ok ? yes : no;
  }
  return p === bc.length;
}

const native = existsSync(NATIVE_LIBRARY);
if (!native) console.log(`sock_diag request encoding tests skipped: ${NATIVE_LIBRARY} is not built (make native)`);

describe.skipIf(!native)('the sock_diag requests', () => {
  it('SOCK_DESTROY carries the dumped socket id: addresses, ports (network order), device and both cookie halves', () => {
    const req = encodeDestroyRequest(`${0x1122334455667788n} 4 0af40103 41053 0af40a0a 53 7`, 99);
    expect(req.length).toBe(NLMSG_HDRLEN + REQ_V2_LEN);
    expect(req.readUInt32LE(0)).toBe(req.length);
    expect(req.readUInt16LE(4)).toBe(SOCK_DESTROY);
    expect(req.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_ACK);
    expect(req.readUInt32LE(8)).toBe(99);
    const r = req.subarray(NLMSG_HDRLEN);
    expect([r[0], r[1]]).toEqual([AF_INET, IPPROTO_UDP]);
    expect(r.readUInt16BE(8)).toBe(41053);
    expect(r.readUInt16BE(10)).toBe(53);
    expect(r.subarray(12, 16).toString('hex')).toBe('0af40103');
    expect(r.subarray(28, 32).toString('hex')).toBe('0af40a0a');
    expect(r.readUInt32LE(44)).toBe(7);
    expect([r.readUInt32LE(48), r.readUInt32LE(52)]).toEqual([0x55667788, 0x11223344]);
  });

  it('SOCK_DESTROY of an IPv6 socket keeps its 16-byte (IPv4-mapped) addresses: the kernel looks those up as IPv4', () => {
    const r = encodeDestroyRequest(`5 6 ${mapped('10.244.1.3')} 41057 ${mapped('10.244.10.10')} 53 0`, 1).subarray(NLMSG_HDRLEN);
    expect(r[0]).toBe(AF_INET6);
    expect(r.subarray(12, 28).toString('hex')).toBe(mapped('10.244.1.3'));
    expect(r.subarray(28, 44).toString('hex')).toBe(mapped('10.244.10.10'));
  });

  it('refuses a socket line it cannot read', () => {
    expect(() => encodeDestroyRequest('5 4 0af4 1 0af40a0a 53 0', 1)).toThrow(/encode sock_diag destroy/);
    expect(() => encodeDestroyRequest('5 5 0af40103 1 0af40a0a 53 0', 1)).toThrow(/encode sock_diag destroy/);
  });

  it('the dump asks for connected UDP sockets of one family, filtered to the removed backends (IPv4 ones also as mapped peers of IPv6 sockets)', () => {
    const targets = targetLines([removed(7, '10.244.10.10'), removed(7, '10.244.10.11', 5353), removed(9, 'fd00:244:1::10')]);
    const v4 = encodeDumpRequest(4, targets, 3);
    expect(v4.readUInt16LE(4)).toBe(SOCK_DIAG_BY_FAMILY);
    expect(v4.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_DUMP);
    const r = v4.subarray(NLMSG_HDRLEN);
    expect([r[0], r[1], r.readUInt32LE(4)]).toEqual([AF_INET, IPPROTO_UDP, 1 << 1 /* TCP_ESTABLISHED: connected */]);
    const bc4 = bytecodeOf(v4)!;
    audit(bc4);
    expect(accepts(bc4, AF_INET, hex('10.244.10.10'), 53)).toBe(true);
    expect(accepts(bc4, AF_INET, hex('10.244.10.11'), 5353)).toBe(true);
    expect(accepts(bc4, AF_INET, hex('10.244.10.11'), 53)).toBe(false);
    expect(accepts(bc4, AF_INET, hex('10.244.10.12'), 53)).toBe(false);

    const v6 = encodeDumpRequest(6, targets, 4);
    expect(v6[NLMSG_HDRLEN]).toBe(AF_INET6);
    const bc6 = bytecodeOf(v6)!;
    audit(bc6);
    expect(accepts(bc6, AF_INET6, 'fd000244000100000000000000000010', 53)).toBe(true);
    expect(accepts(bc6, AF_INET6, mapped('10.244.10.10'), 53)).toBe(true);
    expect(accepts(bc6, AF_INET6, mapped('10.244.10.10'), 54)).toBe(false);
    expect(accepts(bc6, AF_INET6, 'fd000244000100000000000000000011', 53)).toBe(false);
  });

  it('asks nothing of a family without targets, and lists every connected socket when the targets outgrow one filter', () => {
    expect(encodeDumpRequest(4, targetLines([removed(9, 'fd00:244:1::10')]), 1).length).toBe(0);
    const many = targetLines(Array.from({ length: 3000 }, (_, i) => removed(1, `fd00:244:1::${(i + 1).toString(16)}`)));
    const req = encodeDumpRequest(6, many, 1);
    expect(req.length).toBe(NLMSG_HDRLEN + REQ_V2_LEN);
    expect(bytecodeOf(req)).toBeNull();
    // Just under the limit, the filter is still there and still passes the audit.
    const fits = encodeDumpRequest(6, targetLines(Array.from({ length: 2000 }, (_, i) => removed(1, `fd00:244:1::${(i + 1).toString(16)}`))), 1);
    audit(bytecodeOf(fits)!);
  });
});

describe('which sockets the sock_diag way destroys (the iterator\'s rule)', () => {
  const gone = [removed(7, '10.244.10.10'), removed(9, 'fd00:244:1::10')];
  const line = (cookie: number, fam: 4 | 6, dst: string, dport = 53) => `${cookie} ${fam} ${fam === 4 ? '0af40103' : mapped('10.244.1.3')} 40000 ${dst} ${dport} 0`;
  /** bpx_sk_rnat_v1 as the connect hook left it: (cookie, peer) -> service. */
  const translated = new Map<string, number>();
  const hooked = (cookie: number, peer: Peer, svc: number) => translated.set(rnatKey(BigInt(cookie), peer).toString('hex'), svc);
  const serviceOf = (cookie: bigint, peer: Peer) => translated.get(rnatKey(cookie, peer).toString('hex')) ?? 0;
  const v4peer = (ip: string, port = 53): Peer => ({ family: FAMILY_V4, addr: Buffer.from(hex(ip), 'hex'), port });
  hooked(1, v4peer('10.244.10.10'), 7); // through the service that lost the backend
  hooked(2, v4peer('10.244.10.10'), 8); // through another service that keeps it
  hooked(4, v4peer('10.244.10.10'), 7); // an IPv6 socket to the IPv4-mapped ClusterIP
  hooked(5, { family: FAMILY_V6, addr: Buffer.from('fd000244000100000000000000000010', 'hex'), port: 53 }, 9);

  it('destroys connected sockets the connect hook sent to a backend their service removed, IPv4-mapped ones included', () => {
    const sockets = parseSocketLines([
      line(1, 4, hex('10.244.10.10')),
      line(2, 4, hex('10.244.10.10')), // the other service still has it
      line(3, 4, hex('10.244.10.10')), // connected to the backend's address directly: not the proxy's
      line(4, 6, mapped('10.244.10.10')),
      line(5, 6, 'fd000244000100000000000000000010'),
      line(6, 4, hex('10.244.10.10'), 0), // no peer port
      '7 4 0af4', // a line cut at a buffer's end
    ].join('\n'));
    expect(sockets.map((s) => Number(s.cookie))).toEqual([1, 2, 3, 4, 5, 6]);
    const picked = selectSockets(sockets, gone, serviceOf);
    expect(picked.map((p) => [Number(p.socket.cookie), p.svcId])).toEqual([[1, 7], [4, 7], [5, 9]]);
    // The destroy request is made from the line exactly as dumped.
    expect(picked[1]!.socket.line).toBe(line(4, 6, mapped('10.244.10.10')));
  });

  it('keys an IPv4-mapped peer as the IPv4 backend, as sk_peer() does', () => {
    const [s] = parseSocketLines(line(4, 6, mapped('10.244.10.10')));
    const peer = peerOf(s!)!;
    expect(peer.family).toBe(FAMILY_V4);
    expect(Buffer.from(peer.addr).toString('hex')).toBe(hex('10.244.10.10'));
  });

  it('looks the socket up under the bpx_sk_rnat_key layout: cookie in host order, address, port in network order, family', () => {
    const key = rnatKey(0x0102030405060708n, v4peer('10.244.10.10', 5353));
    const f = SK_RNAT_KEY.fields;
    expect(key.length).toBe(SK_RNAT_KEY.size);
    expect(key.readBigUInt64LE(f.cookie.offset)).toBe(0x0102030405060708n);
    expect(key.subarray(f.addr.offset, f.addr.offset + 16).toString('hex')).toBe(`${hex('10.244.10.10')}${'0'.repeat(24)}`);
    expect(key.readUInt16BE(f.port.offset)).toBe(5353);
    expect(key[f.family.offset]).toBe(FAMILY_V4);
  });

  it('asks the kernel about each removed backend once', () => {
    expect(targetLines([removed(7, '10.244.10.10'), removed(8, '10.244.10.10'), removed(9, 'fd00:244:1::10', 5353)]).split('\n'))
      .toEqual([`${hex('10.244.10.10')} 53`, 'fd000244000100000000000000000010 5353']);
  });
});
