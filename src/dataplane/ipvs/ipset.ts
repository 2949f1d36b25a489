// Our ipsets <-> the text of `ipset restore` and `ipset save`, and the
// script that turns one set of entries into another. Pure; exec.ts runs it
// with -exist, so creating a set that exists (same type) and adding an entry
// that is there, or deleting one that is not, are no errors.
import type { IPFamily } from '../../model/types.js';
import { ALL_SET_IDS, OUR_SET_RE, setName, setType } from './names.js';

/** Enough for a large cluster's frontends; ipset refuses entries past it, and the sync reports that. */
export const SET_MAXELEM = 262144;

export function createLine(family: IPFamily, id: (typeof ALL_SET_IDS)[number]): string {
  const type = setType(id);
  const name = setName(family, id);
  if (type === 'bitmap:port') return `create ${name} bitmap:port range 0-65535`;
  return `create ${name} ${type} family ${family === 'IPv4' ? 'inet' : 'inet6'} hashsize 1024 maxelem ${SET_MAXELEM}`;
}

/** Every set of ours for the families, in creation order. */
export function createLines(families: readonly IPFamily[]): string[] {
  return families.flatMap((f) => ALL_SET_IDS.map((id) => createLine(f, id)));
}

/** Our sets and their entries ("SETNAME ENTRY"), from `ipset save` (other sets are skipped). */
export function parseIpsetSave(text: string): { sets: Set<string>; entries: Set<string> } {
  const sets = new Set<string>();
  const entries = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^(create|add) (\S+) (\S+)/.exec(line);
    if (!m || !OUR_SET_RE.test(m[2]!)) continue;
    if (m[1] === 'create') sets.add(m[2]!);
    else entries.add(`${m[2]} ${m[3]}`);
  }
  return { sets, entries };
}

/** add/del lines for the entries that differ, among `keys` (all of both when omitted). */
export function entryLines(before: ReadonlySet<string>, after: ReadonlySet<string>, keys?: Iterable<string>): { lines: string[]; upserts: number; deletes: number } {
  const lines: string[] = [];
  let upserts = 0;
  let deletes = 0;
  for (const k of keys ?? new Set([...before, ...after])) {
    const was = before.has(k);
    const is = after.has(k);
    if (is && !was) {
      lines.push(`add ${k}`);
      upserts++;
    } else if (was && !is) {
      lines.push(`del ${k}`);
      deletes++;
    }
  }
  return { lines, upserts, deletes };
}
