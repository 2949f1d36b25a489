// The proxy tells the dataplane which full syncs are only the periodic
// resync (issue 6: the bpf dataplane checks those in the background), and a
// dataplane that finds drift gets a real full sync by asking for it.
import { afterEach, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';
import type { Dataplane, SyncOptions, SyncResult } from '../../../src/dataplane/types.js';
import type { KubeObject } from '../../../src/model/objects.js';
import type { DesiredDataplane } from '../../../src/planner/types.js';
import { EMPTY_ID_HINTS } from '../../../src/planner/types.js';
import { FakeClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { Proxy } from '../../../src/runtime/proxy.js';
import type { Source, SourceListener } from '../../../src/sources/types.js';

class DrivenSource implements Source {
  readonly name = 'driven';
  listener: SourceListener | null = null;
  async start(l: SourceListener): Promise<void> { this.listener = l; }
  async stop(): Promise<void> { this.listener = null; }
}

class RecordingDataplane implements Dataplane {
  readonly mode = 'bpf' as const;
  readonly calls: { full: boolean; periodic: boolean }[] = [];
  onFullSyncNeeded: (() => void) | null = null;
  async restore() { return EMPTY_ID_HINTS; }
  async sync(_d: DesiredDataplane, o: SyncOptions): Promise<SyncResult> {
    this.calls.push({ full: o.full, periodic: o.periodic === true });
    return { full: o.full, upserts: 0, deletes: 0, errors: [], unsupported: [] };
  }
  async dispose() {}
}

const service: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 't' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }] } };

describe('periodic full syncs', () => {
  let proxy: Proxy | undefined;
  afterEach(async () => { await proxy?.stop(); });

  it('are marked periodic (the first is not), and a dataplane that asks gets an unmarked full sync', async () => {
    const clock = new FakeClock();
    const src = new DrivenSource();
    const dp = new RecordingDataplane();
    const cl = parseCommandLine(['--hostname-override', 'n1', '--healthz-bind-address', '', '--metrics-bind-address', '', '--sync-period', '30s']);
    if (cl.command === 'help') throw new Error('help');
    proxy = await Proxy.start(cl.config, { log: silentLogger(), clock, sources: [src], dataplane: dp, localAddresses: () => [] });
    src.listener!({ type: 'upsert', kind: 'Service', key: 't/a', object: service, origin: 'test' });
    src.listener!({ type: 'synced', source: 'driven' });
    await clock.advance(0);
    expect(dp.calls).toEqual([{ full: true, periodic: false }]);

    await clock.advance(30_000);
    expect(dp.calls.slice(1)).toEqual([{ full: true, periodic: true }]);

    // A background check found drift: the full sync it gets is a real one, not marked periodic.
    expect(dp.onFullSyncNeeded).toBeTypeOf('function');
    dp.onFullSyncNeeded!();
    await clock.advance(1000);
    expect(dp.calls.slice(2)).toEqual([{ full: true, periodic: false }]);
  });
});
