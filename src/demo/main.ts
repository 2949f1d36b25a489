// `make demo`: a two-node lab cluster, bpfproxy on each node, the tutorial
// services from demo/manifests, a client pod that calls the ClusterIP 30
// times, like `while true; do curl CLUSTER-IP; done` on a real cluster, and
// an external client outside the cluster that reaches a NodePort on both
// nodes (the XDP/TC datapath on the nodes' eth0, `--devices eth0`).
import { join } from 'node:path';
import { createLab, type Lab } from '../lab/lab.js';
import { LabProxy } from '../lab/proxy.js';
import type { ClientResult } from '../lab/client.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import { prepareXdpLab } from '../lab/xdp.js';

const MANIFESTS = join(PACKAGE_ROOT, 'demo', 'manifests');

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function spread(results: ClientResult[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of results) {
    const k = r.ok ? r.pod : `error ${r.error}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return new Map([...counts].sort());
}

async function run(lab: Lab): Promise<void> {
  const client = lab.pod('client');
  say(`lab: node1 ${lab.node('node1').ipv4} (pods web-1 ${lab.pod('web-1').ipv4}, web-2 ${lab.pod('web-2').ipv4}), ` +
    `node2 ${lab.node('node2').ipv4} (pods web-3 ${lab.pod('web-3').ipv4}, client ${client.ipv4})`);
  say(`manifests: ${MANIFESTS}`);

  // --no-fallback: a demo that fell back to another mode would show the wrong thing.
  const proxies = lab.nodes.map((node) => LabProxy.start(lab, node, { manifests: MANIFESTS, args: ['--devices', 'eth0', '--no-fallback'] }));
  await Promise.all(proxies.map((p) => p.waitSynced()));
  say(`bpfproxy is running on ${proxies.map((p) => p.node.name).join(' and ')} and has programmed the services`);
  say();

  say('$ kubectl -n demo get svc web   ->  ClusterIP 10.96.0.10, port 80, 3 endpoints');
  say('$ while true; do curl http://10.96.0.10/; done     (from pod "client" on node2, 30 requests)');
  const results = await lab.client(client, { proto: 'tcp', host: '10.96.0.10', port: 80, count: 30, timeoutMs: 2000 });
  results.forEach((r, i) => {
    say(r.ok
      ? `  ${String(i + 1).padStart(2)}: answered by ${r.pod.padEnd(6)} (it saw the client as ${r.client}; the client saw ${r.peer})`
      : `  ${String(i + 1).padStart(2)}: ${r.error}`);
  });
  say('requests per pod:');
  for (const [pod, n] of spread(results)) say(`  ${pod.padEnd(8)} ${'#'.repeat(n)} ${n}`);
  say();

  say('$ curl http://10.96.0.20/        (service "app", port "http" -> targetPort "web", which the pods run on 8080)');
  const http = await lab.client(client, { proto: 'tcp', host: '10.96.0.20', port: 80, count: 10, timeoutMs: 2000 });
  for (const [pod, n] of spread(http)) {
    const answered = http.find((r) => r.ok && r.pod === pod);
    say(`  ${pod.padEnd(8)} ${n} of 10${answered?.ok ? `, on ${answered.local}` : ''}`);
  }
  say('$ dig @10.96.0.20 ...            (service "app", port "dns", UDP 53)');
  const dns = await lab.client(client, { proto: 'udp', host: '10.96.0.20', port: 53, count: 10, timeoutMs: 2000 });
  for (const [pod, n] of spread(dns)) say(`  ${pod.padEnd(8)} ${n} of 10`);
  say();

  say(`$ curl http://NODE:30080/     (service "web-public", type NodePort, from the external client ${lab.external!.ipv4}, outside the cluster)`);
  for (const node of lab.nodes) {
    const rs = await lab.client('external', { proto: 'tcp', host: node.ipv4, port: 30080, count: 12, timeoutMs: 2000 });
    say(`  to ${node.name} ${node.ipv4}: ${[...spread(rs)].map(([p, n]) => `${p} ${n}`).join(', ')}`);
    const seen = new Map<string, string>();
    // The address only (client.py reports address:port).
    for (const r of rs) if (r.ok) seen.set(r.pod, r.client.slice(0, r.client.lastIndexOf(':')));
    say(`    the pods saw: ${[...seen].sort().map(([p, c]) => `${p} ${c}${c === lab.external!.ipv4 ? ' (the client: a pod on this node)' : ` (${node.name}: SNAT, the pod is on the other node)`}`).join('; ')}`);
  }
  say();

  for (const p of proxies) await p.stop();
  say('both proxies stopped; the datapath keeps serving without them:');
  const after = await lab.client(client, { proto: 'tcp', host: '10.96.0.10', port: 80, count: 6, timeoutMs: 2000 });
  say(`  6 requests after the stop: ${[...spread(after)].map(([p, n]) => `${p} ${n}`).join(', ')}`);
}

export async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    say('make demo needs root: it builds network namespaces and attaches BPF programs to a cgroup it creates.');
    process.exitCode = 1;
    return;
  }
  const started = Date.now();
  const lab = await createLab({
    nodes: [
      { name: 'node1', pods: [{ name: 'web-1' }, { name: 'web-2' }] },
      { name: 'node2', pods: [{ name: 'web-3' }, { name: 'client' }] },
    ],
    external: true,
  });
  try {
    await prepareXdpLab(lab, [lab.external!.netns, ...lab.nodes.flatMap((n) => n.pods.map((p) => p.netns))]);
    await run(lab);
  } finally {
    await lab.teardown();
  }
  say(`lab torn down; the demo took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
