// Log lines as an operator reads them: errors with message and stack whatever
// was logged, lines in time order, and klog-like text for a terminal.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { createLogger, type LogFormat } from '../../../src/util/log.js';

function capture(format: LogFormat) {
  const chunks: string[] = [];
  const out = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
  return { chunks, log: createLogger('debug', format, out as unknown as Parameters<typeof createLogger>[2]) };
}

describe('logger', () => {
  it('logs an error with its message, type, stack, cause and own fields', () => {
    const { chunks, log } = capture('json');
    log.error({ err: new ConfigError('--v', 'bad', { cause: new Error('root cause') }) }, 'x');
    const err = JSON.parse(chunks[0]!).err;
    expect(err.type).toBe('ConfigError');
    expect(err.message).toBe('--v: bad: root cause');
    expect(err.stack).toMatch(/^ConfigError: --v: bad\n\s+at /);
    expect(err.stack).toMatch(/caused by: Error: root cause/);
    expect(err.field).toBe('--v');
  });

  it('gives a message for what is not an Error (a string, a plain object, a number), never {"type":"Object","stack":""}', () => {
    const { chunks, log } = capture('json');
    log.warn({ err: 'connection refused' }, 'a');
    log.warn({ err: { code: 'ECONNRESET' } }, 'b');
    log.warn({ error: 42 }, 'c');
    log.warn({ err: { message: 'm', statusCode: 500 } }, 'd');
    expect(chunks.map((c) => JSON.parse(c).err ?? JSON.parse(c).error)).toEqual([
      { message: 'connection refused' },
      { message: "{ code: 'ECONNRESET' }" },
      { message: '42' },
      { message: 'm', statusCode: 500 },
    ]);
  });

  it('stamps lines with strictly increasing ISO times with microseconds', () => {
    const { chunks, log } = capture('json');
    for (let i = 0; i < 200; i++) log.info({ i }, 'tick');
    const times = chunks.map((c) => JSON.parse(c).time as string);
    for (const t of times) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    for (let i = 1; i < times.length; i++) expect(times[i]! > times[i - 1]!).toBe(true);
    expect(Math.abs(Date.parse(times.at(-1)!) - Date.now())).toBeLessThan(5000);
  });

  it('--logging-format=text writes klog-like lines: level letter, date, time, pid, message, key=value', () => {
    const { chunks, log } = capture('text');
    log.info({ full: true, services: 12, node: 'node-a' }, 'synced');
    log.warn('careful');
    log.error({ err: new Error('boom') }, 'sync failed');
    log.fatal('cannot start');
    log.debug('detail');
    const pid = String(process.pid);
    expect(chunks[0]).toMatch(new RegExp(`^I\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d{6} +${pid} bpfproxy\\] "synced" full=true services=12 node="node-a"\\n$`));
    expect(chunks[1]).toMatch(/^W\d{4} .*\] "careful"\n$/);
    expect(chunks[2]).toMatch(/^E\d{4} .*\] "sync failed" err="boom"\n\tat /);
    expect(chunks[3]).toMatch(/^F\d{4} /);
    expect(chunks[4]).toMatch(/^I\d{4} .*\] "detail"\n$/);
  });
});
