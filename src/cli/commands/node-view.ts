// The node-side commands: `bpfproxy status | services | trace | conntrack`.
// They read what is programmed on this node (the pins under --bpf-fs and the
// state file the proxy writes beside its lock) and work while the proxy is
// down. Each parses its own options here; src/config/flags.ts lists them.
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_PIN_PATH } from '../../config/config.js';
import type { NodeViewCommand } from '../../config/flags.js';
import { readNodeState, statePathFor, type NodeState } from '../../dataplane/state-file.js';
import { decodePlan } from '../../dataplane/state-plan.js';
import { AFF_KEY } from '../../dataplane/bpf/layout.js';
import { filterFlows, formatFlows, readFlows } from './conntrack.js';
import { readLb } from './lb-view.js';
import { hasPins, withPinned } from './pins.js';
import { formatServices, rowsFromLb, rowsFromPlan, type ServiceRow } from './service-rows.js';
import { formatStatus, readStatus } from './status.js';
import { formatBpfTrace, formatRuleTrace, parseTraceArgs, traceBpf, traceRules } from './trace.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** A failure to report in one line (exit 1), not a crash. */
class ViewError extends Error {}

interface Common {
  bpfFs: string;
  output: 'table' | 'json';
}

function common(c: Command): Command {
  return c
    .addOption(new Option('--bpf-fs <dir>', 'bpffs directory the proxy pins under, as given to `bpfproxy run`').default(DEFAULT_PIN_PATH))
    .addOption(new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table'));
}

interface Loaded {
  pinDir: string;
  statePath: string;
  state: NodeState | null;
  pins: boolean;
}

/** The state file and whether pins are there; a clear error when neither is. */
function load(o: Common): Loaded {
  const statePath = statePathFor(o.bpfFs);
  let state: NodeState | null;
  try {
    state = readNodeState(statePath);
  } catch (err) {
    throw new ViewError(`cannot read the state file: ${(err as Error).message}`);
  }
  const pins = hasPins(o.bpfFs);
  if (!state && !pins) throw new ViewError(`no bpfproxy state under ${o.bpfFs}: is it running in bpf mode? (no pins there, and no state file at ${statePath})`);
  return { pinDir: o.bpfFs, statePath, state, pins };
}

/** bpf mode reads the maps; the rule modes the plan their state file keeps. */
function serviceRows(l: Loaded): ServiceRow[] {
  if (l.state && l.state.mode !== 'bpf') {
    if (!l.state.catalog.plan) throw new ViewError(`the state file of this ${l.state.mode} proxy holds no plan`);
    return rowsFromPlan([...decodePlan(l.state.catalog.plan).services.values()]);
  }
  const lb = readLb(l.pinDir);
  if (!lb) throw new ViewError(`no bpfproxy load-balancing maps under ${l.pinDir}: is it running in bpf mode?`);
  return rowsFromLb(lb, l.state);
}

const json = (v: unknown) => `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`;

/** Affinity entries per set, from the pinned affinity LRU (how many clients a set remembers). */
function affinityCounter(pinDir: string): (set: number) => number {
  let counts: Map<number, number> | null = null;
  return (set) => {
    counts ??= withPinned(pinDir, 'bpx_aff_v1', (m) => {
      const out = new Map<number, number>();
      if (!m) return out;
      const d = m.dump();
      for (let i = 0; i < d.count; i++) {
        const s = d.keys.readUInt32LE(i * AFF_KEY.size + AFF_KEY.fields.set.offset);
        out.set(s, (out.get(s) ?? 0) + 1);
      }
      return out;
    });
    return counts.get(set) ?? 0;
  };
}

function build(name: NodeViewCommand, io: Io): Command {
  const program = new Command(`bpfproxy ${name}`).exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  switch (name) {
    case 'status':
      return common(program)
        .description('mode and why, version, last sync and its duration, counts, each pinned map\'s fill, the attachments in place; works while the proxy is down')
        .action((o: Common) => {
          const l = load(o);
          const s = readStatus(l.pinDir, l.statePath, l.state);
          io.out(o.output === 'json' ? json(s) : formatStatus(s, Date.now()));
        });
    case 'services':
      return common(program)
        .description('every frontend, its type, flags (affinity, Local policy, source ranges) and backends with their state and node: from the maps in bpf mode, from the last sync\'s plan in the rule modes')
        .action((o: Common) => {
          const rows = serviceRows(load(o));
          io.out(o.output === 'json' ? json(rows) : formatServices(rows));
        });
    case 'trace':
      return common(program)
        .description('which backend a new connection from SRC to DST:PORT/PROTO would reach, and why: replayed over the maps in bpf mode, through the packet tracer over the last sync\'s rules in the rule modes')
        .argument('<src>', 'client address')
        .argument('<dst:port/proto>', 'e.g. 10.96.0.10:80/tcp, [fd00:96::1]:53/udp (the protocol defaults to tcp)')
        .option('--from-node', 'rule modes: the connection is made by a process of the node itself (the output hook), not by a pod or the network')
        .action((src: string, target: string, o: Common & { fromNode?: boolean }) => {
          let q;
          try {
            q = parseTraceArgs(src, target);
          } catch (err) {
            throw new CommanderError(2, 'bpfproxy.usage', `error: ${(err as Error).message}`);
          }
          const l = load(o);
          if (l.state && l.state.mode !== 'bpf') {
            const t = traceRules(l.state, q, o.fromNode === true);
            io.out(o.output === 'json' ? json(t) : formatRuleTrace(t));
            return;
          }
          const lb = readLb(l.pinDir);
          if (!lb) throw new ViewError(`no bpfproxy load-balancing maps under ${l.pinDir}: is it running in bpf mode?`);
          const t = traceBpf(lb, l.state, q, affinityCounter(l.pinDir));
          io.out(o.output === 'json' ? json(t) : formatBpfTrace(t, l.pinDir));
        });
    case 'conntrack':
      return common(program)
        .description('flows the XDP datapath tracks (client, frontend, backend, NAT, idle time), from its pinned conntrack map')
        .option('--src <ip>', 'only flows from this client')
        .option('--dst <ip>', 'only flows to this frontend or backend address')
        .addOption(new Option('--proto <proto>', 'only this protocol').choices(['tcp', 'udp', 'TCP', 'UDP']))
        .action((o: Common & { src?: string; dst?: string; proto?: string }) => {
          const l = load(o);
          const flows = readFlows(l.pinDir);
          if (flows === null) throw new ViewError(`no conntrack map pinned under ${l.pinDir}: the XDP datapath is loaded only with --devices`);
          const shown = filterFlows(flows, { src: o.src, dst: o.dst, protocol: o.proto });
          io.out(o.output === 'json' ? json(shown) : formatFlows(shown));
        });
  }
}

/** Runs one node-view command; returns the exit code (0 done, 1 nothing to read or a failure, 2 usage). */
export function runNodeView(name: NodeViewCommand, argv: readonly string[], io: Io = processIo): number {
  try {
    build(name, io).parse([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return 0;
      if (err.code === 'bpfproxy.usage') io.err(`bpfproxy ${name}: ${err.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    io.err(`bpfproxy ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}
