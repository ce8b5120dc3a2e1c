import t from 'tap';
import type { Service } from '@purelb/k8s-glue';
import { serviceIntent } from '../src/intent.ts';

const svc = (spec: Partial<Service['spec']> = {}, annotations: Record<string, string> = {}, extra: Partial<Service['metadata']> = {}): Service => ({
  metadata: { name: 'web', namespace: 'shop', annotations, ...extra },
  spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...spec },
});
const open = { requireLoadBalancerClass: false };

t.test('what makes a Service ours', async (t) => {
  const table: [string, Service, boolean, 'allocate' | 'release', RegExp?][] = [
    ['LoadBalancer, no class', svc(), false, 'allocate'],
    ['our class', svc({ loadBalancerClass: 'purelb.io/purelb' }), true, 'allocate'],
    ['no class when a class is required', svc(), true, 'release', /no loadBalancerClass/],
    ['another class', svc({ loadBalancerClass: 'example.com/lb' }), false, 'release', /example\.com\/lb/],
    ['ClusterIP', svc({ type: 'ClusterIP' }), false, 'release', /type is ClusterIP/],
    ['NodePort', svc({ type: 'NodePort' }), false, 'release', /NodePort/],
    ['being deleted', svc({}, {}, { deletionTimestamp: '2026-01-01T00:00:00Z' }), false, 'release', /deleted/],
  ];
  for (const [name, s, requireLoadBalancerClass, kind, why] of table) {
    const got = serviceIntent(s, { requireLoadBalancerClass });
    t.equal(got.kind, kind, name);
    if (got.kind === 'release' && why) t.match(got.why, why, `${name}: why`);
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
  });
});

t.test('defaults, empty annotations, and the deprecated loadBalancerIP', async (t) => {
  const plain = serviceIntent(svc({}, { 'purelb.io/service-group': ' ', 'purelb.io/allow-shared-ip': '' }), open);
  t.equal(plain.kind, 'allocate');
  if (plain.kind === 'allocate') {
    t.same(plain.request.families, ['IPv4'], 'no ipFamilies: IPv4');
    t.equal(plain.request.policy, 'SingleStack');
    t.equal(plain.request.group, undefined, 'an empty group annotation means none');
    t.equal(plain.request.sharingKey, undefined, 'an empty sharing key means none');
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
