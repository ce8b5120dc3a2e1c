// statusReport: the allocator's leader, the agents, the groups and the problems, from snapshots.
import t from 'tap';
import { renderStatus } from '../src/render.ts';
import { statusReport } from '../src/status.ts';
import { V4, agentLease, allocatorLease, group, node, snapshot, svc, warning } from './fixtures.ts';

const healthy = snapshot({
  leases: [allocatorLease('allocator-0'), agentLease('node-a', { membership: '2/2' }), agentLease('node-b', { membership: '2/2' })],
  nodes: [node('node-a'), node('node-b')],
  serviceGroups: [group('default', { v4pools: [V4('192.0.2.100-192.0.2.109')] }, { ipv4: { size: '10', inUse: '1' }, ipv6: { size: '0', inUse: '0' } })],
  services: [svc('front', { ips: ['192.0.2.100'] })],
  allocatorDeployments: [{ metadata: { name: 'purelb-allocator' }, spec: { replicas: 2 }, status: { readyReplicas: 2 } }],
});

t.test('a healthy cluster: no problems', async (t) => {
  const r = statusReport(healthy);
  t.same(r.problems, []);
  t.equal(r.allocator.leader, 'allocator-0');
  t.ok(r.allocator.fresh);
  t.same(r.allocator.replicas, { ready: 2, desired: 2 });
  t.same(r.nodes.map((n) => [n.node, n.agent, n.mode, n.membership]), [['node-a', 'running', 'swim', '2/2'], ['node-b', 'running', 'swim', '2/2']]);
  t.same(r.serviceGroups, [{ name: 'default', type: 'local', valid: true, services: 1, ipv4: '1/10', ipv6: undefined, nodeSelector: undefined, selectedNodes: undefined }]);
});

const cases: { name: string; snap: ReturnType<typeof snapshot>; object: string; field?: string; message: RegExp }[] = [
  { name: 'no allocator Lease', snap: { ...healthy, leases: healthy.leases.slice(1) }, object: 'Lease purelb/purelb-allocator', message: /not found: no allocator has ever led/ },
  { name: 'a stale allocator Lease', snap: { ...healthy, leases: [allocatorLease('allocator-0', 40), ...healthy.leases.slice(1)] }, object: 'Lease purelb/purelb-allocator', field: 'spec.renewTime', message: /leader allocator-0 last renewed 40 s ago \(Lease duration 15 s\)/ },
  { name: 'nobody holds the allocator Lease', snap: { ...healthy, leases: [allocatorLease(undefined), ...healthy.leases.slice(1)] }, object: 'Lease purelb/purelb-allocator', field: 'spec.holderIdentity', message: /nobody holds the Lease/ },
  { name: 'replicas not ready', snap: { ...healthy, allocatorDeployments: [{ metadata: { name: 'purelb-allocator' }, spec: { replicas: 2 }, status: { readyReplicas: 1 } }] }, object: 'Deployment purelb/purelb-allocator', message: /1 of 2 allocator replicas are ready/ },
  { name: 'a Node without an agent', snap: { ...healthy, nodes: [...healthy.nodes, node('node-c')] }, object: 'Node node-c', message: /no agent Lease \(Lease purelb\/purelb-agent-node-c\)/ },
  { name: 'a stale agent Lease', snap: { ...healthy, leases: [healthy.leases[0]!, agentLease('node-a', { ageS: 30 }), healthy.leases[2]!] }, object: 'Lease purelb/purelb-agent-node-a', field: 'spec.renewTime', message: /last renewed 30 s ago \(duration 10 s\)/ },
  { name: 'an agent fenced', snap: { ...healthy, leases: [healthy.leases[0]!, agentLease('node-a', { mode: 'fenced' }), healthy.leases[2]!] }, object: 'Lease purelb/purelb-agent-node-a', message: /guard mode fenced: it holds no local address/ },
  { name: 'an invalid group (the daemons\' parse)', snap: { ...healthy, serviceGroups: [group('bad', { v4pools: [V4('192.0.2.10-192.0.2.5')] })] }, object: 'ServiceGroup purelb/bad', field: 'spec.local.v4pools[0].pool', message: /is neither a range/ },
  { name: 'a group the allocator marked invalid', snap: { ...healthy, serviceGroups: [group('marked', { v4pools: [V4('192.0.2.10-192.0.2.20')] }, { conditions: [{ type: 'Valid', status: 'False', reason: 'OverlappingPools', message: 'overlaps x', lastTransitionTime: '2026-01-01T00:00:00Z' }] })] }, object: 'ServiceGroup purelb/marked', field: 'status.conditions[Valid]', message: /the allocator finds it invalid \(OverlappingPools\): overlaps x/ },
  {
    name: 'a node selector that selects no eligible Node',
    snap: { ...healthy, nodes: [node('node-a', [], { edge: 'true', 'node.kubernetes.io/exclude-from-external-load-balancers': '' }), node('node-b')], serviceGroups: [group('edge', { nodeSelector: { matchLabels: { edge: 'true' } }, v4pools: [V4('192.0.2.10-192.0.2.20')] })] },
    object: 'ServiceGroup purelb/edge',
    field: 'spec.local.nodeSelector',
    message: /^edge=true selects no eligible Node \(of 2\): no node announces its local addresses$/,
  },
  { name: 'neither local nor netbox', snap: { ...healthy, serviceGroups: [group('empty', undefined)] }, object: 'ServiceGroup purelb/empty', field: 'spec', message: /exactly one of spec.local and spec.netbox/ },
];

t.test('each problem names the object and the field', async (t) => {
  for (const c of cases) {
    const r = statusReport(c.snap);
    const p = r.problems.find((x) => x.object === c.object);
    t.ok(p, `${c.name}: a problem about ${c.object} (got ${JSON.stringify(r.problems)})`);
    if (!p) continue;
    t.equal(p.field, c.field, `${c.name}: field`);
    t.match(p.message, c.message, `${c.name}: message`);
  }
});

t.test('a Service without an address: the allocator\'s latest Warning says why', async (t) => {
  const lost = svc('lost', { ns: 'shop' });
  const other = svc('lost', { ns: 'other', uid: 'uid-other' });
  const r = statusReport({
    ...healthy,
    services: [...healthy.services, lost, other, svc('theirs', { cls: 'example.com/lb' }), svc('np', { type: 'NodePort' })],
    serviceEvents: [
      warning(lost, 'AllocationFailed', 'old reason', 60),
      warning(lost, 'AllocationFailed', 'every IPv4 pool of ServiceGroup "default" is full', 2),
      warning(lost, 'SomethingElse', 'from another component', 1, 'kubelet'),
    ],
  });
  t.same(
    r.problems.map((p) => [p.object, p.message]),
    [
      ['Service other/lost', 'no address, and no Warning Event from the allocator about it (is the allocator leading?)'],
      ['Service shop/lost', 'no address: AllocationFailed: every IPv4 pool of ServiceGroup "default" is full'],
    ],
    'the latest allocator Warning, matched by uid; other classes and types are not ours',
  );
});

t.test('a group with a node selector: its selector and the eligible Nodes it selects', async (t) => {
  const zone = 'topology.kubernetes.io/zone';
  const r = statusReport({
    ...healthy,
    nodes: [node('node-a', [], { [zone]: 'a' }), node('node-b', [], { [zone]: 'b' }), node('node-c', [], { [zone]: 'a', 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' }), node('node-d')],
    leases: [...healthy.leases, agentLease('node-c'), agentLease('node-d')],
    serviceGroups: [
      group('default', { v4pools: [V4('192.0.2.100-192.0.2.109')] }),
      group('zone-a', { nodeSelector: { matchExpressions: [{ key: zone, operator: 'In', values: ['a'] }] }, v4pools: [V4('192.0.2.10-192.0.2.20')] }),
    ],
  });
  t.same(r.problems, []);
  t.same(r.serviceGroups.map((g) => [g.name, g.nodeSelector, g.selectedNodes]), [['default', undefined, undefined], ['zone-a', `${zone} in (a)`, ['node-a']]], 'the excluded node-c is not selected');
  const text = renderStatus(r);
  t.match(text, /zone-a .*topology\.kubernetes\.io\/zone in \(a\) +1 \(node-a\)/);
});
