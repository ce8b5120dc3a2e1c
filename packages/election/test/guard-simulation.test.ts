import t from 'tap';
import { guard, winner, type GuardLease, type GuardMode } from '../src/index.ts';
import { SimulatedCluster, type SimulatedMember } from '../src/testing/index.ts';

const ADDRESSES = Array.from({ length: 64 }, (_, i) => `192.0.2.${i + 10}`);
const LEASE_MS = 15_000;
const HOLD_DOWN_MS = 500;
const swimSince = new Map<string, number | undefined>();

/** What every running member would announce right now, through the guard, with every Lease fresh. */
function claims(cluster: SimulatedCluster): { byAddress: Map<string, string[]>; modes: Map<string, GuardMode> } {
  const now = cluster.clock.now();
  const leases = new Map<string, GuardLease>(cluster.members.map((m) => [m.name, { renewedAt: now, leaseDurationMs: LEASE_MS }]));
  const byAddress = new Map<string, string[]>(ADDRESSES.map((a) => [a, []]));
  const modes = new Map<string, GuardMode>();
  for (const m of cluster.running()) {
    const view = m.membership;
    const d = guard(view.members(), leases, {
      self: m.name,
      canGossip: view.canGossip(),
      leaseRenewedAt: now,
      leaseDurationMs: LEASE_MS,
      now,
      swimSince: swimSince.get(m.name),
      holdDownMs: HOLD_DOWN_MS,
    });
    swimSince.set(m.name, d.swimSince);
    modes.set(m.name, d.mode);
    const candidates = [...d.candidates].map((name) => ({ name, subnets: view.member(name)?.subnets ?? [] }));
    for (const a of ADDRESSES) if (winner(a, candidates) === m.name) byAddress.get(a)!.push(m.name);
  }
  return { byAddress, modes };
}

t.test('a member whose gossip port is blocked claims nothing, and no address ever has two claimers', async (t) => {
  const cluster = new SimulatedCluster({ size: 5, seed: 3 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  cluster.advance(1_000);
  claims(cluster);
  cluster.advance(HOLD_DOWN_MS);
  const owners = (c: ReturnType<typeof claims>) => [...c.byAddress.values()].map((x) => x.length);
  t.ok(owners(claims(cluster)).every((n) => n === 1), 'healthy: every address has exactly one claimer');

  const victim: SimulatedMember = cluster.members[2]!;
  const victimAddresses = ADDRESSES.filter((a) => claims(cluster).byAddress.get(a)![0] === victim.name);
  t.ok(victimAddresses.length > 0, `the victim holds ${victimAddresses.length} addresses before`);
  cluster.network.isolate(victim.address);
  const isolatedAt = cluster.clock.now();
  let maxClaimers = 0;
  let victimWithdrewAt: number | undefined;
  let takenOverAt: number | undefined;
  for (let step = 0; step < 5_000 / 5; step++) {
    cluster.advance(5);
    const c = claims(cluster);
    maxClaimers = Math.max(maxClaimers, ...owners(c));
    const victimClaims = ADDRESSES.filter((a) => c.byAddress.get(a)!.includes(victim.name));
    if (victimWithdrewAt === undefined && victimClaims.length === 0) victimWithdrewAt = cluster.clock.now() - isolatedAt;
    if (takenOverAt === undefined && victimAddresses.every((a) => c.byAddress.get(a)!.length === 1 && !c.byAddress.get(a)!.includes(victim.name))) {
      takenOverAt = cluster.clock.now() - isolatedAt;
    }
  }
  t.equal(maxClaimers, 1, 'no address ever had two claimers');
  t.ok(victimWithdrewAt !== undefined, `the isolated member withdrew (after ${victimWithdrewAt} ms)`);
  t.ok(takenOverAt !== undefined && takenOverAt < 1_500, `the others took its addresses over (after ${takenOverAt} ms)`);
  t.ok(victimWithdrewAt! <= takenOverAt!, 'withdrawal came no later than the takeover');
  const end = claims(cluster);
  t.equal(end.modes.get(victim.name), 'lease', 'the isolated member follows the Lease view');
  t.ok([...end.modes].filter(([n]) => n !== victim.name).every(([, m]) => m === 'swim'), 'the others stay on SWIM');
  t.ok(owners(end).every((n) => n === 1), 'every address is served by exactly one member');

  // Heal: the member comes back, refutes its death, and the cluster returns to one claimer each.
  cluster.network.heal();
  let maxAfter = 0;
  const healed = cluster.runUntil(() => {
    const c = claims(cluster);
    maxAfter = Math.max(maxAfter, ...owners(c));
    return cluster.converged() && [...c.modes.values()].every((m) => m === 'swim');
  }, 90_000, 10);
  t.ok(healed !== undefined, `after healing every member is back on SWIM (${healed} ms)`);
  t.equal(maxAfter, 1, 'no double claim while healing');
  t.ok(owners(claims(cluster)).every((n) => n === 1), 'one claimer per address again');
  await cluster.close();
});

t.test('a member that can neither gossip nor renew its Lease is fenced', async (t) => {
  const cluster = new SimulatedCluster({ size: 3, seed: 8 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const victim = cluster.members[0]!;
  cluster.network.isolate(victim.address);
  cluster.advance(2_000);
  const now = cluster.clock.now();
  const d = guard(victim.membership.members(), new Map([[cluster.members[1]!.name, { renewedAt: now, leaseDurationMs: LEASE_MS }]]), {
    self: victim.name,
    canGossip: victim.membership.canGossip(),
    leaseRenewedAt: now - LEASE_MS - 1,
    leaseDurationMs: LEASE_MS,
    now,
  });
  t.equal(d.mode, 'fenced');
  t.equal(d.candidates.size, 0, 'withdraws everything');
  await cluster.close();
});
