// Reads a child's stdout one line at a time, with a bounded wait per line.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export class LineReader {
  private readonly buffered: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;

  constructor(input: Readable) {
    const rl = createInterface({ input });
    rl.on('line', (line) => this.push(line));
    rl.on('close', () => {
      this.ended = true;
      this.push(null);
    });
  }

  /** The next line, or null when the stream ended or nothing came within timeoutMs. */
  next(timeoutMs: number): Promise<string | null> {
    const ready = this.buffered.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.ended) return Promise.resolve(null);
    if (this.waiter) throw new Error('LineReader: one reader at a time');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(line);
      };
    });
  }

  private push(line: string | null): void {
    if (this.waiter) this.waiter(line);
    else if (line !== null) this.buffered.push(line);
  }
}
