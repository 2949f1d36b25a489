// `bpfproxy cleanup --kube-proxy` and `bpfproxy --cleanup --kube-proxy` ask
// for kube-proxy's leftovers to go too; anywhere else the flag does nothing
// and says so.
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';

function parse(argv: string[]) {
  const cl = parseCommandLine(argv);
  if (cl.command === 'help') throw new Error('help');
  return cl;
}

describe('--kube-proxy', () => {
  it.each([[['cleanup', '--kube-proxy']], [['--cleanup', '--kube-proxy']], [['--cleanup=true', '--kube-proxy=true']]])('%j removes kube-proxy\'s leftovers', (argv) => {
    expect(parse(argv)).toMatchObject({ command: 'cleanup', cleanupKubeProxy: true });
  });

  it('plain cleanup leaves kube-proxy\'s state alone', () => {
    expect(parse(['cleanup'])).toMatchObject({ command: 'cleanup', cleanupKubeProxy: false });
    expect(parse(['cleanup', '--kube-proxy=false'])).toMatchObject({ command: 'cleanup', cleanupKubeProxy: false });
  });

  it('without cleanup it has no effect, with one notice', () => {
    const cl = parse(['--kube-proxy']);
    expect(cl).toMatchObject({ command: 'run', cleanupKubeProxy: false });
    expect(cl.notices).toContainEqual({ field: '--kube-proxy', message: expect.stringMatching(/only with cleanup/) });
  });

  it('is in the help of cleanup', () => {
    const help = parseCommandLine(['cleanup', '--help']);
    expect(help.command).toBe('help');
    if (help.command === 'help') expect(help.text).toMatch(/--kube-proxy \[bool\]\s+with cleanup/);
  });
});
