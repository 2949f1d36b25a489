// A fake node for the ipvs dataplane: applies each ipvsadm, ipset, ip and
// iptables-restore call to an IpvsKernelModel (with the kernel's errors) and
// answers the listings from it. No root, no IPVS.
import { IpvsDataplane } from '../../src/dataplane/ipvs/dataplane.js';
import type { RunResult, Runner } from '../../src/dataplane/ipvs/exec.js';
import { IpvsKernelModel } from '../../src/dataplane/ipvs/model.js';
import { XtablesModel } from '../../src/dataplane/iptables/model.js';
import { DUMMY_DEVICE } from '../../src/dataplane/ipvs/names.js';
import type { IpvsConfig } from '../../src/dataplane/ipvs/objects.js';
import type { IPFamily } from '../../src/model/types.js';
import { fakeXtables, silentLog } from './iptables-model.js';
import { TEST_POD_CIDRS } from './trace-oracle.js';

export const TEST_IPVS_CONFIG: IpvsConfig = { clusterCidrs: TEST_POD_CIDRS, masqueradeAll: false, masqueradeBit: 14, scheduler: 'rr' };

export interface FakeIpvs {
  model: IpvsKernelModel;
  run: Runner;
  calls: { command: string; args: readonly string[]; input: string }[];
  /** Make the next call of this command (e.g. "ipvsadm -R") fail with this stderr. */
  failNext: { command: string; stderr: string } | null;
}

const ok = (stdout = ''): RunResult => ({ ok: true, stdout, stderr: '' });
const fail = (stderr: string): RunResult => ({ ok: false, stdout: '', stderr });

export function fakeIpvs(): FakeIpvs {
  const xtables = new XtablesModel();
  const model = new IpvsKernelModel(xtables);
  const xt = fakeXtables(xtables);
  const fake: FakeIpvs = {
    model,
    calls: [],
    failNext: null,
    run: async (command, args, input = '') => {
      fake.calls.push({ command, args, input });
      const line = `${command} ${args.join(' ')}`;
      if (fake.failNext && line.startsWith(fake.failNext.command)) {
        const { stderr } = fake.failNext;
        fake.failNext = null;
        return fail(stderr);
      }
      if (command.includes('tables-')) return xt.run(command, args, input);
      try {
        switch (line) {
          case 'ipvsadm -S -n': return ok(model.ipvsSave());
          case 'ipvsadm -R': model.ipvsRestore(input); return ok();
          case 'ipvsadm -L -n': return ok(model.ipvsList());
          case 'ipset save': return ok(model.ipsetSave());
          case 'ipset restore -exist': model.ipsetRestore(input); return ok();
          case 'ip -batch -': model.ipBatch(input); return ok();
          case 'ip -o -d link show':
            return ok(`1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN \\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n${model.dummy ? `7: ${DUMMY_DEVICE}: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN \\    link/ether 96:1c:ad:8f:0b:5e brd ff:ff:ff:ff:ff:ff promiscuity 0 \\    dummy ${model.dummy.alias ? `\\    alias ${model.dummy.alias}` : ''}\n` : ''}`);
          case `ip link add ${DUMMY_DEVICE} type dummy`:
            if (model.dummy) return fail('RTNETLINK answers: File exists');
            model.createDummy('');
            return ok();
          case `ip link del ${DUMMY_DEVICE}`:
            if (!model.dummy) return fail(`Cannot find device "${DUMMY_DEVICE}"`);
            model.dummy = null;
            return ok();
          case `ip -o addr show dev ${DUMMY_DEVICE}`:
            if (!model.dummy) return fail(`Device "${DUMMY_DEVICE}" does not exist.`);
            return ok([...model.dummy.addresses].map((a) => `7: ${DUMMY_DEVICE}    ${a.includes(':') ? `inet6 ${a}/128` : `inet ${a}/32`} scope global ${DUMMY_DEVICE}\\       valid_lft forever preferred_lft forever`).join('\n'));
        }
        const alias = new RegExp(`^ip link set dev ${DUMMY_DEVICE} alias (\\S+)$`).exec(line);
        if (alias && model.dummy) {
          model.dummy.alias = alias[1]!;
          return ok();
        }
        if (command === 'ipvsadm' && args[0] === '--set') return ok();
      } catch (err) {
        return fail((err as Error).message);
      }
      return fail(`fake: ${line} not handled`);
    },
  };
  return fake;
}

export function modelIpvs(fake = fakeIpvs(), config = TEST_IPVS_CONFIG, families: IPFamily[] = ['IPv4', 'IPv6'], now?: () => number): { dp: IpvsDataplane; fake: FakeIpvs } {
  return { dp: new IpvsDataplane({ config, log: silentLog, families, run: fake.run, now }), fake };
}
