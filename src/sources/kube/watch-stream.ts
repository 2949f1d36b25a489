// The body of a watch, parsed as it arrives: one JSON event a line
// ({"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}), lines
// split anywhere across chunks (also inside a multi-byte character: lines are
// cut on the byte 0x0A, which UTF-8 never uses inside a character). Only one
// partial line is ever buffered; a line longer than the limit is skipped
// whole, reported once, rather than buffered without bound.
import type { KubeObject } from '../types.js';

export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }
  /** Nothing changed; the stream is now at this resourceVersion (asked for with allowWatchBookmarks). */
  | { type: 'BOOKMARK'; resourceVersion: string }
  /** A Status from the server; code 410 means the resourceVersion is too old: re-list. */
  | { type: 'ERROR'; code: number; reason: string; message: string }
  /** A line we cannot use: not JSON, an unknown type, an object without metadata, or too long. */
  | { type: 'MALFORMED'; problem: string };

const NEWLINE = 0x0a;
/** etcd refuses objects over 1.5 MB; a line this long is not an object the server could hold. */
export const MAX_LINE_BYTES = 16 << 20;

export class WatchStreamParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside a line over the limit: drop bytes until its end. */
  private skipping = false;

  constructor(private readonly emit: (ev: WatchEvent) => void, private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const part = chunk.subarray(start, nl);
      start = nl + 1;
      let line: Buffer | undefined;
      if (this.pendingBytes === 0 && !this.skipping) {
        // The common case, a whole line inside one chunk: parsed in place, no copy.
        if (part.length <= this.maxLineBytes) line = part;
        else this.tooLong();
      } else {
        this.append(part);
        if (!this.skipping) line = Buffer.concat(this.pending, this.pendingBytes);
      }
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = false;
      if (line && line.length > 0) this.emit(parseLine(line));
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
  }

  /** The stream ended: a last line without its newline (a server cut off mid-event) is malformed unless it parses. */
  end(): void {
    if (this.pendingBytes > 0 && !this.skipping) this.emit(parseLine(Buffer.concat(this.pending, this.pendingBytes)));
    this.pending = [];
    this.pendingBytes = 0;
    this.skipping = false;
  }

  /** Adds to the pending line, copied (the chunk's memory may be reused), unless that makes it too long. */
  private append(part: Buffer): void {
    if (this.skipping) return;
    if (this.pendingBytes + part.length > this.maxLineBytes) return this.tooLong();
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
  }

  private tooLong(): void {
    this.skipping = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.emit({ type: 'MALFORMED', problem: `a watch event over ${this.maxLineBytes} bytes, skipped` });
  }
}

export function parseLine(line: Buffer): WatchEvent {
  let ev: unknown;
  try {
    ev = JSON.parse(line.toString('utf8'));
  } catch (err) {
    return { type: 'MALFORMED', problem: `not JSON: ${(err as Error).message}` };
  }
  if (!isRecord(ev) || !isRecord(ev.object)) return { type: 'MALFORMED', problem: 'an event without an object' };
  const obj = ev.object;
  switch (ev.type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      if (!isRecord(obj.metadata)) return { type: 'MALFORMED', problem: `a ${ev.type} event whose object has no metadata` };
      return { type: ev.type, object: obj as KubeObject };
    case 'BOOKMARK': {
      const rv = isRecord(obj.metadata) ? obj.metadata.resourceVersion : undefined;
      if (typeof rv !== 'string' || rv === '') return { type: 'MALFORMED', problem: 'a BOOKMARK without a resourceVersion' };
      return { type: 'BOOKMARK', resourceVersion: rv };
    }
    case 'ERROR':
      return {
        type: 'ERROR',
        code: typeof obj.code === 'number' ? obj.code : 0,
        reason: typeof obj.reason === 'string' ? obj.reason : '',
        message: typeof obj.message === 'string' ? obj.message : 'a watch ERROR event without a message',
      };
    default:
      return { type: 'MALFORMED', problem: `an event of unknown type ${JSON.stringify(ev.type)}` };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
