import t from 'tap';
import { type ArpFacts, type LanLinkArp, arpSysctlWrites, arpVerdict, effectiveValue, sysctlKey } from '../src/arp-safety.ts';

const lan = (ignoreAll: number, ignoreLink: number, announceAll: number, announceLink: number, link = 'eth0'): LanLinkArp => ({
  link,
  arpIgnore: { all: ignoreAll, link: ignoreLink },
  arpAnnounce: { all: announceAll, link: announceLink },
});
const ipvs = (...ourAddresses: string[]): ArpFacts['ipvs'] => ({ ourAddresses });

t.test('effective value: the larger of all and the link', async (t) => {
  t.equal(effectiveValue({ all: 0, link: 1 }), 1);
  t.equal(effectiveValue({ all: 2, link: 1 }), 2);
  t.equal(effectiveValue({ all: 8, link: 0 }), 8);
});

t.test('sysctl keys as sysctl(8) writes them (a dot in a link name is a slash)', async (t) => {
  t.equal(sysctlKey('all', 'arp_ignore'), 'net.ipv4.conf.all.arp_ignore');
  t.equal(sysctlKey('eth0.100', 'arp_announce'), 'net.ipv4.conf.eth0/100.arp_announce');
});

t.test('verdict: settings -> safe, or the reasons', async (t) => {
  const table: [string, ArpFacts, string[]][] = [
    ['kernel defaults, no kube-ipvs0: no other node has the address', { links: [lan(0, 0, 0, 0)], ipvs: undefined }, []],
    ['kernel defaults, kube-ipvs0 holding ours', { links: [lan(0, 0, 0, 0)], ipvs: ipvs('192.0.2.10') }, ['ArpIgnore', 'ArpAnnounce']],
    ['kernel defaults, kube-ipvs0 empty (IPVS mode before the first Service)', { links: [lan(0, 0, 0, 0)], ipvs: ipvs() }, ['ArpIgnore', 'ArpAnnounce']],
    ['strictARP (all 1/2), kube-ipvs0', { links: [lan(1, 0, 2, 0)], ipvs: ipvs('192.0.2.10') }, []],
    ['strict on the link only', { links: [lan(0, 1, 0, 2)], ipvs: ipvs('192.0.2.10') }, []],
    ['arp_ignore 2 is strict too', { links: [lan(2, 0, 2, 0)], ipvs: ipvs('192.0.2.10') }, []],
    ['arp_ignore 3 answers global addresses on any link', { links: [lan(3, 0, 2, 2)], ipvs: ipvs('192.0.2.10') }, ['ArpIgnore']],
    ['arp_ignore 5 (reserved) answers as 0', { links: [lan(1, 5, 2, 2)], ipvs: ipvs('192.0.2.10') }, ['ArpIgnore']],
    ['arp_ignore 9 answers as 0', { links: [lan(9, 0, 2, 2)], ipvs: ipvs('192.0.2.10') }, ['ArpIgnore']],
    ['arp_announce 1 is no help for an address inside the LAN subnet', { links: [lan(1, 1, 1, 0)], ipvs: ipvs('192.0.2.10') }, ['ArpAnnounce']],
    ['arp_announce 3 acts as 0', { links: [lan(1, 1, 2, 3)], ipvs: ipvs('192.0.2.10') }, ['ArpAnnounce']],
    ['arp_ignore 8: nothing answered, with or without kube-ipvs0', { links: [lan(8, 0, 0, 0)], ipvs: undefined }, ['ArpNoReply']],
    ['arp_ignore 8 on the link, kube-ipvs0: silent, not answering for others', { links: [lan(0, 8, 2, 0)], ipvs: ipvs('192.0.2.10') }, ['ArpNoReply']],
    ['no IPv4 LAN link: nothing to check', { links: [], ipvs: ipvs('192.0.2.10') }, []],
    ['two LAN links, one weak', { links: [lan(0, 1, 2, 0, 'eth0'), lan(0, 0, 2, 0, 'eth1')], ipvs: ipvs('192.0.2.10') }, ['ArpIgnore']],
  ];
  for (const [name, facts, want] of table) {
    const v = arpVerdict(facts);
    t.same(v.problems.map((p) => p.reason), want, name);
    t.equal(v.safe, want.length === 0, `${name}: safe is ${want.length === 0}`);
    for (const p of v.problems) {
      t.match(p.message, p.link, `${name}: ${p.reason} names the link`);
      t.match(p.fix, /^net\.ipv4\.conf\.\S+\.arp_(ignore|announce)=[12]$/, `${name}: ${p.reason} names the sysctl to set`);
    }
  }
});

t.test('verdict messages: the values read, the addresses kube-ipvs0 holds, the fix', async (t) => {
  const v = arpVerdict({ links: [lan(0, 0, 0, 1)], ipvs: ipvs('192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13') });
  t.ok(v.ipvsHoldsOurs);
  const [ignore, announce] = v.problems;
  t.match(ignore!.message, 'kube-ipvs0 holds 4 address(es)');
  t.match(ignore!.message, '192.0.2.10, 192.0.2.11, 192.0.2.12, ...');
  t.match(ignore!.message, 'arp_ignore on eth0 is 0 (all=0, eth0=0)');
  t.equal(ignore!.fix, 'net.ipv4.conf.all.arp_ignore=1');
  t.match(announce!.message, 'arp_announce on eth0 is 1 (all=0, eth0=1)');
  t.equal(announce!.fix, 'net.ipv4.conf.all.arp_announce=2');
  t.notOk(arpVerdict({ links: [lan(0, 0, 0, 0)], ipvs: ipvs() }).ipvsHoldsOurs, 'an empty kube-ipvs0 holds none of ours');
  t.equal(arpVerdict({ links: [lan(0, 8, 0, 0)], ipvs: undefined }).problems[0]!.fix, 'net.ipv4.conf.eth0.arp_ignore=1', 'arp_ignore 8 on the link: the fix is the link\'s');
});

t.test('writes for setARPSysctls: the fewest that make every LAN link strict', async (t) => {
  const table: [string, LanLinkArp[], string[]][] = [
    ['kernel defaults: all gets 1 and 2', [lan(0, 0, 0, 0)], ['net.ipv4.conf.all.arp_ignore 0->1', 'net.ipv4.conf.all.arp_announce 0->2']],
    ['already strict through all', [lan(1, 0, 2, 0)], []],
    ['already strict through the link', [lan(0, 2, 0, 2)], []],
    ['arp_announce 1: raised to 2', [lan(1, 0, 1, 0)], ['net.ipv4.conf.all.arp_announce 1->2']],
    ['a link value all cannot override: the link is set', [lan(2, 5, 2, 0)], ['net.ipv4.conf.eth0.arp_ignore 5->1']],
    ['both above strict: the link and all', [lan(8, 8, 3, 3)], ['net.ipv4.conf.eth0.arp_ignore 8->1', 'net.ipv4.conf.all.arp_ignore 8->1', 'net.ipv4.conf.eth0.arp_announce 3->2', 'net.ipv4.conf.all.arp_announce 3->2']],
    ['two weak links: all is written once', [lan(0, 0, 0, 0, 'eth0'), lan(0, 0, 0, 0, 'eth1')], ['net.ipv4.conf.all.arp_ignore 0->1', 'net.ipv4.conf.all.arp_announce 0->2']],
    ['no LAN link: nothing', [], []],
  ];
  for (const [name, links, want] of table) {
    const writes = arpSysctlWrites(links);
    t.same(writes.map((w) => `${w.key} ${w.from}->${w.to}`), want, name);
    // Applying the writes leaves every link strict.
    const after = links.map((l) => {
      const get = (folder: string, n: 'arp_ignore' | 'arp_announce', v: number): number => writes.find((w) => w.folder === folder && w.name === n)?.to ?? v;
      return lan(get('all', 'arp_ignore', l.arpIgnore.all), get(l.link, 'arp_ignore', l.arpIgnore.link), get('all', 'arp_announce', l.arpAnnounce.all), get(l.link, 'arp_announce', l.arpAnnounce.link), l.link);
    });
    t.ok(arpVerdict({ links: after, ipvs: ipvs('192.0.2.10') }).safe, `${name}: strict after the writes`);
  }
});
