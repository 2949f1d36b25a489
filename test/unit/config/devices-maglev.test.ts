// The settings of the packet datapath's device list and Maglev array:
// --devices (default: chosen at start; '' for none), --bind-address (the node
// IP the default is chosen by) and --bpf-lb-maglev-map-max (with its config
// file field), as an operator meets them.
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';
import { maglevArrayBytes, maglevMapSizes } from '../../../src/dataplane/bpf/maglev-tables.js';
import { fakeEnv, flagError as errorOf, parseRun as parse } from './fake-env.js';




const file = (body: string) => ({ '/c.yaml': `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${body}` });

describe('--devices', () => {
  it('defaults to choosing the devices at start; an empty value opts out; a list is taken as given', () => {
    expect(parse([]).config.bpf.devices).toBe('auto');
    expect(parse(['--devices', '']).config.bpf.devices).toEqual([]);
    expect(parse(['--devices', 'eth0, eth1']).config.bpf.devices).toEqual(['eth0', 'eth1']);
    expect(parse(['--config', '/c.yaml'], file('bpf:\n  devices: []\n')).config.bpf.devices).toEqual([]);
  });

  it('--bind-address: a specific IP is the node IP for the default; the unspecified addresses mean none', () => {
    expect(parse(['--bind-address', '172.18.0.11']).config.bindAddress).toBe('172.18.0.11');
    expect(parse(['--bind-address', '0.0.0.0']).config.bindAddress).toBe('');
    expect(parse(['--bind-address', '::']).config.bindAddress).toBe('');
    expect(parse(['--config', '/c.yaml'], file('bindAddress: 10.0.0.5\n')).config.bindAddress).toBe('10.0.0.5');
    expect(errorOf(['--bind-address', 'node-1']).message).toMatch(/--bind-address.*invalid IP address "node-1"/);
  });
});

describe('--bpf-lb-maglev-map-max', () => {
  it('defaults to 256 tables and takes the flag or the file field', () => {
    expect(parse([]).config.bpf.maglevMapMax).toBe(256);
    expect(parse(['--bpf-lb-maglev-map-max', '1024']).config.bpf.maglevMapMax).toBe(1024);
    expect(parse(['--config', '/c.yaml'], file('bpf:\n  maglevMapMax: 32\n')).config.bpf.maglevMapMax).toBe(32);
    // The flag over the file, as every other flag.
    expect(parse(['--config', '/c.yaml', '--bpf-lb-maglev-map-max', '64'], file('bpf:\n  maglevMapMax: 32\n')).config.bpf.maglevMapMax).toBe(64);
  });

  it('refuses what the rows map cannot hold, and what is not a count', () => {
    for (const bad of ['0', '16385', '-1', '2.5', 'many']) {
      expect(errorOf(['--bpf-lb-maglev-map-max', bad]).message).toMatch(/--bpf-lb-maglev-map-max/);
    }
    expect(errorOf(['--config', '/c.yaml'], file('bpf:\n  maglevMapMax: 0\n')).message).toMatch(/bpf\.maglevMapMax.*between 1 and 16384/);
    expect(parse(['--bpf-lb-maglev-map-max', '16384']).config.bpf.maglevMapMax).toBe(16384);
  });

  it('says what the array costs in its help', () => {
    const r = parseCommandLine(['run', '--help'], fakeEnv({}));
    expect(r.command).toBe('help');
    if (r.command === 'help') expect(r.text).toMatch(/--bpf-lb-maglev-map-max <tables>[\s\S]*16 MiB/);
  });

  it('sizes the array to tables x M slots, two per entry, and the rows map to one entry per table', () => {
    expect(maglevMapSizes(256, 16381)).toEqual({ bpx_maglev_v1: 2_096_768, bpx_maglev_row_v1: 256 });
    // An odd tables x M rounds up: the last table's last slot still has its half entry.
    expect(maglevMapSizes(1, 16381).bpx_maglev_v1).toBe(8191);
    expect(maglevArrayBytes(maglevMapSizes(256, 16381).bpx_maglev_v1!)).toBe(256 * 16381 * 4);
    expect(maglevArrayBytes(maglevMapSizes(1024, 65521).bpx_maglev_v1!)).toBe(1024 * 65521 * 4 + 0);
  });
});
