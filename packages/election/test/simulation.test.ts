import t from 'tap';
import { Keyring, MessageType, PRESETS, PlainEnvelope, SealedEnvelope, encodeMessage, encodePacket, type MembershipEvent } from '../src/index.ts';
import { SimulatedCluster, simulatedAddress } from '../src/testing/index.ts';
import { InvariantChecker, stepChecked } from './helpers.ts';

type Log = { observer: string; type: MembershipEvent['type']; member: string; at: number }[];

function withLog(options: ConstructorParameters<typeof SimulatedCluster>[0]): { cluster: SimulatedCluster; log: Log } {
  const log: Log = [];
  const cluster = new SimulatedCluster({ ...options, onEvent: (observer, e, at) => log.push({ observer, type: e.type, member: e.member.name, at }) });
  return { cluster, log };
}

t.test('50 members converge through one seed and stay converged', async (t) => {
  const { cluster, log } = withLog({ size: 50, seed: 11 });
  const inv = new InvariantChecker();
  const took = cluster.runUntil(() => cluster.converged(), 10_000, 10);
  t.ok(took !== undefined, `converged (in ${took} ms simulated)`);
  stepChecked(cluster, inv, 10_000, 50);
  t.ok(cluster.converged(), 'still converged 10 s later');
  t.same(inv.violations, [], 'invariants held');
  t.equal(log.filter((e) => e.type === 'dead').length, 0, 'nobody was declared dead');
  const joins = log.filter((e) => e.type === 'join');
  t.ok(joins.length >= 49 * 50, 'every member saw every other join');
  for (const m of cluster.members) t.equal(m.membership.counters.dropped.forged + m.membership.counters.dropped.malformed, 0, `${m.name}: no drops`);
  await cluster.close();
});

t.test('a killed member is declared dead by every survivor, and only it', async (t) => {
  const { cluster, log } = withLog({ size: 20, seed: 5 });
  const inv = new InvariantChecker();
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  stepChecked(cluster, inv, 2_000);
  const victim = cluster.members[7]!.name;
  const killedAt = cluster.clock.now();
  cluster.kill(victim);
  const took = cluster.runUntil(() => cluster.allSee(victim, ['dead']), 5_000, 1);
  t.ok(took !== undefined && took < 1_500, `every survivor marked ${victim} dead (in ${took} ms simulated)`);
  stepChecked(cluster, inv, 3_000);
  const deaths = log.filter((e) => e.type === 'dead' && e.at >= killedAt);
  t.same([...new Set(deaths.map((e) => e.member))], [victim], 'only the victim died');
  t.equal(deaths.length, 19, 'one dead event per survivor');
  t.same(inv.violations, [], 'invariants held');
  const survivor = cluster.members[0]!.membership;
  t.equal(survivor.liveMembers().length, 19);
  t.ok(survivor.counters.probesSent > 0 && survivor.counters.acksReceived > 0, 'counters move');
  await cluster.close();
});

t.test('a partition heals', async (t) => {
  const { cluster } = withLog({ size: 10, seed: 9 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const a = cluster.members.slice(0, 6).map((m) => m.address);
  const b = cluster.members.slice(6).map((m) => m.address);
  cluster.network.partition(a, b);
  const split = cluster.runUntil(
    () => cluster.members.slice(0, 6).every((m) => m.membership.liveMembers().length === 6) && cluster.members.slice(6).every((m) => m.membership.liveMembers().length === 4),
    10_000,
    10,
  );
  t.ok(split !== undefined, `each side declared the other dead (${split} ms)`);
  cluster.network.heal();
  const healed = cluster.runUntil(() => cluster.converged(), 120_000, 50);
  t.ok(healed !== undefined, `converged again after healing (${healed} ms simulated)`);
  t.ok(cluster.members.some((m) => m.membership.incarnation > 0), 'members refuted their deaths with higher incarnations');
  await cluster.close();
});

t.test('a member cut off alone declares everyone dead; after healing all see each other again within a second', async (t) => {
  const { cluster } = withLog({ size: 5, seed: 21 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const lone = cluster.members[2]!;
  cluster.network.isolate(lone.address);
  const split = cluster.runUntil(() => lone.membership.liveMembers().length === 1 && cluster.allSee(lone.name, ['dead']), 10_000, 10);
  t.ok(split !== undefined, `it declared the others dead, and they it (${split} ms)`);
  cluster.network.heal();
  // Its verdicts reached nobody while it was cut off; the others' pings now tell it.
  const healed = cluster.runUntil(() => cluster.converged(), 1_000, 10);
  t.ok(healed !== undefined, `converged ${healed} ms after healing`);
  await cluster.close();
});

// A link flap longer than the gossip about it: by the time the cable is back, every
// message about the death has been sent and nothing is queued, so no gossip reaches the
// dead member. Both sides still remember each other; the reconnect round must find it.
for (const size of [3, 5]) {
  t.test(`${size} members: one cut off for 6 s rejoins within 1.5 reconnect intervals of the healing`, async (t) => {
    const { cluster } = withLog({ size, seed: 40 + size });
    t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
    const lone = cluster.members[1]!;
    cluster.network.isolate(lone.address);
    cluster.advance(6_000);
    t.ok(lone.membership.liveMembers().length === 1 && cluster.allSee(lone.name, ['dead']), 'it declared the others dead, and they it');
    cluster.network.heal();
    const bound = 1.5 * PRESETS['lan-fast'].reconnectIntervalMs;
    const healed = cluster.runUntil(() => cluster.converged(), 60_000, 10);
    t.ok(healed !== undefined && healed <= bound, `converged ${healed} ms after healing (bound ${bound} ms; the full-state interval is ${PRESETS['lan-fast'].pushPullIntervalMs} ms)`);
    await cluster.close();
  });
}

t.test('graceful leave is seen at once; restart rejoins with a higher incarnation', async (t) => {
  const { cluster, log } = withLog({ size: 8, seed: 21 });
  const inv = new InvariantChecker();
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const leaver = cluster.members[3]!.name;
  const leaving = cluster.leave(leaver);
  const took = cluster.runUntil(() => cluster.allSee(leaver, ['left']), 1_000, 1);
  t.ok(took !== undefined && took <= 5, `every member saw the leave within 5 ms (${took})`);
  cluster.advance(200);
  await leaving;
  t.equal(log.filter((e) => e.type === 'leave' && e.member === leaver).length, 7, 'one leave event per member');
  t.equal(log.filter((e) => e.type === 'dead').length, 0, 'a leave is not a death');
  stepChecked(cluster, inv, 1_000);

  const victim = cluster.members[5]!.name;
  cluster.kill(victim);
  t.ok(cluster.runUntil(() => cluster.allSee(victim, ['dead']), 5_000, 5) !== undefined, 'victim declared dead');
  const oldIncarnation = cluster.members[0]!.membership.member(victim)!.incarnation;
  inv.forgetObserver(victim);
  cluster.restart(victim);
  const back = cluster.runUntil(() => cluster.running().every((m) => m.membership.member(victim)?.status === 'alive'), 5_000, 5);
  t.ok(back !== undefined, `restarted member is alive everywhere (${back} ms)`);
  const seen = cluster.members[0]!.membership.member(victim)!;
  t.ok(seen.incarnation > oldIncarnation, `incarnation rose (${oldIncarnation} -> ${seen.incarnation})`);
  t.ok(log.some((e) => e.type === 'join' && e.member === victim && e.observer === cluster.members[0]!.name && e.at > 0), 'join event for the rejoin');
  stepChecked(cluster, inv, 1_000);
  t.same(inv.violations, [], 'invariants held');
  await cluster.close();
});

t.test('subnet updates propagate', async (t) => {
  const { cluster, log } = withLog({ size: 12, seed: 4 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const m = cluster.members[2]!;
  m.membership.setSubnets(['198.51.100.0/24', '2001:db8:1::/64']);
  const took = cluster.runUntil(() => cluster.running().every((o) => o.membership.member(m.name)?.subnets.join() === '198.51.100.0/24,2001:db8:1::/64'), 2_000, 1);
  t.ok(took !== undefined && took < 500, `every member has the new subnets (${took} ms)`);
  t.equal(log.filter((e) => e.type === 'update' && e.member === m.name).length, 11, 'one update event per other member');
  t.equal(m.membership.incarnation, 1, 'the update raised the incarnation');
  t.throws(() => m.membership.setSubnets(['192.0.2.0/33']), { code: 'ELECTION_INVALID_METADATA', context: { field: 'subnets[0]' } });
  await cluster.close();
});

t.test('key rotation without a gap', async (t) => {
  const k1 = Keyring.generateKey();
  const k2 = Keyring.generateKey();
  const { cluster, log } = withLog({ size: 10, seed: 31, keys: [k1] });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  const forged = () => cluster.members.reduce((n, m) => n + m.membership.counters.dropped.forged, 0);
  for (const step of ['add', 'use', 'remove'] as const) {
    for (const m of cluster.members) {
      if (step === 'add') m.keyring!.add(k2);
      if (step === 'use') m.keyring!.use(k2);
      if (step === 'remove') m.keyring!.remove(k1);
      cluster.advance(300);
    }
    cluster.advance(1_000);
    t.equal(forged(), 0, `after "${step}" on every member: no packet was refused`);
  }
  t.ok(cluster.converged(), 'still converged');
  t.equal(log.filter((e) => e.type === 'suspect' || e.type === 'dead').length, 0, 'nobody was even suspected');
  t.ok(cluster.members.every((m) => m.keyring!.keys.length === 1 && m.keyring!.primary.equals(k2)), 'only the new key is left');
  // A member still on the old key alone is now shut out.
  const outsider = new SealedEnvelope({ keyring: new Keyring([k1]) });
  const before = forged();
  cluster.members[1]!.transport.send(cluster.members[0]!.address, outsider.seal(encodePacket([encodeMessage({ type: MessageType.Ping, seq: 1, target: cluster.members[0]!.name })])));
  cluster.advance(10);
  t.equal(forged(), before + 1, 'old-key packet refused and counted');
  await cluster.close();
});

t.test('forged, unsealed, replayed and oversized packets change nothing', async (t) => {
  const { cluster, log } = withLog({ size: 6, seed: 13 });
  t.ok(cluster.runUntil(() => cluster.converged(), 10_000, 10) !== undefined, 'converged');
  cluster.advance(1_000);
  const captured: { from: string; to: string; data: Uint8Array }[] = [];
  cluster.network.tap = (from, to, data) => {
    if (captured.length < 200) captured.push({ from, to, data });
    return true;
  };
  cluster.advance(500);
  cluster.network.tap = undefined;
  const snapshot = () => cluster.members.map((m) => m.membership.members().map((x) => `${x.name}:${x.status}:${x.incarnation}:${x.subnets.join('+')}`).sort().join(','));
  const before = snapshot();
  const eventsBefore = log.length;
  const attacker = cluster.network.transport(simulatedAddress(900));
  const wrongKey = new SealedEnvelope({ keyring: new Keyring([Keyring.generateKey()]) });
  const plain = new PlainEnvelope();
  const target = cluster.members[0]!;
  const lies = [
    encodeMessage({ type: MessageType.Dead, incarnation: 99, node: cluster.members[1]!.name, from: 'mallory' }),
    encodeMessage({ type: MessageType.Suspect, incarnation: 99, node: cluster.members[2]!.name, from: 'mallory' }),
    encodeMessage({ type: MessageType.Alive, incarnation: 99, node: 'mallory', address: simulatedAddress(900), subnets: ['192.0.2.0/24'] }),
  ];
  for (const m of cluster.members) {
    for (const lie of lies) {
      attacker.send(m.address, wrongKey.seal(encodePacket([lie])));
      attacker.send(m.address, plain.seal(encodePacket([lie])));
    }
    attacker.send(m.address, new Uint8Array(4000));
    attacker.send(m.address, Uint8Array.of(1, 2, 3));
  }
  for (const c of captured) attacker.send(c.to, c.data);
  // Tampered copies of genuine packets.
  for (const c of captured.slice(0, 20)) {
    const bad = Uint8Array.from(c.data);
    bad[bad.length - 20]! ^= 1;
    attacker.send(c.to, bad);
  }
  let failedRequest = false;
  attacker.request(target.address, wrongKey.seal(encodeMessage({ type: MessageType.PushPull, join: true, members: [{ name: 'mallory', address: 'x:1', incarnation: 5, status: 'alive', subnets: [] }] })), 1000, (e) => {
    failedRequest = e !== undefined;
  });
  cluster.advance(20);
  t.same(snapshot(), before, 'no member changed its view');
  t.equal(log.length, eventsBefore, 'no event fired');
  t.ok(failedRequest, 'a forged full-state exchange got no reply');
  const dropped = cluster.members.map((m) => m.membership.counters.dropped);
  const sum = (k: keyof (typeof dropped)[0]) => dropped.reduce((n, d) => n + d[k], 0);
  t.equal(sum('forged'), 6 * 3 + 20 + 1, 'forged: wrong key and tampered, counted');
  t.equal(sum('unsealed'), 6 * 3 + 6, 'unsealed: clear text and junk, counted');
  t.equal(sum('oversized'), 6, 'oversized counted');
  t.equal(sum('replayed'), captured.length, 'every replayed genuine packet was refused');
  cluster.advance(2_000);
  t.ok(cluster.converged(), 'cluster unaffected');
  await cluster.close();
});
