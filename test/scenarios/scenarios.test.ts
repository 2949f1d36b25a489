// Golden scenarios: test/scenarios/cases/NAME.yaml -> NAME.golden. Run with
// UPDATE_GOLDEN=1 to rewrite the golden files, then read the diff: a golden
// file is a claim about kube-proxy's behaviour, not a snapshot to accept blindly.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../helpers/scenario.js';

const dir = join(import.meta.dirname, 'cases');
const cases = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('planner scenarios', () => {
  it('has scenarios', () => expect(cases.length).toBeGreaterThan(0));
  for (const file of cases) {
    it(file.replace(/\.yaml$/, ''), () => {
      const got = runScenario(join(dir, file));
      const goldenPath = join(dir, file.replace(/\.yaml$/, '.golden'));
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(goldenPath)) {
        if (process.env.CI) throw new Error(`${goldenPath} is missing (run UPDATE_GOLDEN=1 locally and review it)`);
        writeFileSync(goldenPath, got);
      }
      expect(got).toBe(readFileSync(goldenPath, 'utf8'));
    });
  }
});
