// The kernel probe of the XDP/TC datapath (src/dataplane/bpf/probe-xdp.ts,
// bpf/probe.bpf.c): on this kernel (6.18) every feature is there; that the
// probe can tell a missing one is shown with a flag no kernel has, which
// stands in for BPF_FIB_LOOKUP_SRC on a 6.1 kernel (same -EINVAL path), and
// then the packet programs are not attached while the proxy keeps going.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPins, ensureBpffs } from '../../src/dataplane/bpf/loader.js';
import { PACKET_PATH_FEATURES, packetDevicesAfterProbe, probePacketPath } from '../../src/dataplane/bpf/probe-xdp.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';
import { testPinDir } from './xdp-harness.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('XDP kernel probe tests skipped: loading BPF programs needs root');

const SELFTEST = { what: 'a fib lookup flag no kernel has', program: 'bpx_probe_selftest', since: 'never' };

function recordingLogger(): { log: Logger; lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const base = silentLogger();
  const log = new Proxy(base, {
    get(target, prop) {
      if (prop === 'warn' || prop === 'info' || prop === 'error') return (obj: object, msg: string) => lines.push({ level: prop, obj, msg });
      return Reflect.get(target, prop);
    },
  }) as Logger;
  return { log, lines };
}

describe.skipIf(!isRoot)('kernel probe of the XDP/TC datapath', () => {
  const pinDir = testPinDir('probe-xdp');
  ensureBpffs(pinDir, silentLogger());
  afterAll(() => cleanupPins(pinDir));

  it('finds every feature the path needs on this kernel (6.18), and pins nothing', () => {
    expect(probePacketPath(BPF_OBJECT_DIR, pinDir).missing).toEqual([]);
    expect(PACKET_PATH_FEATURES.map((f) => f.since)).toContain('6.7');
  });

  it('tells a feature the kernel refuses (-EINVAL when called) from one it has', () => {
    expect(probePacketPath(BPF_OBJECT_DIR, pinDir, [...PACKET_PATH_FEATURES, SELFTEST]).missing.map((f) => f.program)).toEqual(['bpx_probe_selftest']);
  });

  it('with a feature missing: no device for the packet programs, one warning naming what and since when, and that the socket path keeps serving', () => {
    const { log, lines } = recordingLogger();
    expect(packetDevicesAfterProbe(['eth0'], BPF_OBJECT_DIR, pinDir, log, [SELFTEST])).toEqual([]);
    expect(lines.map((l) => l.level)).toEqual(['warn']);
    expect(lines[0]!.msg).toMatch(/lacks what the XDP\/TC datapath needs \(a fib lookup flag no kernel has, kernel never\+\): not attaching it to --devices eth0;.*socket programs keep serving/);
  });

  it('with everything there: the devices as given, one info line', () => {
    const { log, lines } = recordingLogger();
    expect(packetDevicesAfterProbe(['eth0', 'eth1'], BPF_OBJECT_DIR, pinDir, log)).toEqual(['eth0', 'eth1']);
    expect(lines.map((l) => l.level)).toEqual(['info']);
  });

  it('without devices nothing is probed', () => {
    const { log, lines } = recordingLogger();
    expect(packetDevicesAfterProbe([], '/nonexistent', pinDir, log)).toEqual([]);
    expect(lines).toEqual([]);
  });
});
