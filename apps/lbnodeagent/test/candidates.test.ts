// How the node selector of a ServiceGroup (candidacy, @purelb/api) acts on the plans of several nodes: exactly one holder of a local address.
import t from 'tap';
import { type Member, type SafetyDecision, addressVerdict, safetyTiming } from '@purelb/election';
import { type GroupNodeSelector, type LabelSelector, type NodeView, ALL_NODES, EXCLUDE_LABEL, candidacy } from '@purelb/api';
import { type LinkSubnet, type NodeSnapshot, type ServiceAddress, planNode } from '../src/plan.ts';

const node = (name: string, labels: Record<string, string> = {}, networkUnavailable = false): NodeView => ({
  metadata: { name, labels },
  status: { conditions: networkUnavailable ? [{ type: 'NetworkUnavailable', status: 'True' }] : [] },
});
const sel = (s: LabelSelector): GroupNodeSelector => ({ kind: 'selector', selector: s });
const edge = sel({ matchLabels: { 'purelb.io/edge': 'true' } });

const timing = safetyTiming(200, 1);
const lan4: LinkSubnet = { family: 'IPv4', cidr: '192.0.2.0/24', prefixLength: 24, link: 'eth0' };
const names = ['node-1', 'node-2', 'node-3'];
const members: Member[] = names.map((name) => ({ name, subnets: ['192.0.2.0/24'] }));

/** Each node's plan, from the same Nodes (labels) and the same live members. */
function plans(nodes: Map<string, NodeView>, selector: GroupNodeSelector, address: ServiceAddress): Map<string, ReturnType<typeof planNode>> {
  const decision: SafetyDecision = {
    mode: 'swim',
    mayHold: true,
    candidates: new Map(members.map((m) => [m.name, m.subnets])),
    reason: 'test',
    nextCheckAt: Infinity,
    state: { swimSince: 0, lostAt: new Map() },
    population: 3,
    reached: 3,
  };
  const selects = selector.kind === 'all' ? undefined : (n: string): boolean => candidacy(nodes.get(n), selector).may;
  const out = new Map<string, ReturnType<typeof planNode>>();
  for (const self of names) {
    const snap: NodeSnapshot = {
      node: self,
      addresses: [address],
      localSubnets: [lan4],
      virtualLink: 'kube-lb0',
      verdict: (a, announcedBy) => addressVerdict(decision, { self, now: 0, leases: new Map(), timing }, a, announcedBy, selects),
      excluded: !candidacy(nodes.get(self), ALL_NODES).may,
      selectedFor: () => candidacy(nodes.get(self), selector).may,
    };
    out.set(self, planNode(snap));
  }
  return out;
}
const local = (o: Partial<ServiceAddress> = {}): ServiceAddress => ({ service: 'default/web', address: '192.0.2.77', family: 'IPv4', trafficPolicy: 'Cluster', shared: false, endpointNodes: new Set(), aggregation: undefined, group: 'edge', ...o });
const virtual = (): ServiceAddress => local({ address: '203.0.113.5', aggregation: 32 });
const labelled = (edgeNodes: string[], extra: Record<string, Record<string, string>> = {}): Map<string, NodeView> =>
  new Map(names.map((n) => [n, node(n, { ...(edgeNodes.includes(n) ? { 'purelb.io/edge': 'true' } : {}), ...(extra[n] ?? {}) })]));
const holdersOf = (p: Map<string, ReturnType<typeof planNode>>, address: string): string[] => [...p].filter(([, plan]) => plan.wanted.has(address)).map(([n]) => n);

t.test('a local address of a group with a selector: held by exactly one selected node, whichever the hash prefers', async (t) => {
  for (const only of names) {
    for (let i = 1; i <= 20; i++) {
      const p = plans(labelled([only]), edge, local({ address: `192.0.2.${i}` }));
      t.same(holdersOf(p, `192.0.2.${i}`), [only], `192.0.2.${i} selector matches ${only} only`);
    }
  }
  // Two selected: one of the two holds each address, never the third; all agree on the winner.
  for (let i = 1; i <= 20; i++) {
    const p = plans(labelled(['node-1', 'node-3']), edge, local({ address: `192.0.2.${i}` }));
    const h = holdersOf(p, `192.0.2.${i}`);
    t.equal(h.length, 1, `192.0.2.${i}: one holder`);
    t.ok(h[0] === 'node-1' || h[0] === 'node-3', `192.0.2.${i}: a selected node holds it (${h[0]})`);
    t.equal(new Set([...p.values()].map((x) => x.elections.get(`192.0.2.${i}`))).size, 1, `192.0.2.${i}: every node names the same winner`);
  }
});

t.test('selector matches no eligible node: nobody holds the address', async (t) => {
  t.same(holdersOf(plans(labelled([]), edge, local()), '192.0.2.77'), [], 'no node labelled');
  const excludedEdge = labelled(['node-2'], { 'node-2': { [EXCLUDE_LABEL]: '' } });
  t.same(holdersOf(plans(excludedEdge, edge, local()), '192.0.2.77'), [], 'the only selected node is excluded');
  t.same(holdersOf(plans(excludedEdge, edge, virtual()), '203.0.113.5'), [], 'nor its virtual address');
  t.same(holdersOf(plans(labelled(['node-2']), { kind: 'none', problem: 'x' }, local()), '192.0.2.77'), [], 'a selector never valid');
});

t.test('a virtual address of a group with a selector: on the selected nodes only; without one, on every eligible node', async (t) => {
  t.same(holdersOf(plans(labelled(['node-2']), edge, virtual()), '203.0.113.5'), ['node-2']);
  t.same(holdersOf(plans(labelled(['node-1', 'node-3']), edge, virtual()), '203.0.113.5'), ['node-1', 'node-3']);
  t.same(holdersOf(plans(labelled([], { 'node-1': { [EXCLUDE_LABEL]: '' } }), ALL_NODES, virtual()), '203.0.113.5'), ['node-2', 'node-3'], 'no selector: the excluded node only is left out');
  t.same(holdersOf(plans(labelled([]), ALL_NODES, local()), '192.0.2.77').length, 1, 'no selector: a local address has one holder');
});

t.test('relabel: the announcer no longer selected withdraws; the newly selected waits for it (break before make)', async (t) => {
  // node-1 announced; now only node-3 is selected.
  const p = plans(labelled(['node-3']), edge, local({ announcedBy: 'node-1' }));
  t.same(holdersOf(p, '192.0.2.77'), [], 'nobody holds it while the old announcer still announces');
  t.notOk(p.get('node-1')!.announcing.has('default/web'), 'node-1 stops announcing');
  t.same(p.get('node-3')!.awaitingHandover.get('192.0.2.77'), { from: 'node-1', until: undefined }, 'node-3 waits for node-1 to hand over');
  // node-1 has removed its announcement: node-3 takes it.
  const after = plans(labelled(['node-3']), edge, local());
  t.same(holdersOf(after, '192.0.2.77'), ['node-3'], 'then node-3 holds it');
  // Stickiness inside the selection: a selected announcer keeps its address when another node becomes selected too.
  const sticky = plans(labelled(['node-1', 'node-2', 'node-3']), edge, local({ announcedBy: 'node-3' }));
  t.same(holdersOf(sticky, '192.0.2.77'), ['node-3'], 'a selected announcer keeps it');
});
