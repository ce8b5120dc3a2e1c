// servicesReport and the announcing annotation.
import t from 'tap';
import { parseAnnouncer, servicesReport } from '../src/services.ts';
import { snapshot, svc, warning } from './fixtures.ts';

t.test('parseAnnouncer reads node,interface', async (t) => {
  const table: [string | undefined, ReturnType<typeof parseAnnouncer>][] = [
    ['node-a,eth0', { node: 'node-a', interface: 'eth0' }],
    ['node-a', { node: 'node-a', interface: undefined }],
    [' node-a , kube-lb0 ', { node: 'node-a', interface: 'kube-lb0' }],
    ['', undefined],
    [undefined, undefined],
    [',eth0', undefined],
  ];
  for (const [input, want] of table) t.same(parseAnnouncer(input), want, JSON.stringify(input));
});

t.test('every served Service, with its announcers, policy and key; ours without address are problems', async (t) => {
  const lost = svc('lost');
  const r = servicesReport(
    snapshot({
      services: [
        svc('z', { ns: 'b', ips: ['192.0.2.10', '2001:db8::10'], group: 'dual', etp: 'Local', annotations: { 'purelb.io/announcing-IPv4': 'node-a,eth0', 'purelb.io/announcing-IPv6': 'node-b,eth0', 'purelb.io/allow-shared-ip': 'k1' } }),
        svc('a', { ns: 'b', ips: ['198.51.100.5'], annotations: { 'purelb.io/allow-shared-ip': ' ' } }),
        svc('theirs', { ips: ['203.0.113.9'], cls: 'example.com/lb', ours: false }),
        svc('unmarked', { ips: ['203.0.113.8'], ours: false }),
        lost,
      ],
      serviceEvents: [warning(lost, 'AllocationFailed', 'ServiceGroup "nope" does not exist')],
    }),
  );
  t.same(r.services, [
    { namespace: 'b', name: 'a', addresses: ['198.51.100.5'], group: 'default', announcingIPv4: undefined, announcingIPv6: undefined, externalTrafficPolicy: 'Cluster', sharingKey: undefined },
    { namespace: 'b', name: 'z', addresses: ['192.0.2.10', '2001:db8::10'], group: 'dual', announcingIPv4: { node: 'node-a', interface: 'eth0' }, announcingIPv6: { node: 'node-b', interface: 'eth0' }, externalTrafficPolicy: 'Local', sharingKey: 'k1' },
  ]);
  t.same(r.problems, [{ object: 'Service web/lost', field: 'status.loadBalancer.ingress', message: 'no address: AllocationFailed: ServiceGroup "nope" does not exist' }]);
});
