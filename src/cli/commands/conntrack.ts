// `bpfproxy conntrack`: the flows the XDP datapath tracks, one line per flow
// as `conntrack -L` prints them, from the pinned conntrack map. Each field is
// read at the offset the codec declares (layout.ts CT_KEY / CT_VAL, checked
// against the objects' BTF at every load), and a pinned map whose sizes are
// not this build's is refused rather than misread: the XDP maps are still
// changing (issue 7).
import { readdirSync } from 'node:fs';
import { CT_KEY, CT_VAL, PROTO_NAME, readAddr } from '../../dataplane/bpf/layout.js';
import { canonicalIP } from '../../util/ip.js';
import type { Dump } from './lb-view.js';
import { withPinned } from './pins.js';
import { age, endpoint, formatTable } from './table.js';

/** bpf/lib/maps.h enum bpx_ct_dir. */
const CT_ORIG = 0;
/** bpf/lib/conntrack.h enum bpx_ct_flag. */
const CTF_LOCAL = 1 << 0;
const CTF_SNAT = 1 << 1;
const CTF_SCTP_SHUTDOWN = 1 << 2;
const CTF_SCTP_CLOSED = 1 << 3;

export interface Flow {
  protocol: string;
  client: string;
  clientPort: number;
  frontend: string;
  frontendPort: number;
  backendId: number;
  backend: string;
  backendPort: number;
  /** The source the flow leaves with towards a remote backend (node address and NAT port), or null (local backend: DNAT only). */
  snat: { address: string; port: number } | null;
  local: boolean;
  /**
   * What the datapath knows of the association's end (SCTP only, bpf/lib/sctp-ct.h):
   * CLOSED after an ABORT or SHUTDOWN COMPLETE (10 s), SHUTDOWN after a SHUTDOWN
   * or SHUTDOWN ACK (3 s), ESTABLISHED otherwise; null for TCP and UDP, whose
   * states XDP does not track (their entries idle out).
   */
  state: 'ESTABLISHED' | 'SHUTDOWN' | 'CLOSED' | null;
  /** Seconds since the last packet (the entry's last_ns against CLOCK_MONOTONIC). */
  idle: number;
}

const u16be = (b: Buffer, o: number) => b.readUInt16BE(o);

/** The flows of a conntrack dump: its ORIG entries (a REPLY entry mirrors one of them). */
export function decodeFlows(d: Dump, nowNs: bigint): Flow[] {
  const out: Flow[] = [];
  const k = CT_KEY.fields;
  const v = CT_VAL.fields;
  for (let i = 0; i < d.count; i++) {
    const ko = i * CT_KEY.size;
    const vo = i * d.valueStride;
    if (d.keys.readUInt8(ko + k.dir.offset) !== CT_ORIG) continue;
    const family = d.keys.readUInt8(ko + k.family.offset);
    const flags = d.values.readUInt8(vo + v.flags.offset);
    const last = d.values.readBigUInt64LE(vo + v.last_ns.offset);
    const protocol = PROTO_NAME[d.keys.readUInt8(ko + k.proto.offset)] ?? String(d.keys.readUInt8(ko + k.proto.offset));
    out.push({
      protocol,
      client: readAddr(d.keys, ko + k.saddr.offset, family),
      clientPort: u16be(d.keys, ko + k.sport.offset),
      frontend: readAddr(d.keys, ko + k.daddr.offset, family),
      frontendPort: u16be(d.keys, ko + k.dport.offset),
      backendId: d.values.readUInt32LE(vo + v.backend.offset),
      backend: readAddr(d.values, vo + v.addr.offset, family),
      backendPort: u16be(d.values, vo + v.port.offset),
      snat: flags & CTF_SNAT ? { address: readAddr(d.values, vo + v.nat_addr.offset, family), port: u16be(d.values, vo + v.nat_port.offset) } : null,
      local: (flags & CTF_LOCAL) !== 0,
      state: protocol !== 'SCTP' ? null : flags & CTF_SCTP_CLOSED ? 'CLOSED' : flags & CTF_SCTP_SHUTDOWN ? 'SHUTDOWN' : 'ESTABLISHED',
      idle: nowNs >= last ? Number(nowNs - last) / 1e9 : 0,
    });
  }
  return out;
}

export interface FlowFilter { src?: string; dst?: string; protocol?: string }

export function filterFlows(flows: readonly Flow[], f: FlowFilter): Flow[] {
  const src = f.src ? canonicalIP(f.src) : null;
  const dst = f.dst ? canonicalIP(f.dst) : null;
  if (f.src && !src) throw new Error(`--src ${JSON.stringify(f.src)} is not an IP address`);
  if (f.dst && !dst) throw new Error(`--dst ${JSON.stringify(f.dst)} is not an IP address`);
  const proto = f.protocol?.toUpperCase();
  return flows.filter((x) => (!src || x.client === src) && (!dst || x.frontend === dst || x.backend === dst) && (!proto || x.protocol === proto));
}

export function formatFlows(flows: readonly Flow[]): string {
  const rows = [...flows]
    .sort((a, b) => a.idle - b.idle)
    .map((x) => [
      x.protocol.toLowerCase(), x.state ?? '-', endpoint(x.client, x.clientPort), endpoint(x.frontend, x.frontendPort), `${x.backendId} => ${endpoint(x.backend, x.backendPort)}`,
      x.snat ? `snat ${endpoint(x.snat.address, x.snat.port)}` : x.local ? 'dnat (local)' : 'dnat', age(x.idle),
    ]);
  return formatTable([
    { title: 'PROTO', min: 5 }, { title: 'STATE', min: 5 }, { title: 'CLIENT', min: 21 }, { title: 'FRONTEND', min: 21 }, { title: 'BACKEND', min: 28 }, { title: 'NAT', min: 26 }, { title: 'IDLE', min: 6, right: true },
  ], rows);
}

/** The pinned conntrack map's name (bpx_ct_vN: a layout change renames it), or null. */
export function conntrackMapName(pinDir: string): string | null {
  return readdirSync(pinDir).filter((n) => /^bpx_ct_v\d+$/.test(n)).sort().at(-1) ?? null;
}

/** The flows pinned under `pinDir`; null when no conntrack map is pinned there. Throws when its layout is not this build's. */
export function readFlows(pinDir: string): Flow[] | null {
  const name = conntrackMapName(pinDir);
  if (!name) return null;
  return withPinned(pinDir, name, (m) => {
    if (!m) return null;
    if (m.keySize !== CT_KEY.size || m.valueSize !== CT_VAL.size) {
      throw new Error(`${name} has ${m.keySize}-byte keys and ${m.valueSize}-byte values; this build reads ${CT_KEY.name} (${CT_KEY.size}) and ${CT_VAL.name} (${CT_VAL.size}): run the bpfproxy that pinned it`);
    }
    return decodeFlows(m.dump(), process.hrtime.bigint());
  });
}
