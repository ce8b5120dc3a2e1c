import t from 'tap';
import fc from 'fast-check';
import { type Member, type SafetyDecision, addressVerdict, hardFenceMs, safetyTiming } from '@purelb/election';
import { type LinkSubnet, type NodeSnapshot, type ServiceAddress, addressChanges, addressLifetimes, localSubnetOf, planNode } from '../src/plan.ts';

const timing = safetyTiming(200, 1);
/**
 * The safety rule's verdicts for `node` when `candidates` are live (swim mode), the other
 * nodes lost at time 0, evaluated at `now`.
 */
function verdictFor(node: string, candidates: readonly Member[], now = 0): NodeSnapshot['verdict'] {
  const names = new Set(candidates.map((c) => c.name));
  const decision: SafetyDecision = {
    mode: 'swim',
    mayHold: names.has(node),
    candidates: new Map(candidates.map((c) => [c.name, c.subnets])),
    reason: 'test',
    nextCheckAt: Infinity,
    state: { swimSince: 0, lostAt: new Map(nodes.filter((n) => !names.has(n)).map((n) => [n, 0])) },
    population: nodes.length,
    reached: names.size,
  };
  return (address, announcedBy) => addressVerdict(decision, { self: node, now, leases: new Map(), timing }, address, announcedBy);
}

const lan4: LinkSubnet = { family: 'IPv4', cidr: '192.0.2.0/24', prefixLength: 24, link: 'eth0' };
const lan6: LinkSubnet = { family: 'IPv6', cidr: '2001:db8::/64', prefixLength: 64, link: 'eth0' };
const nodes = ['node-1', 'node-2', 'node-3'];
const everyone = nodes.map((name) => ({ name, subnets: ['192.0.2.0/24', '2001:db8::/64'] }));
const addr = (address: string, o: Partial<ServiceAddress> = {}): ServiceAddress => ({
  service: 'default/web',
  address,
  family: address.includes(':') ? 'IPv6' : 'IPv4',
  trafficPolicy: 'Cluster',
  shared: false,
  endpointNodes: new Set(),
  aggregation: undefined,
  ...o,
});
const snap = (node: string, addresses: ServiceAddress[], over: Partial<NodeSnapshot> & { candidates?: typeof everyone; now?: number } = {}): NodeSnapshot => ({
  node,
  addresses,
  localSubnets: [lan4, lan6],
  virtualLink: 'kube-lb0',
  verdict: verdictFor(node, over.candidates ?? everyone, over.now ?? 0),
  ...over,
});

t.test('local subnet lookup takes the longest prefix', async (t) => {
  const narrow: LinkSubnet = { family: 'IPv4', cidr: '192.0.2.192/26', prefixLength: 26, link: 'eth1' };
  t.equal(localSubnetOf('192.0.2.200', [lan4, narrow])?.link, 'eth1');
  t.equal(localSubnetOf('192.0.2.10', [lan4, narrow])?.link, 'eth0');
  t.equal(localSubnetOf('203.0.113.1', [lan4, narrow]), undefined);
  t.equal(localSubnetOf('2001:db8::5', [lan4, lan6])?.cidr, '2001:db8::/64');
});

t.test('a local address: exactly one node of the subnet holds it, on its interface, with the subnet prefix', async (t) => {
  const plans = nodes.map((n) => planNode(snap(n, [addr('192.0.2.200')])));
  const holders = plans.filter((p) => p.wanted.has('192.0.2.200'));
  t.equal(holders.length, 1, 'one holder');
  const w = holders[0]!.wanted.get('192.0.2.200')!;
  t.same([w.link, w.prefixLength, w.kind], ['eth0', 24, 'local']);
  const winner = nodes[plans.indexOf(holders[0]!)]!;
  t.same([...holders[0]!.announcing.get('default/web')!], [['IPv4', `${winner},eth0`]], 'the winner announces node,interface');
  for (const p of plans) t.equal(p.elections.get('192.0.2.200'), winner, 'every node computes the same winner');
});

t.test('a node that is not a candidate never holds a local address', async (t) => {
  for (const n of nodes) {
    const p = planNode(snap(n, [addr('192.0.2.200'), addr('2001:db8::200')], { candidates: everyone.filter((c) => c.name !== n) }));
    t.equal(p.wanted.size, 0, `${n}`);
  }
});

t.test('an excluded node wants nothing: no local address, even when it is the winner or the announcer, and no virtual one', async (t) => {
  const addresses = [addr('192.0.2.200'), addr('2001:db8::200'), addr('203.0.113.7', { aggregation: 32 }), addr('203.0.113.8', { trafficPolicy: 'Local', endpointNodes: new Set(nodes) })];
  for (const n of nodes) {
    const included = planNode(snap(n, addresses));
    t.ok(included.wanted.has('203.0.113.7') && included.wanted.has('203.0.113.8'), `${n}: included, the virtual addresses are wanted`);
    const announced = addresses.map((a) => ({ ...a, announcedBy: n }));
    const p = planNode(snap(n, announced, { excluded: true }));
    t.equal(p.wanted.size, 0, `${n}: excluded, nothing is wanted`);
    t.equal(p.announcing.size, 0, `${n}: excluded, no announcing annotation is kept`);
  }
});

t.test('v4 and v6 are elected independently; property: exactly one holder per local address', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 250 }), { minLength: 1, maxLength: 30 }), fc.subarray(nodes, { minLength: 1 }), (hosts, live) => {
      const addresses = hosts.flatMap((h) => [addr(`192.0.2.${h}`), addr(`2001:db8::${h.toString(16)}`)]);
      const cands = everyone.filter((c) => live.includes(c.name));
      const plans = live.map((n) => planNode(snap(n, addresses, { candidates: cands })));
      for (const a of addresses) if (plans.filter((p) => p.wanted.has(a.address)).length !== 1) return false;
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass('no counterexample');
});

t.test('a virtual address: every node, on the virtual link, with the aggregation', async (t) => {
  for (const n of nodes) {
    const p = planNode(snap(n, [addr('203.0.113.5', { aggregation: 32 }), addr('2001:db8:1::5')]));
    t.same([p.wanted.get('203.0.113.5')?.link, p.wanted.get('203.0.113.5')?.prefixLength, p.wanted.get('203.0.113.5')?.kind], ['kube-lb0', 32, 'virtual']);
    t.equal(p.wanted.get('2001:db8:1::5')?.prefixLength, 128, 'no known pool: a host prefix');
    t.equal(p.announcing.size, 0, 'virtual addresses are not announced by one node');
  }
});

t.test('externalTrafficPolicy Local', async (t) => {
  const local = addr('203.0.113.5', { trafficPolicy: 'Local', endpointNodes: new Set(['node-2']) });
  t.same(nodes.map((n) => planNode(snap(n, [local])).wanted.has('203.0.113.5')), [false, true, false], 'virtual: only nodes with a ready endpoint');
  const shared = { ...local, shared: true };
  t.same(nodes.map((n) => planNode(snap(n, [shared])).wanted.has('203.0.113.5')), [true, true, true], 'a shared address ignores it');
  const onLocal = planNode(snap('node-1', [addr('192.0.2.200', { trafficPolicy: 'Local', endpointNodes: new Set(['node-3']) })]));
  t.equal(onLocal.notes[0]?.reason, 'TrafficPolicyNotSupported', 'local addresses treat it as Cluster, with a note');
});

t.test('two Services sharing an address are held together', async (t) => {
  const a = addr('192.0.2.201', { service: 'default/http', shared: true });
  const b = addr('192.0.2.201', { service: 'default/https', shared: true });
  const holders = nodes.map((n) => planNode(snap(n, [a, b]))).filter((p) => p.wanted.has('192.0.2.201'));
  t.equal(holders.length, 1);
  t.same(holders[0]!.wanted.get('192.0.2.201')!.services, ['default/http', 'default/https']);
  t.same([...holders[0]!.announcing.keys()].sort(), ['default/http', 'default/https']);
});

t.test('address changes: add the missing, remove only what is ours', async (t) => {
  const plan = planNode(snap('node-1', [addr('203.0.113.5', { aggregation: 32 })]));
  const present = [
    { address: '192.0.2.11', link: 'eth0', prefixLength: 24 },
    { address: '203.0.113.9', link: 'kube-lb0', prefixLength: 32 },
    { address: '203.0.113.5', link: 'kube-lb0', prefixLength: 28 },
  ];
  const c = addressChanges(present, plan.wanted, (a, l) => l === 'kube-lb0' || a === '192.0.2.200');
  t.same(c.remove.map((r) => r.address).sort(), ['203.0.113.5', '203.0.113.9'], 'stale and wrong-prefix addresses go; the node\'s own stays');
  t.same(c.add.map((w) => `${w.address}/${w.prefixLength}`), ['203.0.113.5/32']);
  t.same(addressChanges([{ address: '203.0.113.5', link: 'kube-lb0', prefixLength: 32 }], plan.wanted, () => true), { add: [], remove: [], restamp: [] }, 'nothing to do');
});

t.test('address changes: a held virtual address with a lifetime is made permanent, a local one is left to renewal', async (t) => {
  const virtual = planNode(snap('node-1', [addr('203.0.113.5', { aggregation: 32 })]));
  const c = addressChanges([{ address: '203.0.113.5', link: 'kube-lb0', prefixLength: 32, expires: true }], virtual.wanted, () => true);
  t.same(c.restamp.map((w) => w.address), ['203.0.113.5']);
  t.same([c.add, c.remove], [[], []], 'neither added again (no new announcement) nor removed');
  const local = nodes.map((n) => planNode(snap(n, [addr('192.0.2.200')]))).find((p) => p.wanted.has('192.0.2.200'))!;
  const w = local.wanted.get('192.0.2.200')!;
  t.equal(w.kind, 'local');
  t.same(addressChanges([{ address: w.address, link: w.link, prefixLength: w.prefixLength, expires: true }], local.wanted, () => true), { add: [], remove: [], restamp: [] });
});

t.test('address lifetimes: IPv6 is never preferred (never a source address); local ones live the lifetime', async (t) => {
  const rows: [kind: 'local' | 'virtual', family: 'IPv4' | 'IPv6', lifetimeS: number, want: object][] = [
    ['local', 'IPv4', 1, { validLifetime: 1, preferredLifetime: 1 }],
    ['local', 'IPv6', 1, { validLifetime: 1, preferredLifetime: 0 }],
    ['local', 'IPv4', 0, {}],
    ['local', 'IPv6', 0, { preferredLifetime: 0 }],
    ['virtual', 'IPv4', 1, {}],
    ['virtual', 'IPv6', 1, { preferredLifetime: 0 }],
  ];
  for (const [kind, family, lifetimeS, want] of rows) t.same(addressLifetimes({ kind, family }, lifetimeS), want, `${kind} ${family}, lifetime ${lifetimeS}`);
});

t.test('address changes: a held IPv6 address that is still preferred is restamped, not re-added', async (t) => {
  const virtual = planNode(snap('node-1', [addr('2001:db8:5::5', { aggregation: 128 })]));
  const present = { address: '2001:db8:5::5', link: 'kube-lb0', prefixLength: 128 };
  const c = addressChanges([{ ...present, preferred: true }], virtual.wanted, () => true);
  t.same(c.restamp.map((w) => w.address), ['2001:db8:5::5']);
  t.same([c.add, c.remove], [[], []]);
  t.same(addressChanges([{ ...present, preferred: false }], virtual.wanted, () => true).restamp, [], 'deprecated already: nothing to do');
});

t.test('break before make: a winner waits while a live node still announces the address', async (t) => {
  const winnerOf = (address: string): string => planNode(snap('node-1', [addr(address)])).elections.get(address)!;
  const a = '192.0.2.200';
  const w = winnerOf(a);
  const other = nodes.find((n) => n !== w)!;
  const sticky = planNode(snap(w, [addr(a, { announcedBy: other })]));
  t.notOk(sticky.wanted.has(a), 'stickiness: the hash winner leaves it to the live announcer');
  t.equal(sticky.elections.get(a), other, 'the announcer keeps it');
  t.notOk(sticky.announcing.has('default/web'));
  t.ok(planNode(snap(other, [addr(a, { announcedBy: other })])).wanted.has(a), 'the announcer holds it');
  const released = planNode(snap(w, [addr(a, { announcedBy: undefined })]));
  t.ok(released.wanted.has(a), 'unannounced: the hash winner holds it');
  const lost = planNode(snap(w, [addr(a, { announcedBy: other })], { candidates: everyone.filter((c) => c.name !== other), now: 100 }));
  t.notOk(lost.wanted.has(a), 'announcer lost without proof: the new holder waits');
  t.same(lost.awaitingHandover.get(a), { from: other, until: hardFenceMs(timing) }, 'until the hard fence from the loss');
  const fenced = planNode(snap(w, [addr(a, { announcedBy: other })], { candidates: everyone.filter((c) => c.name !== other), now: hardFenceMs(timing) }));
  t.ok(fenced.wanted.has(a), 'it holds once the fence is over (failover)');
  const self = planNode(snap(w, [addr(a, { announcedBy: w })]));
  t.ok(self.wanted.has(a), 'its own announcement does not hold it back');
  const shared = planNode(snap(w, [addr(a, { service: 'default/x', shared: true }), addr(a, { service: 'default/y', shared: true, announcedBy: other })]));
  t.notOk(shared.wanted.has(a), 'one Service of a shared address announced elsewhere decides for all');
  t.equal(shared.announcing.size, 0);
});

t.test('a LAN address that no localint interface holds is never virtual', async (t) => {
  const eth1: LinkSubnet = { family: 'IPv4', cidr: '198.51.100.0/24', prefixLength: 24, link: 'eth1' };
  // localint matches eth0 only; 198.51.100.7 lies in eth1's subnet.
  const p = planNode(snap('node-1', [addr('198.51.100.7'), addr('203.0.113.9')], { nodeSubnets: [lan4, eth1], localint: '^eth0$' }));
  t.notOk(p.wanted.has('198.51.100.7'), 'not on the virtual interface');
  t.ok(p.wanted.has('203.0.113.9'), 'a real virtual address still is');
  t.match(p.notes, [{ reason: 'LocalInterfaceNotFound', message: /198\.51\.100\.7 is in 198\.51\.100\.0\/24 of eth1 .* localint "\^eth0\$"/ }]);
});

t.test('an aggregation shorter than a sane pool is not used', async (t) => {
  const p = planNode(snap('node-1', [addr('203.0.113.9', { aggregation: 0 }), addr('2001:db8:9::1', { aggregation: 12 }), addr('203.0.113.10', { aggregation: 24 })]));
  t.equal(p.wanted.get('203.0.113.9')?.prefixLength, 32, '/0 becomes a host route');
  t.equal(p.wanted.get('2001:db8:9::1')?.prefixLength, 128);
  t.equal(p.wanted.get('203.0.113.10')?.prefixLength, 24, 'a sane aggregation is kept');
  t.equal(p.notes.filter((n) => n.reason === 'InvalidAggregation').length, 2);
});

t.test('a subnet\'s network, broadcast and subnet-router anycast addresses are never held', async (t) => {
  for (const n of nodes) {
    const p = planNode(snap(n, [addr('192.0.2.0'), addr('192.0.2.255'), addr('2001:db8::'), addr('192.0.2.254')]));
    t.notOk(p.wanted.has('192.0.2.0') || p.wanted.has('192.0.2.255') || p.wanted.has('2001:db8::'), `${n}: none of them wanted`);
    t.same(
      p.notes.filter((x) => x.reason === 'ReservedAddress').map((x) => x.message),
      [
        `192.0.2.0 is the network address of subnet 192.0.2.0/24 on eth0 of node ${n}; not announced (no host may hold it)`,
        `192.0.2.255 is the broadcast address of subnet 192.0.2.0/24 on eth0 of node ${n}; not announced (no host may hold it)`,
        `2001:db8:: is the subnet-router anycast address of subnet 2001:db8::/64 on eth0 of node ${n}; not announced (no host may hold it)`,
      ],
    );
  }
  const p2p: LinkSubnet = { family: 'IPv4', cidr: '198.51.100.0/31', prefixLength: 31, link: 'eth1' };
  const held = nodes.map((n) => planNode(snap(n, [addr('198.51.100.0'), addr('198.51.100.1', { service: 'default/b' })], { localSubnets: [p2p], candidates: nodes.map((name) => ({ name, subnets: ['198.51.100.0/31'] })) })));
  t.equal(held.filter((p) => p.wanted.has('198.51.100.0')).length, 1, 'a /31 has none (RFC 3021): one node holds each address');
  t.equal(held.flatMap((p) => p.notes).length, 0);
});

t.test('a node\'s own address is never announced, whoever the election names', async (t) => {
  for (const n of nodes) {
    const own = n === 'node-1' ? new Map([['192.0.2.11', 'eth0']]) : new Map<string, string>();
    const p = planNode(snap(n, [addr('192.0.2.11')], { ownAddresses: own }));
    if (n === 'node-1') {
      t.notOk(p.wanted.has('192.0.2.11'), 'its owner does not want it');
      t.same(p.notes, [{ service: 'default/web', reason: 'AddressInUseByNode', message: '192.0.2.11 is an address of node node-1 on eth0, not one PureLB added; it is not announced (give the Service another address)' }]);
    } else t.equal(p.notes.length, 0, `${n} says nothing (its probe finds the owner answering)`);
  }
});
