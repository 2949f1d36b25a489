// After a failed start the proxy says what still serves the node, and only
// what is true: pins left in the pin directory (an earlier run's, or a
// running proxy's) keep serving; an empty or absent directory serves nothing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { datapathAfterFailedStart } from '../../src/cli/failed-start.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'bpfproxy-failed-start-'));
  dirs.push(d);
  return d;
};

describe('what a failed start says about the datapath', () => {
  it('says nothing serves when nothing is pinned (absent, empty, or only an empty links directory)', () => {
    const d = scratch();
    expect(datapathAfterFailedStart(join(d, 'absent'))).toMatch(/^nothing is pinned in .*absent: no bpf datapath serves this node$/);
    expect(datapathAfterFailedStart(d)).toContain('nothing is pinned');
    mkdirSync(join(d, 'links'));
    expect(datapathAfterFailedStart(d)).toContain('nothing is pinned');
  });

  it('says the pinned datapath keeps serving when pins are there', () => {
    const d = scratch();
    writeFileSync(join(d, 'bpx_fe_v1'), '');
    expect(datapathAfterFailedStart(d)).toBe(`the bpf datapath already pinned in ${d} (an earlier run's, or the running proxy's) keeps serving as it was`);
    const e = scratch();
    mkdirSync(join(e, 'links'));
    writeFileSync(join(e, 'links', 'connect4'), '');
    expect(datapathAfterFailedStart(e)).toContain('keeps serving');
  });

  it('does not guess when the directory cannot be read', () => {
    const d = scratch();
    const file = join(d, 'a-file');
    writeFileSync(file, '');
    expect(datapathAfterFailedStart(file)).toMatch(/^cannot tell whether a bpf datapath serves this node: .* \(ENOTDIR\)$/);
  });
});
