// Which objects the proxy serves, decided the way kube-proxy decides it.
// kube-proxy hands its Service and EndpointSlice informers the label selector
// below (pkg/proxy/apis/well_known_labels.go, cmd/kube-proxy/app/server.go):
// a Service claimed by another proxy (service-proxy-name) and the slices of a
// headless Service are none of our business. Nodes are never label-filtered.
import type { KubeObject, ObjectKind } from './types.js';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

/** The label selector the API server applies to Services and EndpointSlices for us. */
export const PROXY_LABEL_SELECTOR = `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`;

/**
 * The same selection as PROXY_LABEL_SELECTOR, for sources that filter on
 * their own (the manifest directory). The label's presence is what counts,
 * whatever its value, as with a `!key` selector.
 */
export function selectedByProxy(kind: ObjectKind, obj: KubeObject): boolean {
  if (kind === 'Node') return true;
  const labels = obj.metadata?.labels;
  if (labels === undefined || labels === null || typeof labels !== 'object') return true;
  return !Object.hasOwn(labels, SERVICE_PROXY_NAME_LABEL) && !Object.hasOwn(labels, HEADLESS_LABEL);
}
