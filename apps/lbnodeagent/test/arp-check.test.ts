// The ARP check's shell with an in-memory kernel and fake sysctls: a verdict is told once
// per change (log line, Event, metric), a kube-ipvs0 change is checked at once, and
// setARPSysctls writes the strict values or says once that it cannot.
import t from 'tap';
import { MemoryNetlinkHandle } from '@purelb/linux-net/testing';
import type { ObjectReference } from '@purelb/k8s-glue';
import { ArpCheck, type SysctlAccess } from '../src/arp-check.ts';
import type { ArpVerdict } from '../src/arp-safety.ts';

interface World {
  check: ArpCheck;
  netlink: MemoryNetlinkHandle;
  values: Map<string, number>;
  events: { ref: ObjectReference; type: string; reason: string; message: string }[];
  lines: { level: string; msg: string }[];
  verdicts: ArpVerdict[];
  option: { on: boolean };
  writable: { on: boolean };
}

function world(clock?: { now: number }): World {
  const netlink = new MemoryNetlinkHandle();
  netlink.addLink({ name: 'eth0' });
  const values = new Map<string, number>([['all/arp_ignore', 0], ['all/arp_announce', 0], ['eth0/arp_ignore', 0], ['eth0/arp_announce', 0]]);
  const writable = { on: true };
  const sysctls: SysctlAccess = {
    read: async (folder, name) => {
      const v = values.get(`${folder}/${name}`);
      if (v === undefined) throw new Error(`no ${folder}/${name}`);
      return v;
    },
    write: async (folder, name, value) => {
      if (!writable.on) throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
      values.set(`${folder}/${name}`, value);
    },
  };
  const events: World['events'] = [];
  const lines: World['lines'] = [];
  const verdicts: ArpVerdict[] = [];
  const option = { on: false };
  const log = (level: string) => (_o: object, msg?: string): void => void lines.push({ level, msg: msg ?? '' });
  const check = new ArpCheck({
    node: 'node-1',
    netlink,
    lanLinks: () => ['eth0'],
    ourAddresses: () => new Set(['192.0.2.10']),
    setSysctls: () => option.on,
    sysctls,
    events: { event: (ref, type, reason, message) => void events.push({ ref, type, reason, message }) },
    metrics: { arpConfig: (v) => void verdicts.push(v) },
    log: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
    periodMs: 3_600_000,
    settleMs: 10,
    ...(clock ? { now: () => clock.now, remindMs: 1_800_000 } : {}),
  });
  return { check, netlink, values, events, lines, verdicts, option, writable };
}

t.test('told once per change of verdict, not per check', async (t) => {
  const w = world();
  t.teardown(() => w.check.stop());
  await w.check.start();
  t.equal(w.verdicts.at(-1)?.safe, true, 'the kernel defaults without kube-ipvs0: safe');
  t.equal(w.events.length, 0, 'nothing to tell');
  w.netlink.addLink({ name: 'kube-ipvs0', up: false });
  w.netlink.addAddressExternally('kube-ipvs0', '192.0.2.10/32');
  for (let i = 0; i < 5; i++) await w.check.check();
  t.same(w.verdicts.at(-1)?.problems.map((p) => p.reason), ['ArpIgnore', 'ArpAnnounce']);
  const warnings = w.events.filter((e) => e.reason === 'UnsafeARPConfig');
  t.equal(warnings.length, 1, 'one Warning Event for five checks');
  t.same(warnings[0]!.ref, { kind: 'Node', apiVersion: 'v1', name: 'node-1', uid: 'node-1' }, 'on the Node');
  t.match(warnings[0]!.message, 'kube-ipvs0 holds 1 address(es) of PureLB\'s Services (192.0.2.10)');
  const warnLines = w.lines.filter((l) => l.level === 'warn' && l.msg.includes('ARP settings unsafe'));
  t.equal(warnLines.length, 1, 'one log line');
  t.match(warnLines[0]!.msg, /ipvs\.strictARP: true.*--ipvs-strict-arp/);
  w.values.set('all/arp_ignore', 1);
  w.values.set('all/arp_announce', 2);
  for (let i = 0; i < 3; i++) await w.check.check();
  t.equal(w.verdicts.at(-1)?.safe, true, 'strict: safe');
  t.same(w.events.map((e) => e.reason), ['UnsafeARPConfig', 'ARPConfigSafe'], 'one Normal Event when safe again');
});

t.test('a kube-ipvs0 change is checked at once (not at the next period)', async (t) => {
  const w = world();
  t.teardown(() => w.check.stop());
  await w.check.start();
  w.netlink.addLink({ name: 'kube-ipvs0', up: false });
  for (let i = 0; i < 200 && w.events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(w.events[0]?.reason, 'UnsafeARPConfig', 'the new link is seen without waiting for the period (1 h here)');
  t.match(w.events[0]?.message ?? '', 'kube-ipvs0 is there');
  w.netlink.addAddressExternally('kube-ipvs0', '192.0.2.10/32');
  for (let i = 0; i < 200 && w.events.length === 1; i++) await new Promise((r) => setTimeout(r, 10));
  t.match(w.events[1]?.message ?? '', '(192.0.2.10)', 'an address added to it is seen at once too');
});

t.test('setARPSysctls: writes the strict values and reports each; a write refused is told once', async (t) => {
  const w = world();
  t.teardown(() => w.check.stop());
  w.option.on = true;
  w.writable.on = false;
  w.netlink.addLink({ name: 'kube-ipvs0', up: false });
  await w.check.start();
  for (let i = 0; i < 3; i++) await w.check.check();
  const refused = w.events.filter((e) => e.reason === 'ARPSysctlsNotSet');
  t.equal(refused.length, 2, 'one Warning per sysctl that cannot be set, not one per check');
  t.match(refused[0]!.message, 'cannot set net.ipv4.conf.all.arp_ignore=1 (is 0): EROFS: /proc/sys is not writable');
  t.equal(w.verdicts.at(-1)?.safe, false, 'still unsafe');
  w.writable.on = true;
  await w.check.check();
  t.same([w.values.get('all/arp_ignore'), w.values.get('all/arp_announce')], [1, 2], 'written');
  t.same(w.events.filter((e) => e.reason === 'ARPSysctlsSet').map((e) => e.message), [
    'set net.ipv4.conf.all.arp_ignore=1 (was 0), as the LBNodeAgent\'s setARPSysctls asks',
    'set net.ipv4.conf.all.arp_announce=2 (was 0), as the LBNodeAgent\'s setARPSysctls asks',
  ]);
  t.equal(w.verdicts.at(-1)?.safe, true, 'safe in the same check, read back after the writes');
  await w.check.check();
  t.equal(w.events.filter((e) => e.reason === 'ARPSysctlsSet').length, 2, 'nothing written when already strict');
});

t.test('a node that stays unsafe gets the Warning again every remindMs (Events expire), without a new log line', async (t) => {
  const clock = { now: 1_000_000 };
  const w = world(clock);
  t.teardown(() => w.check.stop());
  w.netlink.addLink({ name: 'kube-ipvs0', up: false });
  await w.check.start();
  const warnings = (): number => w.events.filter((e) => e.reason === 'UnsafeARPConfig').length;
  t.equal(warnings(), 1, 'told at the first check');
  clock.now += 1_799_000;
  await w.check.check();
  t.equal(warnings(), 1, 'not again before 30 min');
  clock.now += 1_000;
  await w.check.check();
  t.equal(warnings(), 2, 'again once 30 min have passed');
  await w.check.check();
  t.equal(warnings(), 2, 'and not at the next check');
  t.equal(w.lines.filter((l) => l.level === 'warn' && l.msg.includes('ARP settings unsafe')).length, 1, 'the log line only once');
  w.values.set('all/arp_ignore', 1);
  w.values.set('all/arp_announce', 2);
  await w.check.check();
  clock.now += 3_600_000;
  await w.check.check();
  t.same(w.events.map((e) => e.reason), ['UnsafeARPConfig', 'UnsafeARPConfig', 'ARPConfigSafe'], 'no reminder once safe');
});
