import t from 'tap';
import type { Service } from '@purelb/api';
import { serviceIntent } from '../src/intent.ts';

const svc = (spec: Partial<Service['spec']> = {}, annotations: Record<string, string> = {}, extra: Partial<Service['metadata']> = {}): Service => ({
  metadata: { name: 'web', namespace: 'shop', annotations, ...extra },
  spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...spec },
});
const open = { requireLoadBalancerClass: false };

t.test('what makes a Service ours', async (t) => {
  const table: [string, Service, boolean, 'allocate' | 'release' | 'ignore', RegExp?][] = [
    ['LoadBalancer, no class', svc(), false, 'allocate'],
    ['our class', svc({ loadBalancerClass: 'purelb.io/purelb' }), true, 'allocate'],
    ['no class when a class is required', svc(), true, 'release', /no loadBalancerClass/],
    ['another class: left alone', svc({ loadBalancerClass: 'example.com/lb' }), false, 'ignore', /example\.com\/lb/],
    ['ClusterIP', svc({ type: 'ClusterIP' }), false, 'release', /type is ClusterIP/],
    ['NodePort', svc({ type: 'NodePort' }), false, 'release', /NodePort/],
    ['being deleted', svc({}, {}, { deletionTimestamp: '2026-01-01T00:00:00Z' }), false, 'release', /deleted/],
  ];
  for (const [name, s, requireLoadBalancerClass, kind, why] of table) {
    const got = serviceIntent(s, { requireLoadBalancerClass });
    t.equal(got.kind, kind, name);
    if ((got.kind === 'release' || got.kind === 'ignore') && why) t.match(got.why, why, `${name}: why`);
  }
});

t.test('the request carries the Service fields and annotations', async (t) => {
  const got = serviceIntent(
    svc(
      { ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] },
      { 'purelb.io/service-group': 'edge', 'purelb.io/addresses': ' 192.0.2.9 , 2001:db8::9 ', 'purelb.io/allow-shared-ip': 'dns' },
    ),
    open,
  );
  t.same(got, {
    kind: 'allocate',
    request: {
      service: 'shop/web',
      group: 'edge',
      families: ['IPv6', 'IPv4'],
      policy: 'PreferDualStack',
      addresses: ['192.0.2.9', '2001:db8::9'],
      sharingKey: 'dns',
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    },
    warnings: [],
    addressSource: 'annotation purelb.io/addresses',
  });
});

t.test('defaults, empty annotations, and the deprecated loadBalancerIP', async (t) => {
  const plain = serviceIntent(svc({}, { 'purelb.io/allow-shared-ip': '' }), open);
  t.equal(plain.kind, 'allocate');
  if (plain.kind === 'allocate') {
    t.same(plain.request.families, ['IPv4'], 'no ipFamilies: IPv4');
    t.equal(plain.request.policy, 'SingleStack');
    t.equal(plain.request.group, undefined, 'no group annotation: none');
    t.equal(plain.request.sharingKey, undefined, 'an empty sharing key means none');
    t.same(plain.warnings, []);
  }
  const legacy = serviceIntent(svc({ loadBalancerIP: '192.0.2.7' }), open);
  t.equal(legacy.kind, 'allocate');
  if (legacy.kind === 'allocate') {
    t.same(legacy.request.addresses, ['192.0.2.7']);
    t.equal(legacy.warnings[0]?.reason, 'LoadBalancerIPDeprecated');
  }
  const both = serviceIntent(svc({ loadBalancerIP: '192.0.2.7' }, { 'purelb.io/addresses': '192.0.2.8' }), open);
  if (both.kind === 'allocate') t.same(both.request.addresses, ['192.0.2.8'], 'the annotation wins over loadBalancerIP');
});

t.test('annotations that cannot be read: refused or warned, naming the annotation', async (t) => {
  const table: [string, Service, 'refuse' | 'allocate', RegExp | undefined, string[] | undefined][] = [
    ['empty service-group', svc({}, { 'purelb.io/service-group': '' }), 'refuse', /annotation purelb\.io\/service-group is empty; name a ServiceGroup/, undefined],
    ['blank service-group', svc({}, { 'purelb.io/service-group': '   ' }), 'refuse', /purelb\.io\/service-group is empty/, undefined],
    ['leading space', svc({}, { 'purelb.io/service-group': ' default' }), 'refuse', /purelb\.io\/service-group: " default" has leading or trailing whitespace; write "default"/, undefined],
    ['trailing tab', svc({}, { 'purelb.io/service-group': 'edge\t' }), 'refuse', /write "edge"/, undefined],
    ['empty addresses: treated as not set, with a Warning', svc({}, { 'purelb.io/addresses': '' }), 'allocate', /purelb\.io\/addresses is empty; treated as not set: the Service gets the first free address/, []],
    ['blank addresses and a loadBalancerIP', svc({ loadBalancerIP: '192.0.2.7' }, { 'purelb.io/addresses': ' ' }), 'allocate', /empty; treated as not set \(spec\.loadBalancerIP is used\)/, ['192.0.2.7']],
    ['an empty entry', svc({}, { 'purelb.io/addresses': '192.0.2.7,' }), 'allocate', /"192\.0\.2\.7," has an empty entry; it is ignored/, ['192.0.2.7']],
    ['loadBalancerIP disagrees', svc({ loadBalancerIP: '192.0.2.7' }, { 'purelb.io/addresses': '192.0.2.8' }), 'allocate', /spec\.loadBalancerIP "192\.0\.2\.7" disagrees with annotation purelb\.io\/addresses "192\.0\.2\.8"; the annotation wins/, ['192.0.2.8']],
    ['loadBalancerIP agrees: no Warning', svc({ loadBalancerIP: '192.0.2.8' }, { 'purelb.io/addresses': '192.0.2.8, 2001:db8::8' }), 'allocate', undefined, ['192.0.2.8', '2001:db8::8']],
  ];
  for (const [what, s, kind, message, addresses] of table) {
    const got = serviceIntent(s, open);
    t.equal(got.kind, kind, `${what}: ${kind}`);
    if (got.kind === 'refuse') {
      t.equal(got.reason, 'InvalidAnnotation', `${what}: reason`);
      t.match(got.message, message!, `${what}: message`);
    } else if (got.kind === 'allocate') {
      t.same(got.request.addresses, addresses, `${what}: addresses`);
      if (message) t.ok(got.warnings.some((w) => message.test(w.message)), `${what}: warning ${message}`);
      else t.same(got.warnings, [], `${what}: no warning`);
    }
  }
  const lb = serviceIntent(svc({ loadBalancerIP: '192.0.2.7' }), open);
  t.equal(lb.kind === 'allocate' ? lb.addressSource : '', 'spec.loadBalancerIP', 'addresses from loadBalancerIP are named so');
});

t.test('MetalLB annotations are read as aliases of ours; ours win; one warning names ours', async (t) => {
  const table: [string, Record<string, string>, { group?: string; addresses?: string[]; sharingKey?: string }, RegExp | undefined][] = [
    ['none', {}, { addresses: [] }, undefined],
    ['metallb.io/loadBalancerIPs', { 'metallb.io/loadBalancerIPs': '192.0.2.10,2001:db8::10' }, { addresses: ['192.0.2.10', '2001:db8::10'] }, /metallb\.io\/loadBalancerIPs is read as purelb\.io\/addresses/],
    ['metallb.io/address-pool', { 'metallb.io/address-pool': 'edge' }, { group: 'edge', addresses: [] }, /metallb\.io\/address-pool is read as purelb\.io\/service-group/],
    ['the older prefix', { 'metallb.universe.tf/allow-shared-ip': 'k1', 'metallb.universe.tf/address-pool': 'edge' }, { group: 'edge', sharingKey: 'k1' }, /metallb\.universe\.tf\/allow-shared-ip is read as purelb\.io\/allow-shared-ip/],
    ['ours win', { 'purelb.io/service-group': 'ours', 'metallb.io/address-pool': 'theirs' }, { group: 'ours' }, /metallb\.io\/address-pool is ignored \(purelb\.io\/service-group or a newer MetalLB name is set\)/],
    ['metallb.io wins over metallb.universe.tf', { 'metallb.io/allow-shared-ip': 'new', 'metallb.universe.tf/allow-shared-ip': 'old' }, { sharingKey: 'new' }, /metallb\.universe\.tf\/allow-shared-ip is ignored/],
  ];
  for (const [name, annotations, want, warning] of table) {
    const got = serviceIntent(svc({}, annotations), open);
    if (got.kind !== 'allocate') {
      t.fail(`${name}: ${got.kind}`);
      continue;
    }
    if ('group' in want) t.equal(got.request.group, want.group, `${name}: group`);
    if ('addresses' in want) t.same(got.request.addresses, want.addresses, `${name}: addresses`);
    if ('sharingKey' in want) t.equal(got.request.sharingKey, want.sharingKey, `${name}: sharing key`);
    const w = got.warnings.filter((x) => x.reason === 'MetalLBAnnotation');
    if (warning) {
      t.equal(w.length, 1, `${name}: one warning`);
      t.match(w[0]?.message, warning, `${name}: names ours`);
      t.match(w[0]?.message, /write PureLB's names instead/);
    } else t.equal(w.length, 0, `${name}: no warning`);
  }
});
