// poolsReport: sizes, use and the next address, computed with ipam-core as the allocator does.
import t from 'tap';
import { poolsReport } from '../src/pools.ts';
import { V4, V6, group, node, snapshot, svc } from './fixtures.ts';

const row = (r: ReturnType<typeof poolsReport>, g: string, field: string) => r.pools.find((p) => p.group === g && p.field === field);

t.test('first fit across pools in declaration order, Node addresses and in-use skipped', async (t) => {
  const r = poolsReport(
    snapshot({
      serviceGroups: [group('default', { v4pools: [V4('192.0.2.10-192.0.2.12'), V4('198.51.100.0/30', '198.51.100.0/24')], v6pools: [V6('2001:db8::10-2001:db8::1f')] })],
      nodes: [node('node-a', ['192.0.2.11'])],
      services: [
        svc('a', { ips: ['192.0.2.10', '2001:db8::10'] }),
        svc('b', { ips: ['192.0.2.12'] }),
        svc('not-ours', { ips: ['2001:db8::11'], cls: 'example.com/lb', ours: false }),
      ],
    }),
  );
  t.same(r.problems, []);
  t.same(row(r, 'default', 'v4pools[0]'), { group: 'default', family: 'IPv4', field: 'v4pools[0]', pool: '192.0.2.10-192.0.2.12', size: '3', inUse: '2', excluded: '1', free: '0', next: undefined, nextForGroup: false }, 'full: two in use, one a Node\'s');
  t.same(row(r, 'default', 'v4pools[1]'), { group: 'default', family: 'IPv4', field: 'v4pools[1]', pool: '198.51.100.0/30', size: '4', inUse: '0', excluded: '1', free: '3', next: '198.51.100.1', nextForGroup: true }, 'the next pool hands out its first address that is not its subnet\'s network address');
  t.same(row(r, 'default', 'v6pools[0]'), { group: 'default', family: 'IPv6', field: 'v6pools[0]', pool: '2001:db8::10-2001:db8::1f', size: '16', inUse: '1', excluded: '0', free: '15', next: '2001:db8::11', nextForGroup: true }, 'another class\'s Service does not hold an address of ours');
});

t.test('two pools with room: only the first is next for the group', async (t) => {
  const r = poolsReport(snapshot({ serviceGroups: [group('g', { v4pools: [V4('192.0.2.10-192.0.2.11'), V4('192.0.2.20-192.0.2.21')] })], services: [svc('a', { group: 'g', ips: ['192.0.2.10'] })] }));
  t.same(r.pools.map((p) => [p.field, p.next, p.nextForGroup]), [['v4pools[0]', '192.0.2.11', true], ['v4pools[1]', '192.0.2.20', false]]);
});

t.test('a shared address counts once; a Service of another group in the pool is counted in it', async (t) => {
  const r = poolsReport(
    snapshot({
      serviceGroups: [group('g', { v4pools: [V4('192.0.2.10-192.0.2.13')] })],
      services: [
        svc('web', { group: 'g', ips: ['192.0.2.10'], annotations: { 'purelb.io/allow-shared-ip': 'k' }, ports: [{ port: 80 }] }),
        svc('dns', { group: 'g', ips: ['192.0.2.10'], annotations: { 'purelb.io/allow-shared-ip': 'k' }, ports: [{ port: 53, protocol: 'UDP' }] }),
        svc('x', { group: 'g', ips: ['192.0.2.11'] }),
      ],
    }),
  );
  t.same(r.pools.map((p) => [p.inUse, p.free, p.next]), [['2', '2', '192.0.2.12']]);
});

t.test('the legacy single-pool form, a subnet-reserved address, and an invalid or Netbox group', async (t) => {
  const r = poolsReport(
    snapshot({
      serviceGroups: [
        group('legacy', { subnet: '203.0.113.0/24', pool: '203.0.113.0/30', aggregation: 'default' }),
        group('broken', { v4pools: [V4('192.0.2.10-192.0.2.5')] }),
        { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'nb' }, spec: { netbox: { url: 'https://netbox.example' } } },
      ],
    }),
  );
  t.same(r.pools.map((p) => [p.group, p.field, p.size, p.excluded, p.free, p.next]), [['legacy', 'local', '4', '1', '3', '203.0.113.1']], 'the network address is never handed out; Netbox groups have no local pools');
  t.same(r.problems.map((p) => [p.object, p.field]), [['ServiceGroup purelb/broken', 'spec.local.v4pools[0].pool']]);
  t.match(r.problems[0]!.message, /its pools are not shown/);
});

t.test('an address two Services hold against the sharing rules is a problem, not a crash', async (t) => {
  const r = poolsReport(snapshot({ serviceGroups: [group('g', { v4pools: [V4('192.0.2.10-192.0.2.13')] })], services: [svc('a', { group: 'g', ips: ['192.0.2.10'] }), svc('b', { group: 'g', ips: ['192.0.2.10'] })] }));
  t.equal(r.problems.length, 1);
  t.equal(r.problems[0]!.object, 'Service web/b');
  t.equal(r.problems[0]!.field, 'status.loadBalancer.ingress');
});
