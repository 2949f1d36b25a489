// One UDP flow that keeps its source port, as a DNS client or a game client
// does: a datagram every 50 ms for a while from a fixed port, and which pod
// answered each, when. Runs in `from`'s namespace and cgroup through the lab.
import type { Lab, LabPod } from '../../src/lab/lab.js';

const SCRIPT = `
import json, socket, sys, time
host, port, sport, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", sport))
s.settimeout(0.05)
out = []
end = time.time() + seconds
while time.time() < end:
    s.sendto(b"flow\\n", (host, port))
    try:
        data, _ = s.recvfrom(4096)
        out.append([int(time.time() * 1000), json.loads(data.decode().splitlines()[0])["pod"]])
    except (socket.timeout, ValueError, KeyError):
        pass
    time.sleep(0.05)
print(json.dumps(out))
`;

export interface FlowReply {
  /** Wall-clock ms when the reply arrived. */
  t: number;
  pod: string;
}

/** Sends for `seconds` (at most 20) from source port `sport` to host:port. */
export async function udpFlow(lab: Lab, from: LabPod | 'external', host: string, port: number, sport: number, seconds: number): Promise<FlowReply[]> {
  const netns = from === 'external' ? lab.external!.netns : from.netns;
  const s = Math.min(seconds, 20);
  const r = await lab.exec(netns, ['/usr/bin/python3', '-B', '-c', SCRIPT, host, String(port), String(sport), String(s)], { timeoutMs: s * 1000 + 5000 });
  if (r.code !== 0) throw new Error(`udp flow client failed (${r.code}): ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as [number, string][]).map(([t, pod]) => ({ t, pod }));
}
