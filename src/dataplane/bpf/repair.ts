// Pins and links removed behind the proxy's back (`bpfproxy cleanup` run by
// hand, an `rm -rf` of the pin directory): the proxy still holds the maps and
// programs through its own handles, so on every full sync it checks that each
// pin it owns still exists, and puts back what is missing: a map is pinned
// again from the fd it holds (the programs keep using that very map), a link
// is made again by redoing its attachment. Before this, a cleanup left the
// service down while the proxy kept reporting successful syncs (issue 12).
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);
const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown } };
let objPinFn: ((fd: number, path: string) => number) | null = null;

/** libbpf's bpf_obj_pin: 0 or -errno. */
function objPin(fd: number, path: string): number {
  objPinFn ??= koffi.load('libbpf.so.1').func('int bpf_obj_pin(int fd, const char *pathname)') as (fd: number, path: string) => number;
  return objPinFn(fd, path);
}

/** Something this proxy pinned, and how to put it back. */
export type OwnedPin =
  | { kind: 'map'; name: string; path: string; fd: number }
  | { kind: 'link'; what: string; path: string; redo: () => void };

export interface RepairReport {
  /** What was missing and is back. */
  restored: string[];
  /** What was missing and could not be put back, with why. */
  failed: string[];
}

export function repairPins(pins: readonly OwnedPin[]): RepairReport {
  const report: RepairReport = { restored: [], failed: [] };
  for (const p of pins) {
    if (existsSync(p.path)) continue;
    const what = p.kind === 'map' ? `map pin ${p.path}` : `link ${p.path} (${p.what})`;
    try {
      // Mode 0700, as the pin directory is made (pindir.ts).
      mkdirSync(dirname(p.path), { recursive: true, mode: 0o700 });
      if (p.kind === 'map') {
        const ret = objPin(p.fd, p.path);
        if (ret < 0) throw new Error(`bpf_obj_pin: errno ${-ret}`);
      } else {
        p.redo();
      }
      report.restored.push(what);
    } catch (err) {
      report.failed.push(`${what}: ${(err as Error).message}`);
    }
  }
  return report;
}
