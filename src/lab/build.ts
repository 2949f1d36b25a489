// Executes BuildSteps: namespaces, then sysctls, then the ip batches stage by stage.
// Spawning is what costs here (a few ms each from Node), so namespaces and
// sysctls take one process each for the whole lab.
import { existsSync } from 'node:fs';
import { forEachLimited, ipBatch, LabError, run } from './commands.js';
import { netnsPath } from './plan.js';
import { pythonArgv } from './podserver.js';
import type { BuildSteps } from './topology.js';

const PARALLEL = 16;

export async function buildNetwork(steps: BuildSteps): Promise<void> {
  const taken = steps.namespaces.filter((ns) => existsSync(netnsPath(ns)));
  if (taken.length > 0) throw new LabError(`lab: netns ${taken.join(', ')} exists already (a stale lab? run node dist/lab/cleanup.js)`);
  await run(['ip', '-batch', '-'], { input: steps.namespaces.map((ns) => `netns add ${ns}\n`).join('') });
  await run(pythonArgv('sysctl.py', JSON.stringify(steps.sysctls.map(({ netns, values }) => ({ netns: netnsPath(netns), values })))));
  for (const stage of steps.stages) await forEachLimited(stage, PARALLEL, (b) => ipBatch(b.netns, b.commands));
}
