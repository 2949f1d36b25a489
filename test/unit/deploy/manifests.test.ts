// deploy/*.yaml against the Kubernetes API's schemas (kubernetes-models: the
// OpenAPI schemas of the API server, compiled per kind), then what a schema
// cannot say: that the DaemonSet runs where and how kube-proxy runs, that
// its mounts and ConfigMaps line up with the paths its command reads, that
// its flags are ones bpfproxy accepts, and that RBAC grants what it uses.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ClusterRole, type IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding, type IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { parseCommandLine } from '../../../src/config/flags.js';
import { PACKAGE_ROOT } from '../../../src/util/paths.js';

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'batch/v1/Job': Job,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

const DEPLOY = join(PACKAGE_ROOT, 'deploy');
const files = readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml'));

function load(file: string): Doc[] {
  // The cleanup Job is a template: its documented use substitutes the node name.
  const raw = readFileSync(join(DEPLOY, file), 'utf8');
  const text = file === 'bpfproxy-cleanup-job.yaml' ? raw.replaceAll('NODE_NAME', 'node-1') : raw;
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Doc;
  });
}

const all = files.flatMap((f) => load(f).map((doc) => ({ file: f, doc })));
const only = <T>(kind: string, name?: string): T => {
  const found = all.filter((x) => x.doc.kind === kind && (!name || x.doc.metadata.name === name));
  expect(found, `exactly one ${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!.doc as unknown as T;
};

describe('deploy/ manifests', () => {
  it.each(all.map((x) => [`${x.file}: ${x.doc.kind} ${x.doc.metadata?.name}`, x.doc] as const))('%s is valid against its schema', (_, doc) => {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    expect(Model, `a schema for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
    expect(() => new Model!(doc as never).validate()).not.toThrow();
    expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    if (!CLUSTER_SCOPED.has(doc.kind)) expect(doc.metadata.namespace).toBe('kube-system');
  });

  it('the schemas do reject a broken DaemonSet (the check above can fail)', () => {
    const ds = structuredClone(only<IDaemonSet>('DaemonSet'));
    (ds.spec!.template.spec!.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'healthz';
    expect(() => new DaemonSet(ds).validate()).toThrow(/containerPort/);
  });
});

describe('the DaemonSet', () => {
  const ds = only<IDaemonSet>('DaemonSet', 'bpfproxy');
  const pod = ds.spec!.template.spec!;
  const c = pod.containers[0]!;
  const script = c.args!.join('\n');

  it('runs where kube-proxy runs: every Linux node, whatever its taints, as node-critical, in the host network', () => {
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(c.securityContext?.privileged).toBe(true);
  });

  it('stays off nodes still handed to kube-proxy during a migration, and only those', () => {
    const terms = pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(terms).toEqual([{ matchExpressions: [{ key: 'bpfproxy.io/service-proxy', operator: 'NotIn', values: ['kube-proxy'] }] }]);
    const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'migrate-from-kube-proxy.md'), 'utf8');
    expect(doc).toContain('bpfproxy.io/service-proxy=kube-proxy');
  });

  it('probes /livez and /healthz on kube-proxy\'s health port', () => {
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/livez', port: 10256 });
    expect(c.startupProbe?.httpGet).toMatchObject({ path: '/livez', port: 10256 });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 10256 });
    expect(c.ports?.map((p) => p.containerPort).sort()).toEqual([10249, 10256]);
  });

  it('mounts bpffs (shared back to the host), the cgroup root, the xtables lock and /lib/modules read-only', () => {
    const volumes = new Map(pod.volumes!.map((v) => [v.name, v]));
    const mount = (hostPath: string) => {
      const v = pod.volumes!.find((x) => x.hostPath?.path === hostPath);
      expect(v, `a hostPath volume for ${hostPath}`).toBeDefined();
      return { volume: v!, mount: c.volumeMounts!.find((m) => m.name === v!.name)! };
    };
    expect(mount('/sys/fs/bpf').mount).toMatchObject({ mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' });
    expect(script).toContain(`--cgroup-root=${mount('/sys/fs/cgroup').mount.mountPath}`);
    expect(mount('/run/xtables.lock').volume.hostPath!.type).toBe('FileOrCreate');
    expect(mount('/lib/modules').mount.readOnly).toBe(true);
    // Every mount has its volume and every volume is mounted.
    for (const m of c.volumeMounts!) expect(volumes.has(m.name), m.name).toBe(true);
    for (const v of volumes.keys()) expect(c.volumeMounts!.some((m) => m.name === v), v).toBe(true);
  });

  it('asks for what was measured and is limited above the largest measured cluster', () => {
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? Number(/^(\d+)Gi$/.exec(q)?.[1]) * 1024);
    const request = mib(String(c.resources!.requests!.memory));
    const limit = mib(String(c.resources!.limits!.memory));
    expect(request * 1.048576).toBeGreaterThanOrEqual(130); // MB measured: Node + the Kubernetes client
    expect(limit * 1.048576).toBeGreaterThan(580 * 1.5); // MB measured at 30k services x 10 endpoints, with room for a re-list
    const heap = Number(/--max-old-space-size=(\d+)/.exec(String(c.env!.find((e) => e.name === 'NODE_OPTIONS')?.value))?.[1]);
    expect(heap).toBeGreaterThan(450); // MB of heap measured at 30k x 10
    expect(heap).toBeLessThan(limit);
  });

  it('reads its own ConfigMap, else kubeadm\'s kube-proxy ConfigMap, else none; both optional', () => {
    const volumes = new Map(pod.volumes!.map((v) => [v.configMap?.name, v]));
    expect(volumes.get('bpfproxy')?.configMap?.optional).toBe(true);
    expect(volumes.get('kube-proxy')?.configMap?.optional).toBe(true);
    const mountOf = (cm: string) => c.volumeMounts!.find((m) => m.name === volumes.get(cm)!.name)!.mountPath;
    expect(mountOf('kube-proxy')).toBe('/var/lib/kube-proxy'); // kubeadm's config.conf names /var/lib/kube-proxy/kubeconfig.conf

    // The container's script, run with its paths moved into a temp dir and bpfproxy replaced by echo.
    const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-ds-'));
    try {
      const own = join(tmp, 'own');
      const kubeadm = join(tmp, 'kubeadm');
      mkdirSync(own);
      mkdirSync(kubeadm);
      const runnable = script
        .replaceAll(mountOf('bpfproxy'), own)
        .replaceAll(mountOf('kube-proxy'), kubeadm)
        .replace('exec /opt/bpfproxy/bin/bpfproxy', 'exec echo');
      const run = () => execFileSync(c.command![0]!, [...c.command!.slice(1), runnable], { env: { NODE_NAME: 'node-1', PATH: '/usr/bin:/bin' }, encoding: 'utf8' }).trim().split(/\s+/);
      expect(run()).toEqual(['run', '--proxy-mode=bpf', '--hostname-override=node-1', expect.stringMatching(/^--cgroup-root=/)]);
      writeFileSync(join(kubeadm, 'config.conf'), 'kind: KubeProxyConfiguration\n');
      expect(run()).toContain(`--config=${kubeadm}/config.conf`);
      writeFileSync(join(own, 'config.conf'), 'kind: KubeProxyConfiguration\n');
      expect(run()).toContain(`--config=${own}/config.conf`);
      expect(run()).not.toContain(`--config=${kubeadm}/config.conf`);

      // The flags are ones bpfproxy takes, with no "no effect here" notice.
      const cl = parseCommandLine(run().map((a) => a.replace(`${own}/config.conf`, writeOwnConfig(tmp))));
      expect('config' in cl && cl.command).toBe('run');
      if (!('config' in cl)) return;
      expect(cl.config.mode).toBe('bpf');
      expect(cl.config.nodeName).toBe('node-1');
      expect(cl.notices).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('its env reads the API server address from the bpfproxy ConfigMap, optionally', () => {
    for (const name of ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) {
      const ref = c.env!.find((e) => e.name === name)?.valueFrom?.configMapKeyRef;
      expect(ref).toMatchObject({ name: 'bpfproxy', optional: true });
    }
  });
});

/** The example ConfigMap's config.conf, as the DaemonSet would mount it. */
function writeOwnConfig(dir: string): string {
  const cm = only<{ data: Record<string, string> }>('ConfigMap', 'bpfproxy');
  const path = join(dir, 'own-config.conf');
  writeFileSync(path, cm.data['config.conf']!);
  return path;
}

describe('the example ConfigMap', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-cm-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('is a KubeProxyConfiguration bpfproxy reads without a warning', () => {
    const cl = parseCommandLine(['run', `--config=${writeOwnConfig(tmp)}`, '--hostname-override=n1']);
    if (!('config' in cl)) throw new Error('expected a run command line');
    expect(cl.notices).toEqual([]);
    expect(cl.ignoredFileFields).toEqual([]);
    expect(cl.config.clusterCIDRs).toEqual(['10.244.0.0/16']);
    expect(cl.config.nodePortAddresses.kind).toBe('primary');
  });
});

describe('RBAC', () => {
  const role = only<IClusterRole>('ClusterRole', 'bpfproxy');
  const binding = only<IClusterRoleBinding>('ClusterRoleBinding', 'bpfproxy');
  const ds = only<IDaemonSet>('DaemonSet', 'bpfproxy');
  const allows = (group: string, resource: string, verb: string) =>
    role.rules!.some((r) => r.apiGroups?.includes(group) && r.resources?.includes(resource) && r.verbs.includes(verb));

  it('binds the DaemonSet\'s ServiceAccount to the role', () => {
    const sa = ds.spec!.template.spec!.serviceAccountName!;
    only('ServiceAccount', sa);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata!.name });
    expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: sa, namespace: 'kube-system' });
  });

  it('grants what the source reads and the Event recorder writes, and nothing to change the watched objects', () => {
    for (const [group, resource] of [['', 'services'], ['', 'nodes'], ['discovery.k8s.io', 'endpointslices']] as const) {
      for (const verb of ['get', 'list', 'watch']) expect(allows(group, resource, verb), `${verb} ${resource}`).toBe(true);
      for (const verb of ['create', 'update', 'patch', 'delete']) expect(allows(group, resource, verb), `${verb} ${resource}`).toBe(false);
    }
    for (const verb of ['create', 'patch']) expect(allows('events.k8s.io', 'events', verb), `${verb} events`).toBe(true);
  });
});

describe('the cleanup Job', () => {
  it('runs `bpfproxy cleanup` on one node with the DaemonSet\'s mounts', () => {
    const job = only<{ spec: { template: { spec: { nodeName: string; containers: { args: string[]; volumeMounts: { mountPath: string }[] }[] } } } }>('Job');
    const pod = job.spec.template.spec;
    expect(pod.nodeName).toBe('node-1');
    const cl = parseCommandLine(pod.containers[0]!.args);
    expect(cl.command).toBe('cleanup');
    if ('notices' in cl) expect(cl.notices).toEqual([]);
    const ds = only<IDaemonSet>('DaemonSet', 'bpfproxy');
    const dsMounts = ds.spec!.template.spec!.containers[0]!.volumeMounts!.map((m) => m.mountPath).filter((p) => !p.startsWith('/etc/') && !p.startsWith('/var/lib/'));
    expect(pod.containers[0]!.volumeMounts.map((m) => m.mountPath).sort()).toEqual(dsMounts.sort());
  });
});
