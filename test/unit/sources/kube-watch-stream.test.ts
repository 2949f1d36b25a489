// The watch body parser (src/sources/kube/watch-stream.ts): events come out
// whole and in order however the stream is cut into chunks.
import { describe, expect, it } from 'vitest';
import { WatchStreamParser, type WatchEvent } from '../../../src/sources/kube/watch-stream.js';

const svc = (name: string, rv: string, note = '') => ({ kind: 'Service', metadata: { name, namespace: 'default', resourceVersion: rv, annotations: { note } } });

const STREAM = [
  { type: 'ADDED', object: svc('a', '11', 'café ☕ 日本') },
  { type: 'MODIFIED', object: svc('a', '12', '🚀'.repeat(50)) },
  { type: 'BOOKMARK', object: { kind: 'Service', metadata: { resourceVersion: '15' } } },
  { type: 'DELETED', object: svc('a', '16') },
  { type: 'ERROR', object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 1 (16)' } },
];
const BYTES = Buffer.from(STREAM.map((e) => JSON.stringify(e) + '\n').join(''));

const EXPECTED: WatchEvent[] = [
  { type: 'ADDED', object: svc('a', '11', 'café ☕ 日本') },
  { type: 'MODIFIED', object: svc('a', '12', '🚀'.repeat(50)) },
  { type: 'BOOKMARK', resourceVersion: '15' },
  { type: 'DELETED', object: svc('a', '16') },
  { type: 'ERROR', code: 410, reason: 'Expired', message: 'too old resource version: 1 (16)' },
];

function parse(chunks: Buffer[], maxLineBytes?: number): WatchEvent[] {
  const out: WatchEvent[] = [];
  const p = new WatchStreamParser((ev) => out.push(ev), maxLineBytes);
  for (const c of chunks) p.push(c);
  p.end();
  return out;
}

describe('WatchStreamParser', () => {
  it('parses one chunk holding every event', () => {
    expect(parse([BYTES])).toEqual(EXPECTED);
  });

  it('gives the same events for a stream cut at every byte (inside multi-byte characters too)', () => {
    for (let cut = 1; cut < BYTES.length; cut++) {
      expect(parse([BYTES.subarray(0, cut), BYTES.subarray(cut)]), `cut at ${cut}`).toEqual(EXPECTED);
    }
  });

  it('gives the same events fed a byte at a time, from a buffer that is reused', () => {
    const out: WatchEvent[] = [];
    const p = new WatchStreamParser((ev) => out.push(ev));
    const reused = Buffer.alloc(1);
    for (const b of BYTES) {
      reused[0] = b;
      p.push(reused);
    }
    expect(out).toEqual(EXPECTED);
  });

  it('skips blank lines; a last line without its newline counts only if it parses', () => {
    const last = JSON.stringify(STREAM[0]);
    expect(parse([Buffer.from(`\n\n${last}`)])).toEqual([EXPECTED[0]]);
    expect(parse([Buffer.from(last.slice(0, 20))])).toEqual([expect.objectContaining({ type: 'MALFORMED', problem: expect.stringMatching(/^not JSON/) })]);
  });

  it('reports unusable lines and goes on with the next', () => {
    const lines = [
      'not json',
      JSON.stringify({ type: 'ADDED' }),
      JSON.stringify({ type: 'ADDED', object: { kind: 'Service' } }),
      JSON.stringify({ type: 'BOOKMARK', object: { metadata: {} } }),
      JSON.stringify({ type: 'SURPRISE', object: { metadata: {} } }),
      JSON.stringify(STREAM[3]),
    ];
    const out = parse([Buffer.from(lines.join('\n') + '\n')]);
    expect(out.map((e) => (e.type === 'MALFORMED' ? e.problem.replace(/:.*/, '') : e.type))).toEqual([
      'not JSON',
      'an event without an object',
      'a ADDED event whose object has no metadata',
      'a BOOKMARK without a resourceVersion',
      'an event of unknown type "SURPRISE"',
      'DELETED',
    ]);
  });

  it('an ERROR event that is not 410 keeps its code and message', () => {
    const line = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd is sad' } });
    expect(parse([Buffer.from(line + '\n')])).toEqual([{ type: 'ERROR', code: 500, reason: 'InternalError', message: 'etcd is sad' }]);
  });

  it('skips a line over the limit whole, however it is cut, and reads the next', () => {
    const big = JSON.stringify({ type: 'ADDED', object: svc('big', '20', 'x'.repeat(300)) });
    const small = JSON.stringify(STREAM[3]);
    const bytes = Buffer.from(`${big}\n${small}\n`);
    for (const cut of [1, 100, big.length, big.length + 1, bytes.length - 5]) {
      const out = parse([bytes.subarray(0, cut), bytes.subarray(cut)], 256);
      expect(out, `cut at ${cut}`).toEqual([{ type: 'MALFORMED', problem: 'a watch event over 256 bytes, skipped' }, EXPECTED[3]]);
    }
  });
});
