// The ipvs mode's sysctls are kube-proxy's (pkg/proxy/ipvs/proxier.go): the
// connection expiry that moves UDP flows off a deleted real server on every
// kernel, conn_reuse_mode only where the kernel had not fixed it yet.
import { describe, expect, it } from 'vitest';
import { ipvsSysctls } from '../../../src/dataplane/ipvs/mode.js';

const names = (strictARP: boolean, kernel: string) => Object.fromEntries(ipvsSysctls(strictARP, kernel));

describe('ipvsSysctls', () => {
  it('expires connections to deleted real servers and quiescent templates, and lets iptables see IPVS traffic, on every kernel', () => {
    for (const k of ['4.19.0-21-amd64', '5.10.0-30-amd64', '6.1.0-57-amd64', '6.12.117+deb12-amd64']) {
      expect(names(false, k)).toMatchObject({ 'net/ipv4/vs/conntrack': '1', 'net/ipv4/vs/expire_nodest_conn': '1', 'net/ipv4/vs/expire_quiescent_template': '1' });
    }
  });

  it('sets conn_reuse_mode=0 on kernels 4.1 to 5.8 only, and leaves it as it is from 5.9 (kubernetes#93297)', () => {
    expect(names(false, '4.19.0-21-amd64')['net/ipv4/vs/conn_reuse_mode']).toBe('0');
    expect(names(false, '5.8.18')['net/ipv4/vs/conn_reuse_mode']).toBe('0');
    expect(names(false, '4.0.9')).not.toHaveProperty('net/ipv4/vs/conn_reuse_mode');
    expect(names(false, '5.9.0')).not.toHaveProperty('net/ipv4/vs/conn_reuse_mode');
    expect(names(false, '6.1.0-57-amd64')).not.toHaveProperty('net/ipv4/vs/conn_reuse_mode');
  });

  it('adds strict ARP only when asked', () => {
    expect(names(true, '6.1.0-57-amd64')).toMatchObject({ 'net/ipv4/conf/all/arp_ignore': '1', 'net/ipv4/conf/all/arp_announce': '2' });
    expect(names(false, '6.1.0-57-amd64')).not.toHaveProperty('net/ipv4/conf/all/arp_ignore');
  });
});
