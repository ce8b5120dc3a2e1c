// planMetalLBMigration: MetalLB's documented configurations (documentation address ranges
// only) mapped to ServiceGroups and Service annotations that keep every address.
import t from 'tap';
import type { Service } from '@purelb/api';
import { type MetalLBObject, planMetalLBMigration } from '../src/migrate-metallb.ts';

const pool = (name: string, spec: Record<string, unknown>, labels?: Record<string, string>): MetalLBObject => ({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: 'metallb-system', ...(labels ? { labels } : {}) }, spec });
const l2 = (name: string, spec: Record<string, unknown> = {}): MetalLBObject => ({ apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name, namespace: 'metallb-system' }, spec });
const svc = (ns: string, name: string, ips: string[], annotations: Record<string, string> = {}, cls?: string): Service => ({
  metadata: { name, namespace: ns, resourceVersion: '7', annotations },
  spec: { type: 'LoadBalancer', ...(cls ? { loadBalancerClass: cls } : {}), ports: [{ port: 80, protocol: 'TCP' }] },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});
const plan = (o: { pools: MetalLBObject[]; l2s?: MetalLBObject[]; others?: MetalLBObject[]; services?: Service[]; subnets?: string[] }) =>
  planMetalLBMigration({ metallb: { ipAddressPools: o.pools, l2Advertisements: o.l2s ?? [l2('l2')], others: o.others ?? [] }, services: o.services ?? [], namespace: 'purelb', subnets: o.subnets ?? ['192.0.2.0/24', '2001:db8::/64'] });

t.test('the documented layer 2 example: one range, one L2Advertisement naming it', async (t) => {
  const p = plan({ pools: [pool('metallb-pool', { addresses: ['192.0.2.100-192.0.2.199'] })], l2s: [l2('metallb-l2-advertisement', { ipAddressPools: ['metallb-pool'] })] });
  t.same(p.serviceGroups, [{ apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'metallb-pool', namespace: 'purelb' }, spec: { local: { v4pools: [{ pool: '192.0.2.100-192.0.2.199', subnet: '192.0.2.0/24', aggregation: 'default' }] } } }]);
  t.same(p.problems, []);
  t.same(p.notes.map((n) => n.field), ['spec.autoAssign'], 'only: no ServiceGroup named default for Services without an annotation');
});

t.test('pool forms: CIDR, range with spaces, IPv6; the subnet given with --subnet, else the smallest covering CIDR', async (t) => {
  const p = plan({ pools: [pool('mixed', { addresses: ['192.0.2.64/27', '198.51.100.10 - 198.51.100.20', '2001:db8::100-2001:db8::1ff'] })] });
  t.same(p.serviceGroups[0]?.spec.local, {
    v4pools: [
      { pool: '192.0.2.64/27', subnet: '192.0.2.0/24', aggregation: 'default' },
      { pool: '198.51.100.10-198.51.100.20', subnet: '198.51.100.0/27', aggregation: 'default' },
    ],
    v6pools: [{ pool: '2001:db8::100-2001:db8::1ff', subnet: '2001:db8::/64', aggregation: 'default' }],
  });
  const n = p.notes.find((x) => x.field === 'spec.addresses[1]');
  t.match(n?.message, /no --subnet contains 198\.51\.100\.10-198\.51\.100\.20; its subnet is set to 198\.51\.100\.0\/27.*virtual address in PureLB/);
});

t.test('bad entries and addresses outside every pool are problems naming the object and field', async (t) => {
  const p = plan({
    pools: [pool('bad', { addresses: ['192.0.2.300-192.0.2.301', 42] }), pool('empty', {})],
    services: [svc('web', 'lost', ['203.0.113.5'])],
  });
  t.same(p.problems.map((x) => [x.object, x.field]), [
    ['IPAddressPool metallb-system/bad', 'spec.addresses[0]'],
    ['IPAddressPool metallb-system/bad', 'spec.addresses[1]'],
    ['IPAddressPool metallb-system/empty', 'spec.addresses'],
    ['Service web/lost', 'status.loadBalancer.ingress'],
  ]);
  t.match(p.problems[3]!.message, /203\.0\.113\.5 is in no IPAddressPool/);
});

t.test('Services keep their addresses: marks for adoption, group, pinned addresses, sharing key', async (t) => {
  const p = plan({
    pools: [pool('default', { addresses: ['192.0.2.100-192.0.2.199', '2001:db8::100/120'] }), pool('special', { addresses: ['192.0.2.10-192.0.2.19'], autoAssign: false })],
    services: [
      svc('web', 'auto', ['192.0.2.100']),
      svc('web', 'pinned', ['192.0.2.150'], { 'metallb.universe.tf/loadBalancerIPs': '192.0.2.150' }),
      svc('dns', 'tcp', ['192.0.2.10'], { 'metallb.io/allow-shared-ip': 'dns', 'metallb.io/address-pool': 'special' }),
      svc('dns', 'udp', ['192.0.2.10'], { 'metallb.io/allow-shared-ip': 'dns', 'metallb.io/address-pool': 'special' }),
      svc('web', 'dual', ['192.0.2.101', '2001:db8::101']),
      svc('other', 'theirs', ['192.0.2.102'], {}, 'example.com/lb'),
      svc('web', 'pending', []),
    ],
  });
  t.same(p.problems, []);
  const by = Object.fromEntries(p.services.map((s) => [`${s.namespace}/${s.name}`, s]));
  t.same(Object.keys(by), ['dns/tcp', 'dns/udp', 'web/auto', 'web/dual', 'web/pinned'], 'another class and a Service without address are not MetalLB\'s to migrate');
  const marks = (g: string) => ({ 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': g, 'purelb.io/service-group': g });
  t.same(by['web/auto']?.annotations, marks('default'));
  t.same(by['web/pinned']?.annotations, { ...marks('default'), 'purelb.io/addresses': '192.0.2.150' });
  t.same(by['dns/tcp']?.annotations, { ...marks('special'), 'purelb.io/allow-shared-ip': 'dns' });
  t.same(by['web/dual']?.annotations, marks('default'));
  t.same(by['web/dual']?.addresses, ['192.0.2.101', '2001:db8::101']);
  t.notOk(p.notes.some((n) => n.field === 'spec.autoAssign'), 'a pool named default exists');
});

t.test('what has no equivalent is reported', async (t) => {
  const p = plan({
    pools: [pool('a', { addresses: ['192.0.2.0/28'], avoidBuggyIPs: true, serviceAllocation: { priority: 1 } }, { zone: 'x' }), pool('b', { addresses: ['192.0.2.16/28'] })],
    l2s: [l2('sel', { ipAddressPoolSelectors: [{ matchLabels: { zone: 'x' } }], nodeSelectors: [{ matchLabels: { rack: '1' } }], interfaces: ['eth1'] })],
    others: [
      { kind: 'BGPAdvertisement', metadata: { name: 'adv' }, spec: { communities: ['64512:100'] } },
      { kind: 'BGPPeer', metadata: { name: 'peer' }, spec: { peerASN: 64513, myASN: 64512 } },
      { kind: 'Community', metadata: { name: 'c' } },
      { kind: 'BFDProfile', metadata: { name: 'bfd' } },
    ],
  });
  const notes = p.notes.map((n) => `${n.object}|${n.field ?? ''}`);
  t.same(notes.sort(), [
    'BFDProfile bfd|',
    'BGPAdvertisement adv|',
    'BGPPeer peer|',
    'Community c|',
    'IPAddressPool a, b|spec.autoAssign',
    'IPAddressPool b|',
    'IPAddressPool metallb-system/a|spec.avoidBuggyIPs',
    'IPAddressPool metallb-system/a|spec.serviceAllocation',
    'L2Advertisement sel|spec.interfaces',
  ].sort());
  t.same(p.serviceGroups.find((g) => g.metadata.name === 'a')?.spec.local?.nodeSelector, { matchLabels: { rack: '1' } }, 'its one node selector is the ServiceGroup\'s');
  t.match(p.notes.find((n) => n.object === 'IPAddressPool b')?.message, /no L2Advertisement selects it/);
  t.match(p.notes.find((n) => n.object === 'BGPAdvertisement adv')?.message, /no equivalent: PureLB does not speak BGP/);
  t.same(p.problems, []);
});

t.test('a Service whose addresses span two pools cannot be one ServiceGroup\'s', async (t) => {
  const p = plan({ pools: [pool('v4', { addresses: ['192.0.2.10-192.0.2.19'] }), pool('v6', { addresses: ['2001:db8::10-2001:db8::19'] })], services: [svc('web', 'dual', ['192.0.2.10', '2001:db8::10'])] });
  t.equal(p.problems.length, 1);
  t.match(p.problems[0]!.message, /from several IPAddressPools \(v4, v6\)/);
});

t.test('L2Advertisement spec.nodeSelectors: one selector (or several equal) maps to spec.local.nodeSelector; several different ones have no equivalent', async (t) => {
  const edge = { matchLabels: { 'purelb.io/edge': 'true' } };
  const zoneA = { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['b', 'a'] }] };
  const p = plan({
    pools: ['one', 'equal', 'ored', 'two-l2-same', 'two-l2-diff', 'one-all', 'none'].map((n, i) => pool(n, { addresses: [`192.0.2.${16 * i}/28`] })),
    l2s: [
      l2('l2-one', { ipAddressPools: ['one'], nodeSelectors: [edge] }),
      // Equal once keys and values are put in order: one selector.
      l2('l2-equal', { ipAddressPools: ['equal'], nodeSelectors: [zoneA, { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a', 'b'] }] }] }),
      l2('l2-ored', { ipAddressPools: ['ored'], nodeSelectors: [edge, zoneA] }),
      l2('l2-same-1', { ipAddressPools: ['two-l2-same', 'two-l2-diff'], nodeSelectors: [edge] }),
      l2('l2-same-2', { ipAddressPools: ['two-l2-same'], nodeSelectors: [{ matchLabels: { 'purelb.io/edge': 'true' } }] }),
      l2('l2-diff', { ipAddressPools: ['two-l2-diff'], nodeSelectors: [zoneA] }),
      // MetalLB ORs the L2Advertisements: one that selects every node makes it every node.
      l2('l2-some', { ipAddressPools: ['one-all'], nodeSelectors: [edge] }),
      l2('l2-all', { ipAddressPools: ['one-all', 'none'] }),
    ],
  });
  t.same(p.problems, []);
  const sel = Object.fromEntries(p.serviceGroups.map((g) => [g.metadata.name, g.spec.local?.nodeSelector]));
  const zoneSorted = { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a', 'b'] }] };
  t.same(sel, { one: edge, equal: zoneSorted, ored: undefined, 'two-l2-same': edge, 'two-l2-diff': undefined, 'one-all': undefined, none: undefined });
  const about = p.notes.filter((n) => /nodeSelector/.test(n.message) || n.field === 'spec.nodeSelectors').map((n) => [n.object, n.field]);
  t.same(about, [['L2Advertisement l2-ored', 'spec.nodeSelectors'], ['IPAddressPool two-l2-diff', undefined]], 'each inexpressible case once, naming the object and field');
  t.match(p.notes.find((n) => n.object === 'L2Advertisement l2-ored')?.message, /^no equivalent: 2 different selectors \(purelb\.io\/edge=true OR topology\.kubernetes\.io\/zone in \(a,b\)\), which MetalLB ORs/);
  t.match(p.notes.find((n) => n.object === 'IPAddressPool two-l2-diff')?.message, /l2-diff \(topology\.kubernetes\.io\/zone in \(a,b\)\), l2-same-1 \(purelb\.io\/edge=true\), which MetalLB ORs: no equivalent/);
  const bad = plan({ pools: [pool('p', { addresses: ['192.0.2.0/28'] })], l2s: [l2('bad', { ipAddressPools: ['p'], nodeSelectors: [{ matchExpressions: [{ key: 'k', operator: 'Near' }] }] })] });
  t.same(bad.serviceGroups[0]?.spec.local?.nodeSelector, undefined);
  t.same(bad.notes.filter((n) => n.object === 'L2Advertisement bad').map((n) => n.field), ['spec.nodeSelectors[0].matchExpressions[0].operator']);
});
