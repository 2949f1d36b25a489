// The IPVS schedulers --ipvs-scheduler accepts (kube-proxy passes any name to
// the kernel; these are the ones the kernel ships), here so config can check
// the name without importing a dataplane. rr is kube-proxy's default.
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh'] as const;
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];
export const DEFAULT_IPVS_SCHEDULER: IpvsScheduler = 'rr';
