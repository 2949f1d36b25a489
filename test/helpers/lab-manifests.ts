// Manifests for lab tests: Services and EndpointSlices as YAML text, written
// into a manifest directory the way editors do (a temporary file renamed into
// place), and a summary of client results by the pod that answered.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientResult } from '../../src/lab/client.js';

export interface PortSpec { name: string; port: number; protocol: string; nodePort?: number }

/** Writes a manifest the way editors and kubectl-like tools do: a temporary file renamed into place. */
export function put(dir: string, name: string, text: string | Buffer): void {
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

/** A Service in namespace "lab"; `extra` lines are appended to its spec (two-space indented). */
export function service(name: string, ip: string, ports: PortSpec[], extra: string[] = []): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: lab}
spec:
  clusterIP: ${ip}
${extra.map((l) => `  ${l}\n`).join('')}  ports:
${ports.map((p) => `  - {name: ${p.name}, port: ${p.port}, targetPort: ${p.port}, protocol: ${p.protocol}${p.nodePort ? `, nodePort: ${p.nodePort}` : ''}}`).join('\n')}
`;
}

export function slice(svc: string, ports: PortSpec[], eps: { ip: string; node: string }[], family = 'IPv4'): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${svc}-${family.toLowerCase()}
  namespace: lab
  labels: {kubernetes.io/service-name: ${svc}}
addressType: ${family}
ports:
${ports.map((p) => `- {name: ${p.name}, port: ${p.port}, protocol: ${p.protocol}}`).join('\n')}
endpoints:${eps.length === 0 ? ' []' : ''}
${eps.map((e) => `- {addresses: [${e.ip}], nodeName: ${e.node}, conditions: {ready: true}}`).join('\n')}
`;
}

/** A ClusterIP service on port 80/TCP in namespace "lab" with its one endpoint, `backend` on node1. */
export function oneEndpointService(name: string, ip: string, backend: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: lab}
spec:
  clusterIP: ${ip}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: lab, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints: [{addresses: [${backend}], nodeName: node1}]
`;
}

export const HTTP: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP' }];
export const DNS: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP' }];

/** The pods that answered, and "error:CODE" for attempts that failed. */
export function pods(results: ClientResult[]): Set<string> {
  return new Set(results.map((r) => (r.ok ? r.pod : `error:${r.error}`)));
}
