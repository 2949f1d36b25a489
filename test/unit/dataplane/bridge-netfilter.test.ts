// The rule modes' start-up probe of br_netfilter (src/dataplane/bridge-netfilter.ts):
// what it reports from the bridge-nf-call sysctls, and that it logs only when
// bridged pod traffic would miss the reverse NAT.
import { describe, expect, it } from 'vitest';
import { bridgeNetfilterGap, noteBridgeNetfilter, type ReadSysctl } from '../../../src/dataplane/bridge-netfilter.js';
import type { Logger } from '../../../src/util/log.js';

const sysctls = (values: Record<string, string>): ReadSysctl => (key) => values[key] ?? null;
const BOTH_ON = { 'net/bridge/bridge-nf-call-iptables': '1', 'net/bridge/bridge-nf-call-ip6tables': '1' };

describe('bridgeNetfilterGap', () => {
  it('is null when bridged packets of every family go through the IP hooks', () => {
    expect(bridgeNetfilterGap(['IPv4', 'IPv6'], sysctls(BOTH_ON))).toBeNull();
  });

  it('names a missing br_netfilter (Debian kernels before the module is loaded)', () => {
    expect(bridgeNetfilterGap(['IPv4'], sysctls({}))).toMatch(/no br_netfilter.*not loaded/);
  });

  it('names each family whose sysctl is off, and only the families asked about', () => {
    const v6off = sysctls({ ...BOTH_ON, 'net/bridge/bridge-nf-call-ip6tables': '0' });
    expect(bridgeNetfilterGap(['IPv4', 'IPv6'], v6off)).toBe('net.bridge.bridge-nf-call-ip6tables=0');
    expect(bridgeNetfilterGap(['IPv4'], v6off)).toBeNull();
  });
});

describe('noteBridgeNetfilter', () => {
  const capture = () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const log = { info: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger;
    return { lines, log };
  };

  it('logs one line with the reason and the remedy when the hooks are skipped', () => {
    const { lines, log } = capture();
    noteBridgeNetfilter(log, ['IPv4'], sysctls({ 'net/bridge/bridge-nf-call-iptables': '0' }));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toEqual({ reason: 'net.bridge.bridge-nf-call-iptables=0' });
    expect(lines[0]!.msg).toMatch(/load br_netfilter and set net\.bridge\.bridge-nf-call-iptables=1/);
  });

  it('says nothing when they are not', () => {
    const { lines, log } = capture();
    noteBridgeNetfilter(log, ['IPv4', 'IPv6'], sysctls(BOTH_ON));
    expect(lines).toEqual([]);
  });
});
