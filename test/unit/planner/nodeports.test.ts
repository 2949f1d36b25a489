// Which node addresses get NodePorts, as kube-proxy's --nodeport-addresses
// decides: the node IPs it would pick for "primary", and the filters.
import { describe, expect, it } from 'vitest';
import { selectNodePortAddresses } from '../../../src/planner/nodeports.js';
import { nodeHostIPs } from '../../../src/planner/planner.js';

const addr = (type: string, address: string) => ({ type, address });

describe('nodeHostIPs (kube-proxy GetNodeHostIPs)', () => {
  it('takes the first InternalIP, then the first address of the other family', () => {
    expect(nodeHostIPs([addr('InternalIP', '10.0.0.1'), addr('InternalIP', '10.0.0.2'), addr('InternalIP', 'fd00::1'), addr('InternalIP', 'fd00::2')]))
      .toEqual(['10.0.0.1', 'fd00::1']);
  });

  it('prefers InternalIPs to ExternalIPs whatever their order, and falls back to ExternalIPs', () => {
    expect(nodeHostIPs([addr('ExternalIP', '203.0.113.1'), addr('InternalIP', 'fd00::1')])).toEqual(['fd00::1', '203.0.113.1']);
    expect(nodeHostIPs([addr('ExternalIP', '203.0.113.1')])).toEqual(['203.0.113.1']);
  });

  it('ignores other address types', () => {
    expect(nodeHostIPs([addr('Hostname', '10.0.0.9'), addr('InternalDNS', '10.0.0.8')])).toEqual([]);
  });
});

describe('selectNodePortAddresses', () => {
  const localAddresses = ['127.0.0.1', '::1', '10.0.0.1', '10.0.0.2', 'fe80::1', 'fd00::1', '192.168.1.5'];

  it('unset: every local address but loopback and IPv6 link-local, sorted per family', () => {
    expect(selectNodePortAddresses({ spec: [], localAddresses, primaryIPs: [] }))
      .toEqual({ IPv4: ['10.0.0.1', '10.0.0.2', '192.168.1.5'], IPv6: ['fd00::1'] });
  });

  it('primary: the node IPs that are local addresses', () => {
    expect(selectNodePortAddresses({ spec: ['primary'], localAddresses, primaryIPs: ['10.0.0.2', 'fd00:0:0::1'] }))
      .toEqual({ IPv4: ['10.0.0.2'], IPv6: ['fd00::1'] });
    expect(selectNodePortAddresses({ spec: ['primary'], localAddresses, primaryIPs: ['10.9.9.9'] })).toEqual({ IPv4: [], IPv6: [] });
  });

  it('CIDRs: the local addresses inside them; a /0 means the whole family', () => {
    expect(selectNodePortAddresses({ spec: ['10.0.0.0/31', 'fd00::/64'], localAddresses, primaryIPs: [] }))
      .toEqual({ IPv4: ['10.0.0.1'], IPv6: ['fd00::1'] });
    expect(selectNodePortAddresses({ spec: ['0.0.0.0/0'], localAddresses, primaryIPs: [] }))
      .toEqual({ IPv4: ['10.0.0.1', '10.0.0.2', '192.168.1.5'], IPv6: [] });
  });
});
