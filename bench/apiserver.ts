// The fake API server (test/helpers/fake-apiserver.ts) serving bench/cluster.ts's
// cluster, as a process of its own: bench/memory.ts starts it inside a lab
// node's network namespace, where the proxy under test runs and from where the
// root namespace's loopback cannot be reached (nor should it be).
//
//   vite-node bench/apiserver.ts SERVICES ENDPOINTS DIR NODE NODE_IP
//
// Writes DIR/kubeconfig, prints one JSON line {url, kubeconfig, loadMs} once
// it listens, and exits when its stdin closes (so it never outlives the bench).
import { endpointsOf, service, slice } from './cluster.js';
import { FakeApiServer } from '../test/helpers/fake-apiserver.js';

async function main(): Promise<void> {
  const [n, e] = [Number(process.argv[2]), Number(process.argv[3])];
  const [dir, node, nodeIP] = [process.argv[4]!, process.argv[5]!, process.argv[6]!];
  const t = performance.now();
  const fake = await FakeApiServer.start();
  fake.apply('Node', { metadata: { name: node }, status: { addresses: [{ type: 'InternalIP', address: nodeIP }] } });
  for (let i = 0; i < n; i++) {
    fake.apply('Service', service(i));
    fake.apply('EndpointSlice', slice(i, endpointsOf(i, e)));
  }
  const kubeconfig = await fake.writeKubeconfig(dir);
  process.stdout.write(JSON.stringify({ url: fake.url, kubeconfig, loadMs: Math.round(performance.now() - t) }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void fake.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`fake apiserver failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
