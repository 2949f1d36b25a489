// Which configuration setting sizes which pinned map: read when loading
// (setting -> maps) and when a map is full (map -> the setting to raise).

import type { MapName } from '../../config/config.js';

/** Map-size settings (bpf.mapSizes.NAME, --bpf-map-size NAME=N) -> the maps they size. Typed by the config's names, so the two cannot drift. */
export const MAP_SIZE_SETTINGS: Readonly<Record<MapName, readonly string[]>> = {
  frontends: ['bpx_fe_v1'],
  backendSets: ['bpx_set_v1', 'bpx_member_v1'],
  backends: ['bpx_be_v1'],
  socketRevNat: ['bpx_sk_rnat_v1', 'bpx_flow_v1'],
  affinity: ['bpx_aff_v1'],
};

/** The setting an operator raises when `mapName` is full, e.g. "bpf.mapSizes.frontends". */
export function sizeSettingOf(mapName: string): string {
  const setting = (Object.keys(MAP_SIZE_SETTINGS) as MapName[]).find((s) => MAP_SIZE_SETTINGS[s].includes(mapName));
  return setting ? `bpf.mapSizes.${setting}` : `the size of ${mapName}`;
}
