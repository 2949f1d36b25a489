// Virtual servers <-> the text of `ipvsadm-restore` (ipvsadm -R) and
// `ipvsadm -S -n`, and the script that turns one table into another:
// -A/-E/-D for virtual servers, -a/-e/-d for real servers, only for what
// differs. Pure; exec.ts runs it.
import type { IPFamily, Protocol } from '../../model/types.js';
import { canonicalIP, compareIP, familyOf } from '../../util/ip.js';
import { sameOptions, vsKey, type RealServer, type VirtualServer } from './objects.js';

const PROTO_FLAG: Record<Protocol, string> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };
const FLAG_PROTO: Record<string, Protocol> = { '-t': 'TCP', '--tcp-service': 'TCP', '-u': 'UDP', '--udp-service': 'UDP', '--sctp-service': 'SCTP' };

function addrPort(family: IPFamily, address: string, port: number): string {
  return family === 'IPv4' ? `${address}:${port}` : `[${address}]:${port}`;
}

/** "-t 10.96.0.1:80", "-u [fd00::a]:53", "-f 65536 -6". */
export function serviceSpec(v: VirtualServer): string {
  if (v.proto === 'fwmark') return `-f ${v.fwmark}${v.family === 'IPv6' ? ' -6' : ''}`;
  return `${PROTO_FLAG[v.proto]} ${addrPort(v.family, v.address, v.port)}`;
}

export function serviceOptions(v: VirtualServer): string {
  return `-s ${v.scheduler}${v.persistence !== null ? ` -p ${v.persistence}` : ''}${v.flags.length > 0 ? ` -b ${v.flags.join(',')}` : ''}`;
}

/** Masquerading (-m: IPVS's NAT) is the only forwarding method that works for pods behind other nodes. */
function realLine(verb: '-a' | '-e', v: VirtualServer, r: RealServer): string {
  return `${verb} ${serviceSpec(v)} -r ${addrPort(v.family, r.address, r.port)} -m -w ${r.weight}`;
}

const realKey = (r: RealServer) => `${r.address} ${r.port}`;

export interface Script {
  lines: string[];
  upserts: number;
  deletes: number;
}

/** What turns `before` into `after` for the virtual servers in `keys` (all of both when omitted). */
export function ipvsScript(before: ReadonlyMap<string, VirtualServer>, after: ReadonlyMap<string, VirtualServer>, keys?: Iterable<string>): Script {
  const lines: string[] = [];
  const deletes: string[] = [];
  let upserts = 0;
  for (const key of keys ?? new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(key);
    const a = after.get(key);
    if (a && !b) {
      lines.push(`-A ${serviceSpec(a)} ${serviceOptions(a)}`, ...a.reals.map((r) => realLine('-a', a, r)));
      upserts += 1 + a.reals.length;
      continue;
    }
    if (b && !a) {
      deletes.push(`-D ${serviceSpec(b)}`); // its real servers go with it
      continue;
    }
    if (!a || !b) continue;
    if (!sameOptions(a, b)) {
      lines.push(`-E ${serviceSpec(a)} ${serviceOptions(a)}`);
      upserts++;
    }
    const old = new Map(b.reals.map((r) => [realKey(r), r]));
    const now = new Set(a.reals.map(realKey));
    for (const r of b.reals) {
      if (now.has(realKey(r))) continue;
      lines.push(`-d ${serviceSpec(b)} -r ${addrPort(b.family, r.address, r.port)}`);
      upserts++;
    }
    for (const r of a.reals) {
      const o = old.get(realKey(r));
      if (o && o.weight === r.weight) continue;
      lines.push(realLine(o ? '-e' : '-a', a, r));
      upserts++;
    }
  }
  return { lines: [...lines, ...deletes], upserts, deletes: deletes.length };
}

function parseAddrPort(text: string): { address: string; port: number } | null {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  const address = m ? canonicalIP(m[1]!) : null;
  return m && address ? { address, port: Number(m[2]) } : null;
}

export type VsFields = Pick<VirtualServer, 'family' | 'proto' | 'address' | 'port' | 'fwmark'>;

export interface ParsedLine {
  verb: '-A' | '-E' | '-D' | '-a' | '-e' | '-d';
  fields: VsFields;
  /** -A, -E: the service's options. */
  options: Pick<VirtualServer, 'scheduler' | 'persistence' | 'flags'>;
  /** -a, -e, -d: the real server. */
  real: RealServer | null;
}

/** One ipvsadm command line in the syntax we write and `ipvsadm -S -n` prints. Throws on anything else. */
export function parseLine(line: string): ParsedLine {
  const tk = line.trim().split(/\s+/).filter(Boolean);
  const verb = tk[0] as ParsedLine['verb'];
  if (!['-A', '-E', '-D', '-a', '-e', '-d'].includes(verb)) throw new Error(`not an ipvsadm command: "${line}"`);
  const opt = (...names: string[]) => {
    for (const name of names) {
      const i = tk.indexOf(name);
      if (i > 0) return tk[i + 1];
    }
    return undefined;
  };
  let fields: VsFields | null = null;
  for (const [flag, proto] of Object.entries(FLAG_PROTO)) {
    const spec = opt(flag);
    const ap = spec ? parseAddrPort(spec) : null;
    if (ap) fields = { family: familyOf(ap.address)!, proto, address: ap.address, port: ap.port, fwmark: 0 };
  }
  const fw = opt('-f', '--fwmark-service');
  if (fw !== undefined) fields = { family: tk.includes('-6') ? 'IPv6' : 'IPv4', proto: 'fwmark', address: '', port: 0, fwmark: Number(fw) };
  if (!fields) throw new Error(`no service in "${line}"`);
  const p = opt('-p', '--persistent');
  const flags = opt('-b', '--sched-flags');
  const options = { scheduler: opt('-s', '--scheduler') ?? 'wlc', persistence: p === undefined ? null : Number(p), flags: flags ? flags.split(',').sort() : [] };
  let real: RealServer | null = null;
  if (verb === '-a' || verb === '-e' || verb === '-d') {
    const r = parseAddrPort(opt('-r', '--real-server') ?? '');
    if (!r) throw new Error(`no real server in "${line}"`);
    real = { ...r, weight: Number(opt('-w', '--weight') ?? 1) };
  }
  return { verb, fields, options, real };
}

export function sortReals(v: VirtualServer): void {
  v.reals.sort((x, y) => compareIP(x.address, y.address) || x.port - y.port);
}

/**
 * Reads `ipvsadm -S -n` (-A and -a lines). Lines it does not understand
 * are errors: a table we cannot read is not one we may prune.
 */
export function parseSave(text: string): Map<string, VirtualServer> {
  const out = new Map<string, VirtualServer>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const l = parseLine(line);
    const key = vsKey(l.fields);
    if (l.verb === '-A') {
      out.set(key, { ...l.fields, ...l.options, reals: [] });
      continue;
    }
    const v = out.get(key);
    if (l.verb !== '-a' || !v) throw new Error(`ipvsadm -S -n: unexpected line "${line}"`);
    v.reals.push(l.real!);
  }
  for (const v of out.values()) sortReals(v);
  return out;
}
