import t from 'tap';
import { isReadAnnotation, trimService, withMetalLBAliases } from '../src/index.ts';

t.test('withMetalLBAliases: ours win, metallb.io over metallb.universe.tf, every one listed', async (t) => {
  const r = withMetalLBAliases({ 'purelb.io/addresses': '192.0.2.1', 'metallb.io/loadBalancerIPs': '192.0.2.2', 'metallb.universe.tf/address-pool': 'p', 'metallb.io/other': 'x' });
  t.equal(r.annotations['purelb.io/addresses'], '192.0.2.1');
  t.equal(r.annotations['purelb.io/service-group'], 'p');
  t.same(r.aliases, [
    { from: 'metallb.io/loadBalancerIPs', to: 'purelb.io/addresses', used: false },
    { from: 'metallb.universe.tf/address-pool', to: 'purelb.io/service-group', used: true },
  ]);
  t.same(withMetalLBAliases(undefined), { annotations: {}, aliases: [] });
});

t.test('trimService keeps ours and the MetalLB aliases, drops the rest', async (t) => {
  t.ok(isReadAnnotation('metallb.universe.tf/allow-shared-ip'));
  t.notOk(isReadAnnotation('metallb.io/ip-allocated-from-pool'));
  const s = trimService({ metadata: { name: 'a', annotations: { 'purelb.io/service-group': 'g', 'metallb.io/loadBalancerIPs': '192.0.2.5', 'metallb.io/ip-allocated-from-pool': 'p', 'example.com/x': 'y' } }, spec: {} });
  t.same(s.metadata.annotations, { 'purelb.io/service-group': 'g', 'metallb.io/loadBalancerIPs': '192.0.2.5' });
});
