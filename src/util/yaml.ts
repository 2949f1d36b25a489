// The yaml package, loaded on first use. Importing it costs about 9 MB of
// resident memory (its code, compiled), and a proxy fed by the Kubernetes
// source with a JSON kubeconfig and no --config file never parses YAML:
// the importers (config/file.ts, sources/kube/kubeconfig.ts) call this
// instead of importing it at the top, so that proxy never loads it.
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | null = null;

/** The yaml module (its CommonJS build, which the package serves to Node). */
export function yaml(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return loaded;
}
