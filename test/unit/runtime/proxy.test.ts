// The proxy's sync loop without a kernel: a source we drive, a dataplane that
// records what it is asked, and a clock that moves only when told to.
import { afterEach, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';
import type { Dataplane, SyncOptions, SyncResult } from '../../../src/dataplane/types.js';
import type { KubeObject } from '../../../src/model/objects.js';
import type { DesiredDataplane } from '../../../src/planner/types.js';
import { EMPTY_ID_HINTS } from '../../../src/planner/types.js';
import { FakeClock, settle } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { Proxy } from '../../../src/runtime/proxy.js';
import type { Source, SourceListener } from '../../../src/sources/types.js';
import { get } from './net-helpers.js';

class DrivenSource implements Source {
  readonly name = 'driven';
  listener: SourceListener | null = null;
  async start(l: SourceListener): Promise<void> { this.listener = l; }
  async stop(): Promise<void> { this.listener = null; }
  upsert(kind: 'Service' | 'EndpointSlice', obj: KubeObject): void {
    this.listener!({ type: 'upsert', kind, key: `${obj.metadata!.namespace}/${obj.metadata!.name}`, object: obj, origin: 'test' });
  }
}

/** Refuses one planned service on every sync, as a full map would. */
class RecordingDataplane implements Dataplane {
  readonly mode = 'bpf' as const;
  readonly calls: { full: boolean; changed: string[] }[] = [];
  constructor(private readonly refuse: string) {}
  async restore() { return EMPTY_ID_HINTS; }
  async sync(d: DesiredDataplane, o: SyncOptions): Promise<SyncResult> {
    const keys = o.full ? [...d.services.keys()] : [...o.changed];
    this.calls.push({ full: o.full, changed: keys.sort() });
    const errors = keys.includes(this.refuse) ? [{ service: this.refuse, code: 'MAP_FULL', message: 'map x is full' }] : [];
    return { full: o.full, upserts: keys.length, deletes: 0, errors, unsupported: [] };
  }
  async dispose() {}
}

const service = (name: string, ip: string): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 't' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }] } });
const slice = (name: string, ip: string): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name: `${name}-1`, namespace: 't', labels: { 'kubernetes.io/service-name': name } },
  addressType: 'IPv4', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], endpoints: [{ addresses: [ip] }],
});

describe('proxy sync loop', () => {
  let proxy: Proxy | undefined;
  afterEach(async () => { await proxy?.stop(); });

  async function start(dp: RecordingDataplane, src: DrivenSource, clock: FakeClock) {
    const cl = parseCommandLine(['--hostname-override', 'n1', '--healthz-bind-address', '', '--metrics-bind-address', '', '--sync-period', '30s']);
    if (cl.command === 'help') throw new Error('help');
    proxy = await Proxy.start(cl.config, { log: silentLogger(), clock, sources: [src], dataplane: dp, localAddresses: () => [] });
  }

  it('a service that cannot be programmed is retried on its own and never holds back other changes', async () => {
    const clock = new FakeClock();
    const src = new DrivenSource();
    const dp = new RecordingDataplane('t/bad:http/IPv4');
    await start(dp, src, clock);
    src.upsert('Service', service('good', '10.96.0.1'));
    src.upsert('EndpointSlice', slice('good', '10.244.0.1'));
    src.upsert('Service', service('bad', '10.96.0.2'));
    src.listener!({ type: 'synced', source: 'driven' });
    await clock.advance(0);
    expect(dp.calls.at(-1)).toEqual({ full: true, changed: ['t/bad:http/IPv4', 't/good:http/IPv4'] });

    // A change to another service, with no time passing: synced at once, and
    // the refused service rides along (partial syncs, not a forced full one).
    const before = dp.calls.length;
    src.upsert('EndpointSlice', slice('good', '10.244.0.9'));
    await clock.advance(0);
    expect(dp.calls.slice(before)).toEqual([{ full: false, changed: ['t/bad:http/IPv4', 't/good:http/IPv4'] }]);

    // With no change at all, its own timer retries it, backing off with every
    // attempt (two so far: 1 s, 2 s): the next in 2 s, then 4 s.
    const n = dp.calls.length;
    await clock.advance(1999);
    expect(dp.calls.length).toBe(n);
    await clock.advance(1);
    await settle();
    expect(dp.calls.slice(n)).toEqual([{ full: false, changed: ['t/bad:http/IPv4'] }]);
    await clock.advance(3999);
    expect(dp.calls.length).toBe(n + 1);
    await clock.advance(1);
    await settle();
    expect(dp.calls.length).toBe(n + 2);
    // And the node stays healthy for everything else.
    expect(proxy!.health.isHealthy()).toBe(true);
  });

  it('/proxyMode reports the mode in use, not the one the config asked for', async () => {
    // The config asks for bpf; the dataplane in use is another mode, as after a fallback.
    const dp = Object.assign(new RecordingDataplane(''), { mode: 'nftables' as const });
    const cl = parseCommandLine(['--hostname-override', 'n1', '--healthz-bind-address', '', '--metrics-bind-address', '127.0.0.1:0']);
    if (cl.command === 'help') throw new Error('help');
    expect(cl.config.mode).toBe('bpf');
    proxy = await Proxy.start(cl.config, { log: silentLogger(), clock: new FakeClock(), sources: [new DrivenSource()], dataplane: dp, localAddresses: () => [] });
    expect(await get(proxy.httpAddress('metrics')!.port, '/proxyMode')).toMatchObject({ status: 200, body: 'nftables' });
  });

  it('a sync that throws midway (issue 12, item 8) is retried after 1 s as a full sync carrying the change', async () => {
    const clock = new FakeClock();
    const src = new DrivenSource();
    const dp = new RecordingDataplane('');
    let failNext = false;
    const sync = dp.sync.bind(dp);
    dp.sync = async (d, o) => {
      const r = await sync(d, o);
      if (failNext) {
        failNext = false;
        throw new Error('injected failure: upsert of 1 in set headers');
      }
      return r;
    };
    await start(dp, src, clock);
    src.upsert('Service', service('a', '10.96.0.1'));
    src.upsert('Service', service('b', '10.96.0.2'));
    src.listener!({ type: 'synced', source: 'driven' });
    await clock.advance(0);
    const n = dp.calls.length;
    failNext = true;
    src.upsert('EndpointSlice', slice('a', '10.244.0.9'));
    await clock.advance(0);
    expect(dp.calls.slice(n)).toEqual([{ full: false, changed: ['t/a:http/IPv4'] }]);
    await clock.advance(999);
    expect(dp.calls.length).toBe(n + 1);
    await clock.advance(1);
    await settle();
    expect(dp.calls.slice(n + 1)).toEqual([{ full: true, changed: ['t/a:http/IPv4', 't/b:http/IPv4'] }]);
  });
});
