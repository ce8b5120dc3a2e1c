// electionReport: who should hold each local address by the safety rule, who announces it,
// and where it goes when a node is drained. The expected winners come from @purelb/election's
// own winner function, so the table checks the rule's inputs (candidates, stickiness), not
// hash values.
import t from 'tap';
import { winner } from '@purelb/election';
import { electionReport, holderOf } from '../src/election.ts';
import { renderElection } from '../src/render.ts';
import { V4, agentLease, group, node, snapshot, svc } from './fixtures.ts';

const SUBNETS = '192.0.2.0/24,2001:db8::/64';
const NODES = ['node-a', 'node-b', 'node-c'];
const hash = (address: string, nodes: readonly string[] = NODES) => winner(address, nodes.map((name) => ({ name, subnets: SUBNETS.split(',') })))!;
const announce = (address: string, node: string) => ({ [address.includes(':') ? 'purelb.io/announcing-IPv6' : 'purelb.io/announcing-IPv4']: `${node},eth0` });
const leases = NODES.map((n) => agentLease(n, { subnets: SUBNETS }));

t.test('holderOf: an able announcer keeps it (stickiness), else the hash winner', async (t) => {
  const c = new Map(NODES.map((n) => [n, SUBNETS.split(',')]));
  const a = '192.0.2.50';
  const other = NODES.find((n) => n !== hash(a))!;
  t.equal(holderOf(a, undefined, c), hash(a));
  t.equal(holderOf(a, other, c), other, 'sticky');
  t.equal(holderOf(a, 'gone', c), hash(a), 'an announcer that is no candidate loses it');
  t.equal(holderOf(a, other, new Map([...c].map(([n, s]) => [n, n === other ? ['198.51.100.0/24'] : s]))), hash(a, NODES.filter((n) => n !== other)), 'an announcer without the subnet loses it');
  t.equal(holderOf('203.0.113.1', undefined, c), undefined, 'no candidate has the subnet');
});

t.test('states: ok, sticky, unannounced, mismatch, conflict, no candidate; virtual addresses are counted apart', async (t) => {
  const [a1, a2, a3, a4, a5] = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '2001:db8::5'];
  const stale = 'node-c';
  const r = electionReport(
    snapshot({
      leases: [agentLease('node-a', { subnets: SUBNETS }), agentLease('node-b', { subnets: SUBNETS }), agentLease(stale, { subnets: SUBNETS, ageS: 60 })],
      services: [
        svc('ok', { ips: [a1], annotations: announce(a1, hash(a1, ['node-a', 'node-b'])) }),
        svc('sticky', { ips: [a2], annotations: announce(a2, ['node-a', 'node-b'].find((n) => n !== hash(a2, ['node-a', 'node-b']))!) }),
        svc('unannounced', { ips: [a3] }),
        svc('stale', { ips: [a4], annotations: announce(a4, stale) }),
        svc('shared-1', { ips: [a5], annotations: announce(a5, 'node-a') }),
        svc('shared-2', { ips: [a5], annotations: announce(a5, 'node-b') }),
        svc('virtual', { ips: ['198.51.100.7'] }),
      ],
    }),
  );
  t.same(Object.keys(r.candidates), ['node-a', 'node-b'], 'a stale Lease is no candidate');
  t.equal(r.virtualAddresses, 1);
  t.same(r.addresses.map((x) => [x.address, x.state]), [[a1, 'ok'], [a2, 'sticky'], [a3, 'unannounced'], [a4, 'mismatch'], [a5, 'conflict']]);
  t.same(r.addresses.find((x) => x.address === a5)?.services, ['web/shared-1', 'web/shared-2']);
  t.same(r.problems.map((p) => p.object.split(' ')[1]), [a3, a4, a5], 'sticky is not a problem');
  t.match(r.problems[1]!.message, `announced by ${stale}, but ${hash(a4, ['node-a', 'node-b'])} should hold it (${stale}'s agent Lease is stale)`);
  t.match(r.problems[2]!.message, /announced by node-a and node-b at once/);
});

t.test('a withdrawn mode is no candidate; with nobody able the address has no candidate', async (t) => {
  const a = '192.0.2.9';
  const r = electionReport(snapshot({ leases: [agentLease('node-a', { mode: 'fenced' }), agentLease('node-b', { mode: 'settling' })], services: [svc('s', { ips: [a], annotations: announce(a, 'node-a') })] }));
  t.same(r.candidates, {});
  t.equal(r.addresses[0]!.state, 'no-candidate');
  t.match(r.problems[0]!.message, /no agent that may hold local addresses has a subnet containing it; node-a still announces it \(node-a's agent is in guard mode fenced, holding nothing\)/);
});

t.test('--simulate-drain: the drained node\'s addresses move to the hash winner of the rest; others stay', async (t) => {
  const addrs = Array.from({ length: 12 }, (_, i) => `192.0.2.${100 + i}`);
  const services = addrs.map((a, i) => svc(`s${i}`, { ips: [a], annotations: announce(a, hash(a)) }));
  const r = electionReport(snapshot({ leases, services }), { drain: 'node-b' });
  t.same(r.problems, []);
  let moved = 0;
  for (const row of r.addresses) {
    if (row.shouldHold === 'node-b') {
      moved++;
      t.equal(row.afterDrain, hash(row.address, ['node-a', 'node-c']), `${row.address} moves`);
    } else t.equal(row.afterDrain, row.shouldHold, `${row.address} stays`);
  }
  t.ok(moved > 0 && moved < addrs.length, `${moved} of ${addrs.length} addresses move`);
  const alone = electionReport(snapshot({ leases: [leases[0]!], services: [services[0]!] }), { drain: 'node-a' });
  t.equal(alone.addresses[0]!.afterDrain, undefined);
  t.match(alone.problems.at(-1)!.message, /with node-a drained, no agent could hold it/);
});

t.test('a group with a node selector: only the selected, eligible nodes are candidates (the agents\' candidacy)', async (t) => {
  const edge = { edge: 'true' };
  const nodes = [node('node-a', [], edge), node('node-b', [], { ...edge, 'node.kubernetes.io/exclude-from-external-load-balancers': '' }), node('node-c')];
  const groups = [group('edge', { nodeSelector: { matchLabels: edge }, v4pools: [V4('192.0.2.0/24')] }), group('nobody', { nodeSelector: { matchLabels: { rack: 'none' } }, v4pools: [V4('192.0.2.0/24')] })];
  // Addresses whose hash winner among all three nodes is not node-a, so the selector decides.
  const addrs = Array.from({ length: 40 }, (_, i) => `192.0.2.${10 + i}`).filter((a) => hash(a) !== 'node-a').slice(0, 3);
  t.equal(addrs.length, 3);
  const [held, wrong, orphan] = addrs as [string, string, string];
  const r = electionReport(
    snapshot({
      leases,
      nodes,
      serviceGroups: groups,
      services: [
        svc('edge-ok', { ips: [held], group: 'edge', annotations: announce(held, 'node-a') }),
        svc('edge-wrong', { ips: [wrong], group: 'edge', annotations: announce(wrong, hash(wrong)) }),
        svc('nobody', { ips: [orphan], group: 'nobody' }),
        svc('nobody-announced', { ips: ['192.0.2.200'], group: 'nobody', annotations: announce('192.0.2.200', 'node-c') }),
        svc('plain', { ips: ['192.0.2.201'], annotations: announce('192.0.2.201', hash('192.0.2.201', ['node-a', 'node-c'])) }),
      ],
    }),
    { drain: 'node-a' },
  );
  const row = (a: string) => r.addresses.find((x) => x.address === a)!;
  t.same([row(held).group, row(held).shouldHold, row(held).hashWinner, row(held).state], ['edge', 'node-a', 'node-a', 'ok'], 'the only selected eligible node holds it');
  t.same([row(wrong).shouldHold, row(wrong).state], ['node-a', 'mismatch']);
  t.same([row(orphan).shouldHold, row(orphan).state, row(orphan).afterDrain], [undefined, 'unselected', undefined], 'a selector matching nobody: no expected holder');
  t.same([row('192.0.2.200').shouldHold, row('192.0.2.200').state], [undefined, 'unselected']);
  t.same([row('192.0.2.201').shouldHold, row('192.0.2.201').state], [hash('192.0.2.201', ['node-a', 'node-c']), 'ok'], 'without a selector the excluded node-b is still no candidate');
  t.same([row(held).afterDrain, row(wrong).afterDrain], [undefined, undefined], 'without node-a no selected node is left');
  const about = (a: string) => r.problems.filter((p) => p.object.startsWith(`address ${a} `)).map((p) => p.message);
  t.match(about(wrong), [new RegExp(`^announced by ${hash(wrong)}, but node-a should hold it \\(${hash(wrong)} is (not selected by ServiceGroup edge's nodeSelector|not eligible: ExcludedByLabel)\\)$`), /with node-a drained, no agent could hold it/]);
  t.same(about(orphan), [], 'unselected and unannounced is no problem');
  t.match(about('192.0.2.200'), [/^announced by node-c, but ServiceGroup nobody's nodeSelector accepts no candidate that could hold it: nobody should \(node-c is not selected by ServiceGroup nobody's nodeSelector\)$/]);
  t.match(renderElection(r), new RegExp(`${orphan.replace(/\./g, '\\.')} +web/nobody +nobody +<none> +<none> +<none> +NOBODY +unselected`));
});
