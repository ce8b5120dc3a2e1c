import t from 'tap';
import fc from 'fast-check';
import { canAnnounce, winner, winnerScore, type Member, type MemberStatus } from '../src/index.ts';

const lan = ['192.0.2.0/24', '2001:db8::/64'];
const abc: Member[] = [
  { name: 'node-a', subnets: lan },
  { name: 'node-b', subnets: lan },
  { name: 'node-c', subnets: lan },
];

t.test('known answers: sha256(node#address), lowest hex wins', async (t) => {
  // Scores computed independently with `printf 'node-a#192.0.2.10' | sha256sum`.
  t.equal(winnerScore('node-a', '192.0.2.10').slice(0, 16), 'd4b84135501a6622');
  t.equal(winnerScore('node-b', '192.0.2.10').slice(0, 16), '6e9fb809c116d8f2');
  t.equal(winnerScore('node-c', '192.0.2.10').slice(0, 16), '39f2d7a8f2401847');
  t.equal(winnerScore('node-b', '2001:db8::10').slice(0, 16), '21d5668f18c03bbe');
  const table: [string, Member[], string | undefined][] = [
    ['192.0.2.10', abc, 'node-c'],
    ['192.0.2.10', abc.slice(0, 2), 'node-b'],
    ['192.0.2.10', [abc[0]!], 'node-a'],
    ['2001:db8::10', abc, 'node-b'],
    ['2001:db8::10', [abc[0]!, abc[2]!], 'node-a'],
    ['192.0.2.10', [], undefined],
  ];
  for (const [address, members, want] of table) t.equal(winner(address, members), want, `${address} among ${members.map((m) => m.name).join(',') || 'nobody'}`);
});

t.test('only live members whose subnets contain the address take part', async (t) => {
  const members: (Member & { status?: MemberStatus })[] = [
    { name: 'node-a', subnets: ['198.51.100.0/24'] },
    { name: 'node-b', subnets: ['192.0.2.0/25'] },
    { name: 'node-c', subnets: ['192.0.2.0/24'], status: 'dead' },
    { name: 'node-d', subnets: ['192.0.2.0/24'], status: 'left' },
    { name: 'node-e', subnets: ['not a cidr', '192.0.2.128/25'], status: 'suspect' },
  ];
  t.equal(winner('192.0.2.10', members), 'node-b', 'only node-b holds 192.0.2.10');
  t.equal(winner('192.0.2.200', members), 'node-e', 'suspect still counts; bad subnet text is ignored');
  t.equal(winner('198.51.100.1', members), 'node-a');
  t.equal(winner('203.0.113.1', members), undefined, 'nobody can announce');
  t.equal(winner('2001:db8::1', members), undefined, 'no v6 subnet anywhere');
  t.equal(winner('not-an-address', members), undefined);
  t.equal(winner('192.0.2.300', members), undefined);
  t.ok(canAnnounce(['192.0.2.77/24'], '192.0.2.1'), 'host bits of a subnet are ignored');
  t.notOk(canAnnounce(['2001:db8::/64'], '192.0.2.1'), 'family must match');
  t.ok(canAnnounce(['2001:db8::/64'], '2001:db8::ffff:1'));
});

const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), { minLength: 1, maxLength: 12 });
const address = fc.oneof(fc.nat(255).map((n) => `192.0.2.${n}`), fc.nat(0xffff).map((n) => `2001:db8::${n.toString(16)}`));

t.test('property: member order does not matter', async (t) => {
  fc.assert(
    fc.property(names, address, fc.nat(), (ns, a, seed) => {
      const members = ns.map((name) => ({ name, subnets: lan }));
      const shuffled = [...members].sort((x, y) => ((winnerScore(x.name, String(seed)) < winnerScore(y.name, String(seed))) ? -1 : 1));
      return winner(a, members) === winner(a, shuffled) && winner(a, members) === winner(a, [...members].reverse());
    }),
  );
  t.pass('held for every sample');
});

t.test('property: removing a non-winner keeps the winner; removing the winner picks the next lowest', async (t) => {
  fc.assert(
    fc.property(names, address, fc.nat(), (ns, a, pick) => {
      const members = ns.map((name) => ({ name, subnets: lan }));
      const w = winner(a, members)!;
      const other = members[pick % members.length]!;
      const without = members.filter((m) => m !== other);
      if (other.name !== w) return winner(a, without) === w;
      const expected = without.map((m) => m.name).sort((x, y) => (winnerScore(x, a) < winnerScore(y, a) ? -1 : 1))[0];
      return winner(a, without) === expected;
    }),
  );
  t.pass('held for every sample');
});

t.test('property: the winner has the lowest score of all eligible members', async (t) => {
  fc.assert(
    fc.property(names, address, (ns, a) => {
      const members = ns.map((name) => ({ name, subnets: lan }));
      const w = winner(a, members)!;
      return members.every((m) => winnerScore(w, a) <= winnerScore(m.name, a));
    }),
  );
  t.pass('held for every sample');
});
