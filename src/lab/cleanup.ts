// `node dist/lab/cleanup.js`: removes the labs of crashed or killed runs (owner
// process gone). Labs whose owner still runs are left alone.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cleanupStaleLabs } from './destroy.js';

export function main(): number {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bpfproxy lab cleanup: needs root (namespaces, cgroups and bpffs belong to root)\n');
    return 1;
  }
  const report = cleanupStaleLabs();
  for (const runId of report.removed) process.stdout.write(`removed lab ${runId}\n`);
  for (const runId of report.live) process.stdout.write(`kept lab ${runId}: its owner is still running\n`);
  for (const e of report.errors) process.stderr.write(`${e}\n`);
  return report.errors.length > 0 ? 1 : 0;
}

const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) process.exitCode = main();
