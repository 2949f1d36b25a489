// The TypeScript map codecs against the BTF of the built objects: a drift
// between bpf/lib/maps.h and src/dataplane/bpf/layout.ts fails here (and the
// proxy refuses to load such an object too).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_LAYOUTS, CONSTANT_ENUMS, checkConstants, checkLayouts, describeLayout } from '../../src/dataplane/bpf/layout.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { ALL_OBJECTS } from '../../src/dataplane/bpf/objects.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';

const objects = readdirSync(BPF_OBJECT_DIR).filter((f) => f.endsWith('.bpf.o'));

/** The structs each object declares it uses (objects.ts), plus any other codec's struct its BTF has: all must match. */
function layoutsOf(file: string, h: native.ObjectHandle) {
  const spec = ALL_OBJECTS.find((o) => o.file === file);
  if (!spec) throw new Error(`${file} is built but not declared in ALL_OBJECTS`);
  return [...spec.structs, ...ALL_LAYOUTS.filter((l) => !spec.structs.includes(l) && native.btfStruct(h, l.name) !== null)];
}
const enumText = (values: Readonly<Record<string, number>>) => Object.entries(values).map(([k, v]) => `${k}=${v}`).join(';');

describe('map layouts', () => {
  it('finds the built objects', () => expect(objects).toEqual(expect.arrayContaining(['sock.bpf.o', 'xdp.bpf.o', 'tc.bpf.o'])));

  for (const file of objects) {
    it(`${file}: every codec matches BTF`, () => {
      const h = native.objectOpen(join(BPF_OBJECT_DIR, file));
      try {
        expect(checkLayouts((n) => native.btfStruct(h, n), layoutsOf(file, h))).toEqual([]);
        // The enums the object declares, plus any other it has (sockdestroy.bpf.o has none).
        const spec = ALL_OBJECTS.find((o) => o.file === file)!;
        const enums = [...spec.enums, ...Object.keys(CONSTANT_ENUMS).filter((e) => !spec.enums.includes(e) && native.btfEnum(h, e) !== null)];
        expect(checkConstants((n) => native.btfEnum(h, n), enums)).toEqual([]);
      } finally {
        native.objectClose(h);
      }
    });
  }

  it('reports a drifted codec by struct and member', () => {
    const fe = ALL_LAYOUTS.find((l) => l.name === 'bpx_fe_val')!;
    const btf = (name: string) => (name === 'bpx_fe_val' ? describeLayout(fe).replace('flags:12:2', 'flags:12:4') : describeLayout(ALL_LAYOUTS.find((l) => l.name === name)!));
    expect(checkLayouts(btf)).toEqual([expect.stringContaining('struct bpx_fe_val: BTF has')]);
  });

  it('reports a drop reason or event added in C without its row in reasons.ts, and a row out of order', () => {
    const btf = (extra: Record<string, Record<string, number>>) => (name: string) => enumText({ ...CONSTANT_ENUMS[name], ...extra[name] });
    expect(checkConstants(btf({}))).toEqual([]);
    expect(checkConstants(btf({ bpx_drop: { BPX_DROP_NEW_REASON: 99 } }))).toEqual(['enum bpx_drop: BPX_DROP_NEW_REASON is in BTF but unknown to TypeScript']);
    expect(checkConstants(btf({ bpx_event: { BPX_EVENT_SOCK_XLATE: 1, BPX_EVENT_SOCK_REJECT: 0 } }))).toEqual([
      'enum bpx_event: BPX_EVENT_SOCK_XLATE is 1 in BTF, 0 in TypeScript',
      'enum bpx_event: BPX_EVENT_SOCK_REJECT is 0 in BTF, 1 in TypeScript',
    ]);
  });
});
