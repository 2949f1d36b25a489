// The declared objects against their built files, checked per object: a struct
// or enum an object uses must be in its BTF and match its codec, one it does
// not use may be missing, and every program needs a declared hook. Reads BTF
// only (no root needed).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AFF_KEY, checkConstants, checkLayouts, describeLayout, FE_KEY } from '../../src/dataplane/bpf/layout.js';
import { checkObject } from '../../src/dataplane/bpf/loader.js';
import { ALL_OBJECTS, type ObjectSpec } from '../../src/dataplane/bpf/objects.js';
import { BPF_OBJECT_DIR, PACKAGE_ROOT } from '../../src/util/paths.js';

const FIXTURE = join(PACKAGE_ROOT, 'build', 'test-bpf', 'count-v1.bpf.o');
const count = (over: Partial<ObjectSpec>): ObjectSpec => ({
  file: 'count-v1.bpf.o',
  programs: { count_xdp: 'xdp', count_tc_in: 'tc-ingress', count_tc_out: 'tc-egress' },
  structs: [FE_KEY],
  enums: [],
  ...over,
});

describe('declared datapath objects', () => {
  for (const spec of ALL_OBJECTS) {
    it(`${spec.file}: matches its declaration and the codecs it uses`, () => {
      expect(checkObject(spec, join(BPF_OBJECT_DIR, spec.file))).toEqual([]);
    });
  }
});

describe('per-object checks (test fixture count.bpf.c)', () => {
  it('accepts an object that lacks the structs and enums it does not use', () => {
    expect(checkObject(count({}), FIXTURE)).toEqual([]);
  });

  it('refuses a struct the object is declared to use but lacks, naming it', () => {
    expect(checkObject(count({ structs: [FE_KEY, AFF_KEY] }), FIXTURE)).toEqual(['struct bpx_aff_key: not in the object\'s BTF']);
  });

  it('refuses a struct that differs from its codec, naming struct and member', () => {
    const fe = describeLayout(FE_KEY);
    const drifted = (name: string) => (name === 'bpx_fe_key' ? fe.replace('port:16:2', 'port:16:4') : null);
    expect(checkLayouts(drifted, [FE_KEY])).toEqual([expect.stringContaining('struct bpx_fe_key: BTF has')]);
  });

  it('checks only the enums named, and names one this build does not know', () => {
    expect(checkConstants(() => null, [])).toEqual([]);
    expect(checkConstants(() => 'BPX_FAMILY_V4=4;BPX_FAMILY_V6=6', ['bpx_family'])).toEqual([]);
    expect(checkConstants(() => null, ['bpx_nonesuch'])).toEqual(['enum bpx_nonesuch: unknown to TypeScript (no entry in CONSTANT_ENUMS)']);
  });

  it('refuses programs without a declared hook, and declared programs the object lacks', () => {
    expect(checkObject(count({ programs: { count_xdp: 'xdp', count_gone: 'xdp' } }), FIXTURE)).toEqual([
      'program count_tc_in: no hook declared for it (objects.ts)',
      'program count_tc_out: no hook declared for it (objects.ts)',
      'program count_gone: declared, but not in the object',
    ]);
    expect(checkObject(count({ programs: { count_xdp: 'xdp', '*': 'none' } }), FIXTURE)).toEqual([]);
  });
});
