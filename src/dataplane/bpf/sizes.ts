// Which map-size setting sizes which pinned map: read when loading (setting ->
// maps) and when a map is full (map -> the setting to raise). The dataplane
// declares the setting names it understands and takes sizes as plain numbers by
// name; config keeps its own list for validation, and a unit test
// (test/unit/bpf/sizes.test.ts) checks the two agree, so neither layer imports
// the other.

/** Map-size settings (bpf.mapSizes.NAME, --bpf-map-size NAME=N) -> the maps they size. */
export const MAP_SIZE_SETTINGS: Readonly<Record<string, readonly string[]>> = {
  frontends: ['bpx_fe_v1', 'bpx_range_v1'],
  backendSets: ['bpx_set_v1', 'bpx_member_v1'],
  backends: ['bpx_be_v1'],
  socketRevNat: ['bpx_sk_rnat_v1', 'bpx_flow_v1'],
  affinity: ['bpx_aff_v1'],
  conntrack: ['bpx_ct_v1'],
  nat: ['bpx_nat_v1'],
};

/** Map sizes by setting name -> sizes by pinned map name. A name this dataplane does not know is an error, not a silent default. */
export function sizesByMap(settings: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [setting, n] of Object.entries(settings)) {
    const maps = Object.hasOwn(MAP_SIZE_SETTINGS, setting) ? MAP_SIZE_SETTINGS[setting] : undefined;
    if (!maps) throw new Error(`unknown map-size setting ${JSON.stringify(setting)}: the bpf dataplane knows ${Object.keys(MAP_SIZE_SETTINGS).join(', ')}`);
    for (const m of maps) out[m] = n;
  }
  return out;
}

/** The setting an operator raises when `mapName` is full, e.g. "bpf.mapSizes.frontends". */
export function sizeSettingOf(mapName: string): string {
  const setting = Object.keys(MAP_SIZE_SETTINGS).find((s) => MAP_SIZE_SETTINGS[s]!.includes(mapName));
  return setting ? `bpf.mapSizes.${setting}` : `the size of ${mapName}`;
}
