// Config validates map-size names; the bpf dataplane declares the names it
// understands. Neither imports the other (the layers read one way), so this
// test is what keeps the two lists from drifting apart.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAP_SIZES, MAP_NAMES } from '../../../src/config/config.js';
import { MAP_SIZE_SETTINGS, sizeSettingOf, sizesByMap } from '../../../src/dataplane/bpf/sizes.js';

describe('map-size settings', () => {
  it('config and the bpf dataplane know the same setting names', () => {
    expect([...MAP_NAMES].sort()).toEqual(Object.keys(MAP_SIZE_SETTINGS).sort());
  });

  it('every pinned map is sized by exactly one setting', () => {
    const maps = Object.values(MAP_SIZE_SETTINGS).flat();
    expect(new Set(maps).size).toBe(maps.length);
  });

  it('turns the configured sizes into sizes per pinned map', () => {
    const byMap = sizesByMap({ ...DEFAULT_MAP_SIZES, backendSets: 1000 });
    expect(byMap.bpx_set_v1).toBe(1000);
    expect(byMap.bpx_member_v1).toBe(1000);
    expect(byMap.bpx_fe_v1).toBe(DEFAULT_MAP_SIZES.frontends);
    expect(Object.keys(byMap).sort()).toEqual(Object.values(MAP_SIZE_SETTINGS).flat().sort());
  });

  it('refuses a setting name it does not know instead of ignoring it', () => {
    expect(() => sizesByMap({ services: 10 })).toThrow(/unknown map-size setting "services".*frontends/);
  });

  it('names the setting to raise when a map is full', () => {
    expect(sizeSettingOf('bpx_member_v1')).toBe('bpf.mapSizes.backendSets');
    expect(sizeSettingOf('bpx_nothing')).toBe('the size of bpx_nothing');
  });
});
