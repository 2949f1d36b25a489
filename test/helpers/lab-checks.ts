// What a client sees of a service, checked the same way in every mode's lab
// suite (the socket hooks in clusterip.test.ts, the rules in
// rule-modes.suite.ts): the assertions themselves, so the modes cannot drift.
import { expect } from 'vitest';
import type { Lab, LabPod } from '../../src/lab/lab.js';
import { pods } from './lab-manifests.js';

/** UDP, connected and unconnected, spread over `backends` and answered from `host`:53. */
export async function expectUdpSpread(lab: Lab, client: LabPod, host: string, backends: readonly string[]): Promise<void> {
  for (const proto of ['udp', 'udp-connected'] as const) {
    const results = await lab.client(client, { proto, host, port: 53, count: 60, timeoutMs: 2000 });
    expect(pods(results), proto).toEqual(new Set(backends));
    for (const r of results) if (r.ok) expect(r.peer, proto).toBe(`${host}:53`);
  }
}

/** A service without endpoints (TCP on 80, UDP on 53 at `host`) refuses a connection at once, as kube-proxy's reject does. */
export async function expectRefusedAtOnce(lab: Lab, client: LabPod, host: string): Promise<void> {
  for (const proto of ['tcp', 'udp-connected'] as const) {
    const port = proto === 'tcp' ? 80 : 53;
    const results = await lab.client(client, { proto, host, port, count: 3, timeoutMs: 2000 });
    for (const r of results) {
      expect(r.ok, proto).toBe(false);
      if (!r.ok) {
        expect(r.error, proto).toBe('ECONNREFUSED');
        expect(r.ms, proto).toBeLessThan(1000);
      }
    }
  }
}
