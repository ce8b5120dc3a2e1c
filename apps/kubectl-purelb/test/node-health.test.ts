// latestArpReport and nodeExclusion, and how status reports them: table tests.
import t from 'tap';
import { latestArpReport, nodeExclusion } from '../src/node-health.ts';
import { statusReport } from '../src/status.ts';
import { NOW, agentLease, allocatorLease, node, nodeEvent, snapshot } from './fixtures.ts';

const UNSAFE = 'net.ipv4.conf.eth0.arp_ignore=0 (max of all and eth0): the node answers ARP for addresses of its other interfaces. To fix: set net.ipv4.conf.all.arp_ignore=1';
const unsafe = (n: string, ageS: number, o: { component?: string; name?: string } = {}) => nodeEvent(n, 'Warning', 'UnsafeARPConfig', UNSAFE, ageS, o);
const safe = (n: string, ageS: number, o: { name?: string } = {}) => nodeEvent(n, 'Normal', 'ARPConfigSafe', 'the ARP settings are safe for local addresses again', ageS, o);

t.test('latestArpReport: the newest ARP-check Event of the agent about the node', async (t) => {
  const cases: { name: string; events: ReturnType<typeof unsafe>[]; state: 'safe' | 'unsafe' | 'unreported'; message?: string }[] = [
    { name: 'no Event', events: [], state: 'unreported' },
    { name: 'one Warning', events: [unsafe('node-a', 30)], state: 'unsafe', message: UNSAFE },
    { name: 'fixed since', events: [unsafe('node-a', 30), safe('node-a', 10)], state: 'safe' },
    { name: 'unsafe again after a fix (order of the list does not matter)', events: [unsafe('node-a', 2), safe('node-a', 10), unsafe('node-a', 30)], state: 'unsafe', message: UNSAFE },
    { name: 'about another node', events: [unsafe('node-b', 3)], state: 'unreported' },
    { name: 'from another component', events: [unsafe('node-a', 3, { component: 'kubelet' })], state: 'unreported' },
    { name: 'other reasons of the agent do not count', events: [nodeEvent('node-a', 'Normal', 'ExcludedFromLoadBalancing', 'x', 1), unsafe('node-a', 5)], state: 'unsafe', message: UNSAFE },
    // Timestamps are kept to the second: the name (creation time in ns) breaks the tie.
    { name: 'same second: the later created wins', events: [safe('node-a', 5, { name: 'node-a.18a0000000000002' }), unsafe('node-a', 5, { name: 'node-a.18a0000000000001' })], state: 'safe' },
  ];
  for (const c of cases) {
    const r = latestArpReport('node-a', c.events);
    t.equal(r.state, c.state, `${c.name}: state`);
    t.equal(r.message, c.state === 'unreported' ? undefined : (c.message ?? 'the ARP settings are safe for local addresses again'), `${c.name}: message`);
  }
});

t.test('nodeExclusion: the label first (any value), then NetworkUnavailable=True', async (t) => {
  const n = (labels: Record<string, string>, conditions: { type: string; status: string }[] = []) => ({ ...node('node-a'), metadata: { name: 'node-a', labels }, status: { conditions } });
  const label = 'node.kubernetes.io/exclude-from-external-load-balancers';
  t.equal(nodeExclusion(undefined), undefined, 'no Node object');
  t.equal(nodeExclusion(n({})), undefined, 'neither');
  t.equal(nodeExclusion(n({ [label]: '' }))?.reason, 'ExcludedByLabel', 'empty value');
  t.equal(nodeExclusion(n({ [label]: 'false' }))?.reason, 'ExcludedByLabel', 'any value, even false (as the agent reads it)');
  t.equal(nodeExclusion(n({}, [{ type: 'NetworkUnavailable', status: 'True' }]))?.reason, 'NetworkUnavailable');
  t.equal(nodeExclusion(n({}, [{ type: 'NetworkUnavailable', status: 'False' }, { type: 'Ready', status: 'False' }])), undefined, 'False, and other conditions, do not exclude');
  t.equal(nodeExclusion(n({ [label]: 'x' }, [{ type: 'NetworkUnavailable', status: 'True' }]))?.reason, 'ExcludedByLabel', 'both: the label is named');
});

t.test('status: an unsafe node is a problem with the agent\'s message; exclusion is shown, not a problem', async (t) => {
  const base = snapshot({
    leases: [allocatorLease('allocator-0'), agentLease('node-a'), agentLease('node-b'), agentLease('node-c')],
    nodes: [node('node-a'), { metadata: { name: 'node-b', labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' } } }, { metadata: { name: 'node-c' }, status: { conditions: [{ type: 'NetworkUnavailable', status: 'True' }] } }],
  });
  const healthy = statusReport({ ...base, nodeEvents: [unsafe('node-a', 60), safe('node-a', 30)] });
  t.same(healthy.problems, [], 'fixed: no problem');
  t.same(healthy.nodes.map((n) => [n.node, n.arp.state, n.excluded?.reason]), [['node-a', 'safe', undefined], ['node-b', 'unreported', 'ExcludedByLabel'], ['node-c', 'unreported', 'NetworkUnavailable']]);
  const bad = statusReport({ ...base, nodeEvents: [unsafe('node-c', 12)] });
  t.same(bad.problems, [{ object: 'Node node-c', message: `ARP settings unsafe for local addresses (its agent's Event UnsafeARPConfig, 12 s ago): ${UNSAFE}` }]);
  t.equal(bad.nodes.find((n) => n.node === 'node-c')?.arp.at, new Date(NOW - 12_000).toISOString());
});
