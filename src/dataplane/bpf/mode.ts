// The bpf mode as an entry in the table of modes (src/dataplane/select.ts).
import type { DataplaneMode } from '../types.js';
import { BpfDataplane } from './dataplane.js';
import { MAX_SERVICE_ID } from './lb-tables.js';
import { probeBpf } from './probe.js';

export const bpfMode: DataplaneMode = {
  name: 'bpf',
  // packetDatapath: the XDP and TC programs are not wired in yet, so packets
  // from outside the node are not handled, only this node's own sockets.
  capabilities: { packetDatapath: false, socketLB: true, counters: true, mapUsage: true },
  limits: { maxServiceId: MAX_SERVICE_ID },
  probe: ({ bpf }) => probeBpf(bpf),
  open: ({ bpf }, log) => BpfDataplane.open({
    pinDir: bpf.pinDir, cgroupRoot: bpf.cgroupRoot, mapSizes: bpf.mapSizes, devices: bpf.devices ?? [], nodeIPs: bpf.nodeIPs, maglev: bpf.maglev, log: log.child({ dataplane: 'bpf' }),
  }),
};
