import t from 'tap';
import fc from 'fast-check';
import { guard, leaseFresh, winner, type GuardLease, type GuardMode, type GuardSwimMember, type MemberStatus } from '../src/index.ts';

const NOW = 100_000;
const DURATION = 10_000;
const fresh: GuardLease = { renewedAt: NOW - 1_000, leaseDurationMs: DURATION };
const stale: GuardLease = { renewedAt: NOW - DURATION, leaseDurationMs: DURATION };

interface Case {
  name: string;
  self?: string;
  swim: Record<string, MemberStatus>;
  leases: Record<string, GuardLease>;
  canGossip: boolean;
  ownLease: 'fresh' | 'stale' | 'never';
  mode: GuardMode;
  candidates: string[];
}

const cases: Case[] = [
  {
    name: 'healthy: everyone live and fresh',
    swim: { a: 'alive', b: 'alive', c: 'alive' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a', 'b', 'c'],
  },
  {
    name: 'fast failover: SWIM says c is dead although its lease is still fresh',
    swim: { a: 'alive', b: 'alive', c: 'dead' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a', 'b'],
  },
  {
    name: 'a suspect is still a candidate',
    swim: { a: 'alive', b: 'suspect', c: 'alive' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a', 'b', 'c'],
  },
  {
    name: 'isolated: no peer answers but their leases are fresh -> lease view without self',
    swim: { a: 'alive', b: 'dead', c: 'dead' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: false,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['b', 'c'],
  },
  {
    name: 'isolated, before SWIM noticed: peers still alive in the view',
    swim: { a: 'alive', b: 'alive', c: 'suspect' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: false,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['b', 'c'],
  },
  {
    name: 'isolated after SWIM removed everyone: canGossip is true again, but one of three is no majority',
    swim: { a: 'alive', b: 'dead', c: 'dead' },
    leases: { a: fresh, b: fresh, c: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['b', 'c'],
  },
  {
    name: 'lease view skips stale peers',
    swim: { a: 'alive', b: 'dead', c: 'dead', d: 'dead' },
    leases: { a: fresh, b: fresh, c: stale, d: fresh },
    canGossip: false,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['b', 'd'],
  },
  {
    name: 'fenced: cannot gossip and own lease expired',
    swim: { a: 'alive', b: 'alive' },
    leases: { a: stale, b: fresh },
    canGossip: false,
    ownLease: 'stale',
    mode: 'fenced',
    candidates: [],
  },
  {
    name: 'fenced: never renewed and cannot gossip',
    swim: { a: 'alive', b: 'dead' },
    leases: { b: fresh },
    canGossip: false,
    ownLease: 'never',
    mode: 'fenced',
    candidates: [],
  },
  {
    name: 'API server unreachable but gossip fine: SWIM keeps deciding',
    swim: { a: 'alive', b: 'alive', c: 'alive' },
    leases: { a: stale, b: fresh, c: fresh },
    canGossip: true,
    ownLease: 'stale',
    mode: 'swim',
    candidates: ['a', 'b', 'c'],
  },
  {
    name: 'minority side of a partition (2 of 5) stands down',
    swim: { a: 'alive', b: 'alive', c: 'dead', d: 'dead', e: 'dead' },
    leases: { a: fresh, b: fresh, c: fresh, d: fresh, e: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['b', 'c', 'd', 'e'],
  },
  {
    name: 'majority side of a partition (3 of 5) fails over',
    self: 'c',
    swim: { a: 'dead', b: 'dead', c: 'alive', d: 'alive', e: 'alive' },
    leases: { a: fresh, b: fresh, c: fresh, d: fresh, e: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['c', 'd', 'e'],
  },
  {
    name: 'minority without own lease is fenced',
    swim: { a: 'alive', b: 'alive', c: 'dead', d: 'dead', e: 'dead' },
    leases: { b: fresh, c: fresh, d: fresh, e: fresh },
    canGossip: true,
    ownLease: 'stale',
    mode: 'fenced',
    candidates: [],
  },
  {
    name: 'exact half holding the lowest name keeps SWIM',
    swim: { a: 'alive', b: 'alive', c: 'dead', d: 'dead' },
    leases: { a: fresh, b: fresh, c: fresh, d: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a', 'b'],
  },
  {
    name: 'exact half without the lowest name stands down',
    self: 'c',
    swim: { a: 'dead', b: 'dead', c: 'alive', d: 'alive' },
    leases: { a: fresh, b: fresh, c: fresh, d: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['a', 'b', 'd'],
  },
  {
    name: 'two nodes, the other died, self is lower: takes over at once',
    swim: { a: 'alive', b: 'dead' },
    leases: { a: fresh, b: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a'],
  },
  {
    name: 'two nodes, the other died, self is higher: waits for its lease to expire',
    self: 'b',
    swim: { a: 'dead', b: 'alive' },
    leases: { a: fresh, b: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'lease',
    candidates: ['a'],
  },
  {
    name: 'two nodes, the other died and its lease expired: takes over',
    self: 'b',
    swim: { a: 'dead', b: 'alive' },
    leases: { a: stale, b: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['b'],
  },
  {
    name: 'single node cluster',
    swim: { a: 'alive' },
    leases: { a: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a'],
  },
  {
    name: 'no lease information at all: SWIM alone',
    swim: { a: 'alive', b: 'dead', c: 'alive' },
    leases: {},
    canGossip: true,
    ownLease: 'never',
    mode: 'swim',
    candidates: ['a', 'c'],
  },
  {
    name: 'API server down for everyone (all leases stale), gossip fine: SWIM decides',
    swim: { a: 'alive', b: 'alive', c: 'dead' },
    leases: { a: stale, b: stale, c: stale },
    canGossip: true,
    ownLease: 'stale',
    mode: 'swim',
    candidates: ['a', 'b'],
  },
  {
    name: 'a peer without a lease counts for SWIM but not for the majority',
    swim: { a: 'alive', b: 'alive', c: 'dead' },
    leases: { a: fresh, c: fresh },
    canGossip: true,
    ownLease: 'fresh',
    mode: 'swim',
    candidates: ['a', 'b'],
  },
];

t.test('guard decision table', async (t) => {
  for (const c of cases) {
    const self = c.self ?? 'a';
    const swim: GuardSwimMember[] = Object.entries(c.swim).map(([name, status]) => ({ name, status }));
    const leaseRenewedAt = c.ownLease === 'fresh' ? fresh.renewedAt : c.ownLease === 'stale' ? stale.renewedAt : undefined;
    const d = guard(swim, new Map(Object.entries(c.leases)), { self, canGossip: c.canGossip, leaseRenewedAt, leaseDurationMs: DURATION, now: NOW });
    t.equal(d.mode, c.mode, `${c.name}: mode`);
    t.same([...d.candidates].sort(), c.candidates, `${c.name}: candidates`);
    t.ok(d.reason.length > 0, `${c.name}: has a reason`);
    if (d.mode !== 'swim') t.notOk(d.candidates.has(self), `${c.name}: outside swim mode this node is never a candidate`);
  }
});

t.test('lease freshness boundary', async (t) => {
  t.ok(leaseFresh({ renewedAt: 0, leaseDurationMs: 10 }, 9.999));
  t.notOk(leaseFresh({ renewedAt: 0, leaseDurationMs: 10 }, 10), 'expires exactly at renewedAt + duration');
  t.notOk(leaseFresh(undefined, 0));
});

// Any split of the cluster into groups that gossip only inside themselves, any set of
// fresh leases, and every node computing winners through the guard from the same Lease
// view: no address may be claimed by two nodes.
t.test('property: disjoint gossip groups never claim one address twice', async (t) => {
  const world = fc.record({
    n: fc.integer({ min: 1, max: 7 }),
    groupOf: fc.array(fc.nat(3), { minLength: 7, maxLength: 7 }),
    freshLease: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
    lonelyCanGossip: fc.boolean(),
  });
  const addresses = Array.from({ length: 16 }, (_, i) => `192.0.2.${i + 1}`);
  fc.assert(
    fc.property(world, ({ n, groupOf, freshLease, lonelyCanGossip }) => {
      // With no fresh Lease anywhere (the API server is down for everyone) SWIM decides
      // alone, so the data plane survives an API outage; the guard cannot also cover a
      // gossip partition at the same time.
      fc.pre(freshLease.slice(0, n).some(Boolean));
      const nodes = Array.from({ length: n }, (_, i) => `n${i}`);
      const leases = new Map<string, GuardLease>();
      nodes.forEach((x, i) => leases.set(x, freshLease[i] ? fresh : stale));
      const claims = new Map<string, string>();
      for (const [i, self] of nodes.entries()) {
        const swim: GuardSwimMember[] = nodes.map((x, j) => ({ name: x, status: groupOf[j] === groupOf[i] ? 'alive' : 'dead' }));
        const groupSize = swim.filter((m) => m.status === 'alive').length;
        const d = guard(swim, leases, {
          self,
          canGossip: groupSize > 1 || lonelyCanGossip,
          leaseRenewedAt: freshLease[i] ? fresh.renewedAt : stale.renewedAt,
          leaseDurationMs: DURATION,
          now: NOW,
        });
        const members = [...d.candidates].map((name) => ({ name, subnets: ['192.0.2.0/24'] }));
        for (const a of addresses) {
          if (winner(a, members) !== self) continue;
          const other = claims.get(a);
          if (other !== undefined) return false;
          claims.set(a, self);
        }
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('no double claim in 2000 worlds');
});

t.test('hold-down: a member claims only after SWIM conditions held for holdDownMs', async (t) => {
  const swim: GuardSwimMember[] = [
    { name: 'a', status: 'alive' },
    { name: 'b', status: 'alive' },
  ];
  const leases = new Map([['a', fresh], ['b', fresh]]);
  const base = { self: 'a', canGossip: true, leaseRenewedAt: fresh.renewedAt, leaseDurationMs: DURATION, holdDownMs: 500 };
  const first = guard(swim, leases, { ...base, now: NOW });
  t.equal(first.mode, 'lease', 'first call: settling');
  t.match(first.reason, /settling/);
  t.equal(first.swimSince, NOW);
  t.notOk(first.candidates.has('a'));
  const mid = guard(swim, leases, { ...base, now: NOW + 499, swimSince: first.swimSince });
  t.equal(mid.mode, 'lease', 'still settling at 499 ms');
  const done = guard(swim, leases, { ...base, now: NOW + 500, swimSince: mid.swimSince });
  t.equal(done.mode, 'swim', 'claims at 500 ms');
  t.same([...done.candidates].sort(), ['a', 'b']);
  const cut = guard(swim, leases, { ...base, canGossip: false, now: NOW + 600, swimSince: done.swimSince });
  t.equal(cut.mode, 'lease');
  t.equal(cut.swimSince, undefined, 'a break resets the clock');
  t.equal(guard(swim, leases, { ...base, now: NOW + 700, swimSince: cut.swimSince }).mode, 'lease', 'settles again after the break');
  t.equal(guard(swim, leases, { ...base, holdDownMs: 0, now: NOW }).mode, 'swim', 'no hold-down by default');
});
