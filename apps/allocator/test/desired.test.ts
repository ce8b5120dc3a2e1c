import t from 'tap';
import type { Service } from '@purelb/api';
import { servicePatch } from '../src/desired.ts';

const svc = (ips: string[], annotations: Record<string, string> = {}): Service => ({
  metadata: { name: 'web', namespace: 'shop', annotations },
  spec: { type: 'LoadBalancer' },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});
const ours = { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' };

t.test('one patch carries the ingress and the annotations', async (t) => {
  t.same(servicePatch(svc([]), { group: 'default', addresses: ['192.0.2.1', '2001:db8::1'] }), {
    metadata: { annotations: ours },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'VIP' }, { ip: '2001:db8::1', ipMode: 'VIP' }] } },
  });
});

t.test('nothing to change: no write', async (t) => {
  t.equal(servicePatch(svc(['192.0.2.1'], ours), { group: 'default', addresses: ['192.0.2.1'] }), undefined);
  t.equal(servicePatch(svc([]), undefined), undefined, 'a Service we never marked is left alone');
  t.equal(servicePatch(svc(['198.51.100.1'], { 'purelb.io/allocated-by': 'someone-else' }), undefined), undefined, 'another allocator\'s address is left alone');
});

t.test('only what differs is sent', async (t) => {
  t.same(servicePatch(svc(['192.0.2.1'], ours), { group: 'other', addresses: ['192.0.2.1'] }), { metadata: { annotations: { 'purelb.io/allocated-from': 'other' } } });
  t.same(servicePatch(svc(['192.0.2.1'], ours), { group: 'default', addresses: ['192.0.2.1', '2001:db8::1'] }), {
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'VIP' }, { ip: '2001:db8::1', ipMode: 'VIP' }] } },
  });
});

t.test('release removes our marks and the ingress', async (t) => {
  t.same(servicePatch(svc(['192.0.2.1'], ours), undefined), {
    metadata: { annotations: { 'purelb.io/allocated-by': null, 'purelb.io/allocated-from': null } },
    status: { loadBalancer: { ingress: null } },
  });
  t.same(servicePatch(svc([], ours), undefined), { metadata: { annotations: { 'purelb.io/allocated-by': null, 'purelb.io/allocated-from': null } } });
});
