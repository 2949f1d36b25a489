// UDP clients that keep their source ports (client.py does not), for the
// packet lab tests; the lab's XDP preparation is src/lab/xdp.ts.
import type { Lab } from '../../src/lab/lab.js';

export { prepareXdpLab } from '../../src/lab/xdp.js';

/**
 * UDP from fixed source ports (and a source address, when given): per port, one socket bound to it sends a
 * datagram to host:port and reads the answering pod's name (null after two
 * tries of timeoutMs). Bounded: at most 2 x timeoutMs per port.
 */
const UDP_FROM_PORTS = `import json, socket, sys
a = json.loads(sys.argv[1])
out = []
for port in a["ports"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.get("source", ""), port))
    s.settimeout(a["timeoutMs"] / 1000)
    pod = None
    for attempt in range(2):
        try:
            s.sendto(b"hi\\n", (a["host"], a["port"]))
            pod = json.loads(s.recvfrom(4096)[0].decode().splitlines()[0])["pod"]
            break
        except (OSError, ValueError, KeyError):
            pass
    s.close()
    out.append(pod)
print(json.dumps(out))`;

export async function udpFromPorts(lab: Lab, netns: string, host: string, port: number, ports: readonly number[], timeoutMs = 1000, source?: string): Promise<(string | null)[]> {
  const args = { host, port, ports, timeoutMs, ...(source ? { source } : {}) };
  const r = await lab.exec(netns, ['/usr/bin/python3', '-c', UDP_FROM_PORTS, JSON.stringify(args)], { timeoutMs: ports.length * 2 * timeoutMs + 5000 });
  if (r.code !== 0) throw new Error(`udp client: ${r.stderr}`);
  return JSON.parse(r.stdout) as (string | null)[];
}

/**
 * One UDP flow (one socket, one source port) sending a datagram every
 * intervalMs for durationMs: each answer's wall-clock time (ms) and pod.
 */
const UDP_STREAM = `import json, socket, sys, time
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", a["sport"]))
s.settimeout(a["intervalMs"] / 1000)
out = []
end = time.time() + a["durationMs"] / 1000
while time.time() < end:
    sent = time.time()
    try:
        s.sendto(b"hi\\n", (a["host"], a["port"]))
        data = s.recvfrom(4096)[0]
        out.append([time.time() * 1000, json.loads(data.decode().splitlines()[0])["pod"]])
    except (OSError, ValueError, KeyError):
        out.append([time.time() * 1000, None])
    time.sleep(max(0, a["intervalMs"] / 1000 - (time.time() - sent)))
print(json.dumps(out))`;

export async function udpStream(lab: Lab, netns: string, opts: { host: string; port: number; sport: number; intervalMs: number; durationMs: number }): Promise<[number, string | null][]> {
  const r = await lab.exec(netns, ['/usr/bin/python3', '-c', UDP_STREAM, JSON.stringify(opts)], { timeoutMs: opts.durationMs + 10_000 });
  if (r.code !== 0) throw new Error(`udp stream: ${r.stderr}`);
  return JSON.parse(r.stdout) as [number, string | null][];
}
