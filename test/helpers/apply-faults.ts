// Failures injected into the rule modes' applier (issue 12, item 8), through
// the seam they already have: the runner each takes (`nft`, `run`). The Nth
// application (`nft -f`, `iptables-restore`) fails, either refused before it
// changes anything or after the kernel took it (a tool that committed and
// then failed: the dataplane cannot tell, so it must not trust either state).
export type ApplyFault = 'refused' | 'applied then failed';

interface Result { ok: boolean; stdout: string; stderr: string }

export class FailingApplier<A extends unknown[]> {
  /** Applications seen since arm(). */
  applies = 0;
  private n = 0;
  private how: ApplyFault = 'refused';
  /** The wrapped runner, to hand to the dataplane. */
  readonly run: (...args: A) => Promise<Result>;

  constructor(inner: (...args: A) => Promise<Result>, isApply: (...args: A) => boolean) {
    this.run = async (...args: A) => {
      if (!isApply(...args) || ++this.applies !== this.n) return inner(...args);
      const stderr = `injected failure of application ${this.n} (${this.how})`;
      if (this.how === 'applied then failed') {
        const r = await inner(...args);
        if (!r.ok) throw new Error(`the application to fail after it went through failed by itself: ${r.stderr}`);
      }
      return { ok: false, stdout: '', stderr };
    };
  }

  /** Fails the nth application from now (0: none, counting only). */
  arm(n: number, how: ApplyFault = 'refused'): void {
    this.n = n;
    this.how = how;
    this.applies = 0;
  }
}
