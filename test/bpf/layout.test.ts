// The TypeScript map codecs against the BTF of the built objects: a drift
// between bpf/lib/maps.h and src/dataplane/bpf/layout.ts fails here (and the
// proxy refuses to load such an object too).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_LAYOUTS, checkConstants, checkLayouts, describeLayout } from '../../src/dataplane/bpf/layout.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';

const objects = readdirSync(BPF_OBJECT_DIR).filter((f) => f.endsWith('.bpf.o'));

describe('map layouts', () => {
  it('finds the built objects', () => expect(objects).toContain('sock.bpf.o'));

  for (const file of objects) {
    it(`${file}: every codec matches BTF`, () => {
      const h = native.objectOpen(join(BPF_OBJECT_DIR, file));
      try {
        expect(checkLayouts((n) => native.btfStruct(h, n))).toEqual([]);
        expect(checkConstants((n) => native.btfEnum(h, n))).toEqual([]);
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
});
