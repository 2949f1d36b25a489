// A fake iptables for the iptables dataplane: applies each
// `iptables-restore --noflush` input to an XtablesModel (per table block
// atomically, enforcing what iptables enforces) and answers iptables-save
// from it. No root, no kernel.
import { pino } from 'pino';
import { IptablesDataplane } from '../../src/dataplane/iptables/dataplane.js';
import { XtablesModel } from '../../src/dataplane/iptables/model.js';
import { DEFAULT_MASQUERADE_BIT, type XtConfig } from '../../src/dataplane/iptables/objects.js';
import type { XtResult, XtRunner } from '../../src/dataplane/iptables/xtables.js';
import type { IPFamily } from '../../src/model/types.js';
import { TEST_POD_CIDRS } from './trace-oracle.js';

export const TEST_XT_CONFIG: XtConfig = { clusterCidrs: TEST_POD_CIDRS, masqueradeAll: false, masqueradeBit: DEFAULT_MASQUERADE_BIT, localhostNodePorts: false };

export interface FakeXtables {
  model: XtablesModel;
  run: XtRunner;
  /** Every call: the command, its args and the text given. */
  calls: { command: string; args: readonly string[]; input: string }[];
  /** Make the next restore fail with this stderr. */
  failNext: string | null;
}

export function fakeXtables(model = new XtablesModel()): FakeXtables {
  const fake: FakeXtables = {
    model,
    calls: [],
    failNext: null,
    run: async (command, args, input = ''): Promise<XtResult> => {
      fake.calls.push({ command, args, input });
      const family: IPFamily = command.startsWith('ip6') ? 'IPv6' : 'IPv4';
      if (command.endsWith('-restore')) {
        if (args.join(' ') !== '-w 5 --noflush') return { ok: false, stdout: '', stderr: `fake: unexpected args ${args.join(' ')}` };
        if (fake.failNext !== null) {
          const stderr = fake.failNext;
          fake.failNext = null;
          return { ok: false, stdout: '', stderr };
        }
        try {
          model.apply(family, input);
          return { ok: true, stdout: '', stderr: '' };
        } catch (err) {
          return { ok: false, stdout: '', stderr: `iptables-restore: ${(err as Error).message}` };
        }
      }
      if (command.endsWith('-save') && args[0] === '-t') {
        const all = model.save(family);
        const start = all.indexOf(`*${args[1]}\n`);
        return { ok: true, stdout: all.slice(start, all.indexOf('COMMIT\n', start) + 7), stderr: '' };
      }
      return { ok: false, stdout: '', stderr: `fake: ${command} ${args.join(' ')} not handled` };
    },
  };
  return fake;
}

export const silentLog = pino({ level: 'silent' });

export function modelIptables(fake = fakeXtables(), config = TEST_XT_CONFIG): { dp: IptablesDataplane; fake: FakeXtables } {
  return { dp: new IptablesDataplane({ config, log: silentLog, families: ['IPv4', 'IPv6'], run: fake.run }), fake };
}
