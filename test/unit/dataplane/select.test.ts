// Choosing the dataplane: the mode asked for when it can run, otherwise one
// log line and the next built mode, or one fatal line saying why and why there
// is nowhere to go. Driven by a table of fake modes, as a real one will be.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MODES, openDataplane, type SelectOptions } from '../../../src/dataplane/select.js';
import { probeIpvs } from '../../../src/dataplane/ipvs/mode.js';
import { NoFallbackError, type Dataplane, type DataplaneMode } from '../../../src/dataplane/types.js';
import { EMPTY_ID_HINTS } from '../../../src/planner/types.js';
import type { ProxyMode } from '../../../src/util/modes.js';

function recordingLog() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number; msg: string }); } });
  return { log, lines, warnings: () => lines.filter((l) => l.level >= 40) };
}

function fakeDataplane(mode: ProxyMode): Dataplane {
  return {
    mode,
    restore: async () => EMPTY_ID_HINTS,
    sync: async () => ({ full: true, upserts: 0, deletes: 0, errors: [], unsupported: [] }),
    dispose: async () => {},
  };
}

/** A mode whose probe says `why` (null: runs), and that counts how often it was opened. */
function fakeMode(name: ProxyMode, why: string | null, opts: { openFails?: string } = {}) {
  const mode = {
    name,
    capabilities: { packetDatapath: name !== 'bpf', socketLB: name === 'bpf', counters: false, mapUsage: false },
    limits: { maxServiceId: name === 'bpf' ? 1000 : 2000 },
    opened: 0,
    probe: () => why,
    open: () => {
      mode.opened++;
      if (opts.openFails) throw new Error(opts.openFails);
      return fakeDataplane(name);
    },
  } satisfies DataplaneMode & { opened: number };
  return mode;
}

const options = (fallback = true): SelectOptions => ({ fallback, bpf: { pinDir: '/sys/fs/bpf/t', cgroupRoot: '/sys/fs/cgroup', mapSizes: {} } });

describe('openDataplane', () => {
  it('opens the mode asked for, with its capabilities and limits, and logs nothing', async () => {
    const { log, lines } = recordingLog();
    const bpf = fakeMode('bpf', null);
    const r = await openDataplane('bpf', options(), log, [bpf, fakeMode('nftables', null)]);
    expect(r).toMatchObject({ mode: 'bpf', reason: '--proxy-mode bpf', capabilities: { socketLB: true }, limits: { maxServiceId: 1000 } });
    expect(r.dataplane.mode).toBe('bpf');
    expect(lines).toEqual([]);
  });

  it('refuses a mode that is not built, naming what is', async () => {
    const { log } = recordingLog();
    await expect(openDataplane('nftables', options(), log, [fakeMode('bpf', null)]))
      .rejects.toThrow('--proxy-mode nftables is not built yet; bpfproxy implements bpf (nftables, iptables and ipvs come next)');
  });

  it('with nothing built to fall back to, fails with one message: why, and that the fallbacks are not built', async () => {
    const { log, lines } = recordingLog();
    await expect(openDataplane('bpf', options(), log, [fakeMode('bpf', 'no bpffs')]))
      .rejects.toThrow('the bpf dataplane cannot run here: no bpffs; no mode to fall back to: nftables, iptables and ipvs are not built yet');
    expect(lines).toEqual([]);
  });

  it('falls back to the next built mode in order, saying why in one log line', async () => {
    const { log, warnings } = recordingLog();
    const bpf = fakeMode('bpf', 'kernel 4.19 is older than 5.18');
    const ipvs = fakeMode('ipvs', null);
    const iptables = fakeMode('iptables', null);
    const r = await openDataplane('bpf', options(), log, [ipvs, bpf, iptables]);
    expect(r.mode).toBe('iptables');
    expect(r.reason).toBe('fallback: the bpf dataplane cannot run here: kernel 4.19 is older than 5.18');
    expect(r.limits.maxServiceId).toBe(2000);
    expect(bpf.opened).toBe(0);
    expect(ipvs.opened).toBe(0);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]!.msg).toBe('the bpf dataplane cannot run here: kernel 4.19 is older than 5.18; falling back to iptables');
  });

  it('treats a failed open like a failed probe: the load is the real test', async () => {
    const { log, warnings } = recordingLog();
    const bpf = fakeMode('bpf', null, { openFails: 'sock.bpf.o: Operation not permitted' });
    const r = await openDataplane('bpf', options(), log, [bpf, fakeMode('nftables', null)]);
    expect(bpf.opened).toBe(1);
    expect(r.mode).toBe('nftables');
    expect(warnings()[0]!.msg).toMatch(/bpf dataplane cannot run here: sock\.bpf\.o: Operation not permitted; falling back to nftables/);
  });

  it('with --no-fallback, a mode that cannot run is fatal even when a fallback exists', async () => {
    const { log, lines } = recordingLog();
    const nft = fakeMode('nftables', null);
    await expect(openDataplane('bpf', options(false), log, [fakeMode('bpf', 'no CAP_BPF'), nft]))
      .rejects.toThrow('the bpf dataplane cannot run here: no CAP_BPF (--no-fallback: not trying another mode)');
    expect(nft.opened).toBe(0);
    expect(lines).toEqual([]);
  });

  it('when every mode fails, names each reason', async () => {
    const { log, warnings } = recordingLog();
    await expect(openDataplane('bpf', options(), log, [fakeMode('bpf', 'no bpffs'), fakeMode('nftables', 'no nft binary')]))
      .rejects.toThrow('the nftables dataplane cannot run here: no nft binary; no mode to fall back to: iptables and ipvs are not built yet (earlier: the bpf dataplane cannot run here: no bpffs)');
    expect(warnings()).toHaveLength(1);
  });

  it('never falls back to a mode before the one asked for', async () => {
    const { log } = recordingLog();
    const bpf = fakeMode('bpf', null);
    await expect(openDataplane('nftables', options(), log, [bpf, fakeMode('nftables', 'no nft binary')])).rejects.toThrow(/nftables dataplane cannot run here/);
    expect(bpf.opened).toBe(0);
  });

  it('the built table holds each mode once, bpf among them', () => {
    const names = MODES.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('bpf');
    expect(names).toContain('nftables');
  });

  it('with the real table, bpf falls back to nftables, then iptables, then ipvs', async () => {
    expect(MODES.map((m) => m.name)).toEqual(['bpf', 'nftables', 'iptables', 'ipvs']);
    for (const name of ['nftables', 'iptables', 'ipvs']) {
      expect(MODES.find((m) => m.name === name)?.capabilities).toEqual({ packetDatapath: true, socketLB: false, counters: false, mapUsage: false });
    }
  });

  // This machine's kernel has no IPVS and loads no modules; the VM's (make test-vm) has them, and this case is skipped there.
  it.skipIf(probeIpvs() === null)('--proxy-mode ipvs on a kernel without IPVS: one line saying so, nothing to fall back to', async () => {
    const { log } = recordingLog();
    await expect(openDataplane('ipvs', options(), log))
      .rejects.toThrow(/^the ipvs dataplane cannot run here: the kernel has no IPVS: \/proc\/net\/ip_vs is missing \(ip_vs not loaded\) and \/lib\/modules\/\S+ has no ip_vs module; no mode left to fall back to$/);
  });
});

describe('a reason no fallback would cure', () => {
  it('is fatal: another proxy holding the datapath is not a reason to program the node in another mode', async () => {
    const { log } = recordingLog();
    const held = fakeMode('bpf', null);
    held.open = () => { throw new NoFallbackError('--bpf-fs /x is in use by another bpfproxy (pid 42)'); };
    const nft = fakeMode('nftables', null);
    await expect(openDataplane('bpf', options(true), log, [held, nft])).rejects.toThrow(/in use by another bpfproxy \(pid 42\)/);
    expect(nft.opened).toBe(0);
  });
});
