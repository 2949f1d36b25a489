// The proxy modes an operator can name with --proxy-mode, in fallback order:
// bpf first, then nftables (kube-proxy's own future), iptables, ipvs (deprecated
// upstream since Kubernetes 1.35). Which of them are built, and how one is
// chosen and opened, is src/dataplane/select.ts's business; this is just the
// name, so config can validate it without importing a dataplane.

export const PROXY_MODES = ['bpf', 'nftables', 'iptables', 'ipvs'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];
