// Runs the loader in a separate process, as the proxy would, so a lab test can
// run it inside a node's network namespace (device names and ifindexes are per
// namespace) and see what outlives it. One JSON argument; prints one JSON line:
// { attachments, logs } or { error, logs }. Started through vite-node by
// test/bpf/attach.test.ts.
import { pino } from 'pino';
import { ALL_LAYOUTS } from '../../../src/dataplane/bpf/layout.js';
import { cleanupPins, loadDatapath } from '../../../src/dataplane/bpf/loader.js';
import type { Hook, ObjectSpec } from '../../../src/dataplane/bpf/objects.js';
import type { TcMode, XdpMode } from '../../../src/dataplane/bpf/attach.js';

interface Request {
  action: 'load' | 'cleanup';
  pinDir: string;
  objectDir?: string;
  objects?: { file: string; programs: Record<string, Hook>; structs: string[]; enums?: string[] }[];
  devices?: string[];
  cgroupRoot?: string;
  tc?: TcMode;
  xdp?: XdpMode;
}

const req = JSON.parse(process.argv[2] ?? '{}') as Request;
const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line)); } });

function specOf(o: NonNullable<Request['objects']>[number]): ObjectSpec {
  const structs = o.structs.map((n) => {
    const l = ALL_LAYOUTS.find((x) => x.name === n);
    if (!l) throw new Error(`no codec for struct ${n}`);
    return l;
  });
  return { file: o.file, programs: o.programs, structs, enums: o.enums ?? [] };
}

try {
  if (req.action === 'cleanup') {
    const removed = cleanupPins(req.pinDir, log);
    process.stdout.write(`${JSON.stringify({ removed, logs })}\n`);
  } else {
    const dp = loadDatapath({
      pinDir: req.pinDir, mapSizes: {}, log, objectDir: req.objectDir, objects: req.objects?.map(specOf),
      devices: req.devices, cgroupRoot: req.cgroupRoot, tc: req.tc, xdp: req.xdp,
    });
    const out = { attachments: dp.attachments, maps: dp.mapNames, logs };
    dp.close();
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: (err as Error).message, logs })}\n`);
}
