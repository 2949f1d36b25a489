// A model of what a node's kernel holds for the ipvs mode: the IPVS table,
// the ipsets, the addresses on kube-ipvs0, the iptables tables (XtablesModel),
// and the node's own addresses. It applies exactly the commands the dataplane
// runs, with the kernel's errors (a service that exists, a destination that
// does not, an address bound twice, an entry for a set that does not exist),
// answers the listings, and is what the packet tracer (trace.ts) reads. For
// the tracer and for checking incremental syncs without root or IPVS.
import type { IPFamily } from '../../model/types.js';
import { canonicalIP } from '../../util/ip.js';
import { parseLine, serviceOptions, serviceSpec, sortReals } from './ipvsadm.js';
import { DUMMY_ALIAS, DUMMY_DEVICE, type SetType, type XtTable } from './names.js';
import { vsKey, type VirtualServer } from './objects.js';

/**
 * The iptables tables, as the iptables mode's XtablesModel holds them (the
 * tests hand one in: a mode's folder does not import another's).
 */
export interface XtTables {
  readonly families: Record<IPFamily, Record<XtTable, ReadonlyMap<string, { rules: readonly string[] }>>>;
  apply(family: IPFamily, text: string): void;
  save(family: IPFamily): string;
  dump(): string;
}

export interface ModelSet {
  type: SetType;
  family: 'inet' | 'inet6' | null;
  entries: Set<string>;
}

export class IpvsKernelModel {
  constructor(readonly xt: XtTables) {}

  readonly ipvs = new Map<string, VirtualServer>();
  readonly sets = new Map<string, ModelSet>();
  /** kube-ipvs0: null when absent. */
  dummy: { alias: string; addresses: Set<string> } | null = null;
  /** The node's own addresses (its interfaces, not kube-ipvs0): LOCAL to addrtype, where NodePorts live. */
  readonly nodeAddresses = new Set<string>();
  /** Connections IPVS counts per real server, "vsKey address port" -> ActiveConn + InActConn (tests set them). */
  readonly connections = new Map<string, number>();

  /** ipvsadm -R: one command per line, each applied on its own (not atomic: a failing line leaves the ones before it). */
  ipvsRestore(text: string): void {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const l = parseLine(line);
      const key = vsKey(l.fields);
      const v = this.ipvs.get(key);
      const fail = (why: string) => {
        throw new Error(`${why}: ${line}`);
      };
      const realAt = () => v!.reals.findIndex((r) => r.address === l.real!.address && r.port === l.real!.port);
      switch (l.verb) {
        case '-A':
          if (v) fail('Service already exists');
          this.ipvs.set(key, { ...l.fields, ...l.options, reals: [] });
          break;
        case '-E':
          if (!v) fail('No such service');
          Object.assign(v!, l.options);
          break;
        case '-D':
          if (!v) fail('No such service');
          this.ipvs.delete(key);
          break;
        case '-a':
          if (!v) fail('No such service');
          if (realAt() >= 0) fail('Destination already exists');
          v!.reals.push(l.real!);
          sortReals(v!);
          break;
        case '-e':
          if (!v || realAt() < 0) fail('No such destination');
          v!.reals[realAt()]!.weight = l.real!.weight;
          break;
        case '-d':
          if (!v || realAt() < 0) fail('No such destination');
          v!.reals.splice(realAt(), 1);
          break;
      }
    }
  }

  ipvsSave(): string {
    const lines: string[] = [];
    for (const v of this.ipvs.values()) {
      lines.push(`-A ${serviceSpec(v)} ${serviceOptions(v)}`);
      for (const r of v.reals) lines.push(`-a ${serviceSpec(v)} -r ${v.family === 'IPv4' ? `${r.address}:${r.port}` : `[${r.address}]:${r.port}`} -m -w ${r.weight}`);
    }
    return lines.length > 0 ? lines.join('\n') + '\n' : '';
  }

  /** `ipvsadm -L -n`, in ipvsadm 1.31's layout (print_service_entry), the connections as ActiveConn. */
  ipvsList(): string {
    const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'];
    const hostPort = (family: IPFamily, a: string, p: number) => (family === 'IPv4' ? `${a}:${p}` : `[${a}]:${p}`);
    for (const v of this.ipvs.values()) {
      const name = v.proto === 'fwmark' ? `FWM  ${v.fwmark}${v.family === 'IPv6' ? ' IPv6' : ''}` : `${v.proto.padEnd(4)} ${hostPort(v.family, v.address, v.port)}`;
      lines.push(`${name} ${v.scheduler}${v.persistence !== null ? ` persistent ${v.persistence}` : ''}`);
      for (const r of v.reals) {
        const n = this.connections.get(`${vsKey(v)} ${r.address} ${r.port}`) ?? 0;
        lines.push(`  -> ${hostPort(v.family, r.address, r.port).padEnd(28)} Masq    ${String(r.weight).padEnd(6)} ${String(n).padEnd(10)} 0         `);
      }
    }
    return lines.join('\n') + '\n';
  }

  /** ipset restore -exist: all or nothing, as ipset restore commits. */
  ipsetRestore(text: string): void {
    const work = new Map([...this.sets].map(([n, s]) => [n, { ...s, entries: new Set(s.entries) }]));
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const tk = line.trim().split(/\s+/);
      const [cmd, name] = tk;
      if (cmd === 'create') {
        const type = tk[2] as SetType;
        const fi = tk.indexOf('family');
        const family = fi > 0 ? (tk[fi + 1] as 'inet' | 'inet6') : null;
        const old = work.get(name!);
        if (old && (old.type !== type || old.family !== family)) throw new Error(`ipset: set ${name} exists with another type: ${line}`);
        if (!old) work.set(name!, { type, family, entries: new Set() });
        continue;
      }
      const set = work.get(name!);
      if (!set) throw new Error(`ipset: the set with the given name does not exist: ${line}`);
      if (cmd === 'add') set.entries.add(tk[2]!);
      else if (cmd === 'del') set.entries.delete(tk[2]!);
      else if (cmd === 'flush') set.entries.clear();
      else if (cmd === 'destroy') {
        if (this.setReferenced(name!)) throw new Error(`ipset: set ${name} is in use by a kernel component: ${line}`);
        work.delete(name!);
      } else throw new Error(`ipset: unknown command: ${line}`);
    }
    this.sets.clear();
    for (const [n, s] of work) this.sets.set(n, s);
  }

  private setReferenced(name: string): boolean {
    return (['IPv4', 'IPv6'] as IPFamily[]).some((f) => this.xt.save(f).includes(`--match-set ${name} `));
  }

  ipsetSave(): string {
    const lines: string[] = [];
    for (const [n, s] of this.sets) {
      lines.push(s.type === 'bitmap:port' ? `create ${n} ${s.type} range 0-65535` : `create ${n} ${s.type} family ${s.family} hashsize 1024 maxelem 262144`);
      for (const e of s.entries) lines.push(`add ${n} ${e}`);
    }
    return lines.length > 0 ? lines.join('\n') + '\n' : '';
  }

  /** `ip -batch -`: address add/del on kube-ipvs0; stops at the first error, as ip does. */
  ipBatch(text: string): void {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const m = /^address (add|del) (\S+)\/(\d+) dev (\S+)( nodad)?$/.exec(line);
      if (!m || m[4] !== DUMMY_DEVICE) throw new Error(`ip: unexpected batch line: ${line}`);
      if (!this.dummy) throw new Error(`Cannot find device "${DUMMY_DEVICE}"`);
      const a = canonicalIP(m[2]!)!;
      if (m[1] === 'add') {
        if (this.dummy.addresses.has(a)) throw new Error('RTNETLINK answers: File exists');
        this.dummy.addresses.add(a);
      } else {
        if (!this.dummy.addresses.delete(a)) throw new Error('RTNETLINK answers: Cannot assign requested address');
      }
    }
  }

  /** Addresses the kernel delivers locally: the node's, and those on kube-ipvs0. */
  isLocal(ip: string): boolean {
    return this.nodeAddresses.has(ip) || (this.dummy?.addresses.has(ip) ?? false);
  }

  /** A canonical text of everything, to compare two models. */
  dump(): string {
    const out: string[] = ['ipvs'];
    for (const k of [...this.ipvs.keys()].sort()) {
      const v = this.ipvs.get(k)!;
      out.push(`  ${k} ${serviceOptions(v)}`, ...v.reals.map((r) => `    ${r.address}:${r.port} w${r.weight}`));
    }
    out.push('ipsets');
    for (const n of [...this.sets.keys()].sort()) out.push(`  ${n}`, ...[...this.sets.get(n)!.entries].sort().map((e) => `    ${e}`));
    out.push(`${DUMMY_DEVICE}${this.dummy ? ` (alias ${this.dummy.alias})` : ' absent'}`, ...[...(this.dummy?.addresses ?? [])].sort().map((a) => `  ${a}`));
    return out.join('\n') + '\n' + this.xt.dump();
  }

  createDummy(alias = DUMMY_ALIAS): void {
    this.dummy = { alias, addresses: new Set() };
  }
}
