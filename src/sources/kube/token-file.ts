// A bearer token kept in a file that is replaced as it rotates (the kubelet
// refreshes projected service account tokens well before they expire):
// re-read once a minute, as client-go's cached file token source does, so a
// request never carries a token more than a minute old.
import { readFileSync } from 'node:fs';

const REREAD_MS = 60_000;

export class TokenFile {
  private token = '';
  private readAt = -Infinity;

  constructor(readonly path: string, private readonly now: () => number = Date.now) {}

  /** The token; throws only when the file has never been readable. */
  current(): string {
    if (this.now() - this.readAt < REREAD_MS) return this.token;
    try {
      const token = readFileSync(this.path, 'utf8').trim();
      if (token === '') throw new Error('the file is empty');
      this.token = token;
      this.readAt = this.now();
    } catch (err) {
      // Mid-rotation the file can be briefly absent: keep the last good token.
      if (this.token === '') throw new Error(`cannot read token file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    return this.token;
  }
}
